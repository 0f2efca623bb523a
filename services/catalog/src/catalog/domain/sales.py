"""Sales: live sessions (one day, time slots, lots one after another) and timed tenders (start, end).

A sale stores its IANA time zone. Live-session dates and slot times are wall-clock times in that
zone; they become UTC instants here, once, with `zoneinfo` and Python's wall-clock arithmetic (a
time skipped by a daylight-saving jump resolves as PEP 495 says: it lands after the jump).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from catalog.domain.states import SALE_TRANSITIONS, State, require_state, transition
from catalog.domain.validation import (
    MAX_ALLOW_LIST,
    MAX_REASON,
    MAX_SCHEDULE_AHEAD,
    check_aware,
    check_ids,
    check_text,
    check_time_zone,
    check_title_and_description,
    parse_time_of_day,
)
from gavel_core.errors import InvalidArgument, Violations

SLOT_MINUTES = 10  # the schedule's grain: slots, lot durations and session windows are multiples of it
MINUTES_PER_DAY = 24 * 60
MAX_TIME_SLOTS = 12
MAX_TENDER_DURATION = timedelta(days=90)


class SaleKind(StrEnum):
    LIVE_SESSION = "live_session"
    TIMED_TENDER = "timed_tender"


class ApprovalRule(StrEnum):
    MANUAL = "manual"  # a sale admin decides every registration
    AUTO_ALL = "auto_all"
    AUTO_VERIFIED_DEPOSIT = "auto_verified_deposit"  # else left pending for a sale admin
    AUTO_ALLOW_LIST = "auto_allow_list"  # else left pending for a sale admin
    OPEN = "open"  # no registration needed to reserve, enter or bid


@dataclass(frozen=True, slots=True)
class TimeSlot:
    """A window of the session day in minutes since local midnight, end exclusive (1440 = 24:00)."""

    start_minute: int
    end_minute: int

    @classmethod
    def parse(cls, start: str, end: str, path: str) -> TimeSlot:
        """Build from the wire's `HH:MM` strings; errors name `path.start` / `path.end`."""
        violations = Violations()
        minutes: list[int] = []
        for name, text in (("start", start), ("end", end)):
            try:
                minutes.append(parse_time_of_day(text, f"{path}.{name}"))
            except InvalidArgument as exc:
                violations.items.extend(exc.violations)
        violations.raise_if_any()
        return cls(minutes[0], minutes[1])


@dataclass(frozen=True, slots=True)
class LiveSession:
    date: date
    time_slots: tuple[TimeSlot, ...]


@dataclass(frozen=True, slots=True)
class TimedTender:
    starts_at: datetime
    ends_at: datetime


Timing = LiveSession | TimedTender


@dataclass(frozen=True, slots=True)
class RegistrationPolicy:
    rule: ApprovalRule = ApprovalRule.MANUAL
    allow_list: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        """Bidders need an approved registration (every rule but OPEN)."""
        return self.rule is not ApprovalRule.OPEN

    def validate(self, violations: Violations, prefix: str) -> None:
        if self.rule is ApprovalRule.AUTO_ALLOW_LIST:
            check_ids(violations, f"{prefix}.allow_list", self.allow_list, max_items=MAX_ALLOW_LIST)
        elif self.allow_list:
            violations.add(f"{prefix}.allow_list", "an allow-list needs rule auto_allow_list")


def local_instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of `minute` minutes after local midnight of `day` in `zone` (wall-clock time)."""
    return (datetime.combine(day, time(), tzinfo=zone) + timedelta(minutes=minute)).astimezone(UTC)


@lru_cache(maxsize=256)
def _clock_runs_evenly(day: date, time_zone: str) -> bool:
    """Whether every 10-minute mark of `day`'s wall clock in `time_zone` lies that many minutes after
    local midnight: true but on days with a clock change. Lay-outs put lots only on such marks."""
    zone = ZoneInfo(time_zone)
    midnight = local_instant(day, 0, zone)
    return all(
        local_instant(day, minute, zone) - midnight == timedelta(minutes=minute)
        for minute in range(SLOT_MINUTES, MINUTES_PER_DAY + 1, SLOT_MINUTES)
    )


def session_minute(day: date, time_zone: str, instant: datetime) -> int | None:
    """The 10-minute mark of `day` (minutes since local midnight) that `local_instant` turns into
    `instant`; None if none does, or if a clock change that day makes the answer uncertain."""
    if not _clock_runs_evenly(day, time_zone):
        return None
    minutes, rest = divmod(instant - local_instant(day, 0, ZoneInfo(time_zone)), timedelta(minutes=SLOT_MINUTES))
    if rest or not 0 <= minutes * SLOT_MINUTES <= MINUTES_PER_DAY:
        return None
    return minutes * SLOT_MINUTES


def _check_start(violations: Violations, path: str, starts_at: datetime, now: datetime) -> None:
    if starts_at <= now:
        violations.add(path, "must be in the future")
    elif starts_at > now + MAX_SCHEDULE_AHEAD:
        violations.add(path, f"must be within {MAX_SCHEDULE_AHEAD.days} days from now")


def _validate_live_session(
    violations: Violations, path: str, session: LiveSession, zone: ZoneInfo | None, now: datetime
) -> None:
    slots = session.time_slots
    if not 1 <= len(slots) <= MAX_TIME_SLOTS:
        violations.add(f"{path}.time_slots", f"a session has 1 to {MAX_TIME_SLOTS} time slots")
        return
    valid = True
    previous_end = 0
    for index, slot in enumerate(slots):
        slot_path = f"{path}.time_slots[{index}]"
        problems = len(violations.items)
        if not (0 <= slot.start_minute < MINUTES_PER_DAY and slot.start_minute % SLOT_MINUTES == 0):
            violations.add(f"{slot_path}.start", "must be a time of day on a 10-minute boundary")
        if not (0 < slot.end_minute <= MINUTES_PER_DAY and slot.end_minute % SLOT_MINUTES == 0):
            violations.add(f"{slot_path}.end", "must be a time of day on a 10-minute boundary, at most 24:00")
        if slot.end_minute <= slot.start_minute:
            violations.add(f"{slot_path}.end", "must be after start")
        elif slot.start_minute < previous_end:
            violations.add(f"{slot_path}.start", "time slots must be in order and must not overlap")
        previous_end = max(previous_end, slot.end_minute)
        valid = valid and problems == len(violations.items)
    if valid and zone is not None:
        _check_start(violations, f"{path}.date", local_instant(session.date, slots[0].start_minute, zone), now)


def _validate_timed_tender(violations: Violations, path: str, tender: TimedTender, now: datetime) -> None:
    starts_ok = check_aware(violations, f"{path}.starts_at", tender.starts_at)
    ends_ok = check_aware(violations, f"{path}.ends_at", tender.ends_at)
    if not (starts_ok and ends_ok):
        return
    _check_start(violations, f"{path}.starts_at", tender.starts_at, now)
    if tender.ends_at <= tender.starts_at:
        violations.add(f"{path}.ends_at", "must be after starts_at")
    elif tender.ends_at - tender.starts_at > MAX_TENDER_DURATION:
        violations.add(f"{path}.ends_at", f"a tender runs at most {MAX_TENDER_DURATION.days} days")


@dataclass(frozen=True, slots=True)
class SaleSpec:
    """The editable fields of a sale, as a create or update request gives them."""

    title: str
    time_zone: str
    timing: Timing
    description: str = ""
    registration: RegistrationPolicy = RegistrationPolicy()

    def validate(self, now: datetime, prefix: str = "sale") -> None:
        """Every field, and that the sale starts in the future (within MAX_SCHEDULE_AHEAD)."""
        violations = Violations()
        check_title_and_description(violations, prefix, self.title, self.description)
        zone = check_time_zone(violations, f"{prefix}.time_zone", self.time_zone)
        if isinstance(self.timing, LiveSession):
            _validate_live_session(violations, f"{prefix}.live_session", self.timing, zone, now)
        else:
            _validate_timed_tender(violations, f"{prefix}.timed_tender", self.timing, now)
        self.registration.validate(violations, f"{prefix}.registration")
        violations.raise_if_any()

    def window(self) -> tuple[datetime, datetime]:
        """[start, end) of the whole sale in UTC. Call on a validated spec."""
        if isinstance(self.timing, TimedTender):
            return self.timing.starts_at.astimezone(UTC), self.timing.ends_at.astimezone(UTC)
        zone = ZoneInfo(self.time_zone)
        slots = self.timing.time_slots
        return (
            local_instant(self.timing.date, slots[0].start_minute, zone),
            local_instant(self.timing.date, slots[-1].end_minute, zone),
        )


@dataclass(slots=True)
class Sale:
    """A sale and its life cycle. `starts_at`/`ends_at` follow from timing and time zone; they are
    kept as fields because searches filter and sort on them."""

    id: str
    owner_id: str
    title: str
    description: str
    time_zone: str
    timing: Timing
    registration: RegistrationPolicy
    state: State
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None = None
    cancel_reason: str = ""

    @classmethod
    def create(cls, sale_id: str, owner_id: str, spec: SaleSpec, now: datetime) -> Sale:
        spec.validate(now)
        starts_at, ends_at = spec.window()
        return cls(
            id=sale_id,
            owner_id=owner_id,
            title=spec.title.strip(),
            description=spec.description,
            time_zone=spec.time_zone,
            timing=spec.timing,
            registration=spec.registration,
            state=State.DRAFT,
            starts_at=starts_at,
            ends_at=ends_at,
            created_at=now,
            updated_at=now,
        )

    @property
    def kind(self) -> SaleKind:
        return SaleKind.LIVE_SESSION if isinstance(self.timing, LiveSession) else SaleKind.TIMED_TENDER

    @property
    def spec(self) -> SaleSpec:
        return SaleSpec(self.title, self.time_zone, self.timing, self.description, self.registration)

    @property
    def takes_registrations(self) -> bool:
        return self.state in (State.SCHEDULED, State.LIVE)

    def require_draft(self, action: str) -> None:
        require_state("sale", self.id, self.state, (State.DRAFT,), action)

    def update(self, spec: SaleSpec, now: datetime) -> None:
        """Replace every editable field of a draft."""
        self.require_draft("edit")
        spec.validate(now)
        self.title = spec.title.strip()
        self.description = spec.description
        self.time_zone = spec.time_zone
        self.timing = spec.timing
        self.registration = spec.registration
        self.starts_at, self.ends_at = spec.window()
        self.updated_at = now

    def publish(self, now: datetime) -> None:
        self.state = transition(SALE_TRANSITIONS, "sale", self.id, self.state, State.SCHEDULED, "publish")
        self.published_at = now
        self.updated_at = now

    def cancel(self, reason: str, now: datetime) -> None:
        violations = Violations()
        check_text(violations, "reason", reason, max_length=MAX_REASON)
        violations.raise_if_any()
        self.state = transition(SALE_TRANSITIONS, "sale", self.id, self.state, State.CANCELLED, "cancel")
        self.cancel_reason = reason.strip()
        self.updated_at = now

    def go_live(self, now: datetime) -> None:
        """The first lot started. Later lots starting leave a live sale live."""
        if self.state is not State.LIVE:
            self.state = transition(SALE_TRANSITIONS, "sale", self.id, self.state, State.LIVE, "start a lot of")
            self.updated_at = now

    def close(self, now: datetime) -> None:
        self.state = transition(SALE_TRANSITIONS, "sale", self.id, self.state, State.CLOSED, "close")
        self.updated_at = now

    def estimated_starts(self, durations_in_slots: Sequence[int]) -> list[datetime | None]:
        """When each lot, in order, is expected to start; None for lots that do not fit.

        Live session: lots run back to back from the first time slot; a lot that would overrun a
        slot moves to the start of the next one, and once the slots are used up nothing fits.
        Timed tender: every lot runs the whole sale.
        """
        if isinstance(self.timing, TimedTender):
            return [self.starts_at for _ in durations_in_slots]
        return self._session_starts(self.timing, 0, self.timing.time_slots[0].start_minute, durations_in_slots)

    def estimated_starts_after(
        self, last_start: datetime | None, last_duration: int, durations_in_slots: Sequence[int]
    ) -> list[datetime | None] | None:
        """The starts `estimated_starts` gives lots that follow, in order, a lot it set to start at
        `last_start` and that takes `last_duration` slots, told without the lots before that one.

        None when the last lot's place cannot be told from its start alone — a session day with a
        clock change, or a start no lay-out gives — and the caller lays out every lot instead.
        """
        if isinstance(self.timing, TimedTender):
            return [self.starts_at for _ in durations_in_slots]
        if last_start is None:  # the slots were used up before the last lot: nothing after it fits
            return [None for _ in durations_in_slots]
        session = self.timing
        minute = session_minute(session.date, self.time_zone, last_start)
        if minute is None:
            return None
        end = minute + last_duration * SLOT_MINUTES
        slots = session.time_slots
        index = next(
            (i for i, slot in enumerate(slots) if slot.start_minute <= minute and end <= slot.end_minute), None
        )
        if index is None:
            return None
        return self._session_starts(session, index, end, durations_in_slots)

    def _session_starts(
        self, session: LiveSession, index: int, cursor: int, durations_in_slots: Sequence[int]
    ) -> list[datetime | None]:
        """Lots back to back from minute `cursor` of time slot `index` on (see `estimated_starts`)."""
        zone = ZoneInfo(self.time_zone)
        slots = session.time_slots
        starts: list[datetime | None] = []
        for duration in durations_in_slots:
            minutes = duration * SLOT_MINUTES
            while index < len(slots) and cursor + minutes > slots[index].end_minute:
                index += 1
                if index < len(slots):
                    cursor = max(cursor, slots[index].start_minute)
            if index == len(slots):
                starts.append(None)
                continue
            starts.append(local_instant(session.date, cursor, zone))
            cursor += minutes
        return starts
