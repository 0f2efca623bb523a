"""The schedule table: days → morning / afternoon / evening → 10-minute slots → rows.

Each row is one lot group (a product in a sale, with its quantity). A row is placed by its
estimated start in *its sale's* time zone: a 19:00 Tokyo lot is an evening lot even when the
viewer is in Paris. Slots are sale-local 10-minute windows, so rows of sales in different zones
that share a local time are separate slots (each has its own UTC `starts_at`).

Views: DAY is the given date; WEEK is Monday to Sunday around it (ISO weeks); MONTH is its
calendar month. Parts of day: morning 00:00-12:00, afternoon 12:00-18:00, evening 18:00-24:00.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from catalog.domain.lots import LotGroup, headline_prices
from catalog.domain.registrations import Registration
from catalog.domain.reservations import Reservation
from catalog.domain.sales import SLOT_MINUTES, Sale
from catalog.domain.seating import entry_blocker, reservation_blocker
from catalog.domain.states import State
from catalog.domain.validation import format_time_of_day
from gavel_core.auth import Principal, Role
from gavel_core.formats import Format

MAX_SCHEDULE_LOTS = 5_000  # one response; a busier month must be narrowed by sale or seller
SCHEDULE_STATES = frozenset({State.SCHEDULED, State.LIVE, State.CLOSED})
AFTERNOON_FROM = 12 * 60
EVENING_FROM = 18 * 60
# UTC offsets in use run from -12:00 to +14:00: a local day lies within these margins of the UTC day.
_EARLIEST_OFFSET = timedelta(hours=14)
_LATEST_OFFSET = timedelta(hours=12)


class ScheduleView(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class DayPart(StrEnum):
    MORNING = "morning"
    AFTERNOON = "afternoon"
    EVENING = "evening"


def view_range(view: ScheduleView, anchor: date) -> tuple[date, date]:
    """[first, end) of the local dates a view shows."""
    if view is ScheduleView.DAY:
        return anchor, anchor + timedelta(days=1)
    if view is ScheduleView.WEEK:
        monday = anchor - timedelta(days=anchor.weekday())
        return monday, monday + timedelta(days=7)
    first = anchor.replace(day=1)
    end = first.replace(year=first.year + 1, month=1) if first.month == 12 else first.replace(month=first.month + 1)
    return first, end


def utc_window(first: date, end: date) -> tuple[datetime, datetime]:
    """A UTC range holding every instant whose local date, in any zone, is in [first, end).

    Repositories query estimated starts in this range; `build_schedule` then keeps the rows
    whose date in their sale's zone is in range.
    """
    return (
        datetime.combine(first, time(), tzinfo=UTC) - _EARLIEST_OFFSET,
        datetime.combine(end, time(), tzinfo=UTC) + _LATEST_OFFSET,
    )


def day_part(minute_of_day: int) -> DayPart:
    if minute_of_day < AFTERNOON_FROM:
        return DayPart.MORNING
    return DayPart.AFTERNOON if minute_of_day < EVENING_FROM else DayPart.EVENING


@dataclass(frozen=True, slots=True)
class RowActions:
    """What the caller may do with a row now; everything False for anyone but a bidder."""

    can_reserve: bool = False
    can_enter_room: bool = False
    reserved: bool = False
    reservation_id: str = ""
    needs_registration: bool = False


def row_actions(
    principal: Principal,
    sale: Sale,
    group: LotGroup,
    registration: Registration | None,
    reservation: Reservation | None,
    now: datetime,
) -> RowActions:
    """The same rules ReserveLot and EnterRoom enforce, as flags."""
    if not principal.has(Role.BIDDER):
        return RowActions()
    own = principal.subject == group.lead.seller_id
    return RowActions(
        can_reserve=reservation is None
        and reservation_blocker(principal, group, registration, now, sale.registration.required) is None,
        can_enter_room=entry_blocker(principal, group, registration, now, sale.registration.required) is None,
        reserved=reservation is not None,
        reservation_id=reservation.id if reservation else "",
        needs_registration=not own
        and sale.registration.required
        and sale.takes_registrations
        and (registration is None or not registration.is_approved),
    )


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    lot_id: str  # the group id
    sale_id: str
    sale_title: str
    time_zone: str
    product_id: str
    product_title: str
    format: Format
    currency: str
    start_price: int | None
    price: int | None
    buy_now_price: int | None
    quantity: int
    state: State
    estimated_start: datetime
    actions: RowActions


def schedule_row(group: LotGroup, sale: Sale, product_title: str, actions: RowActions) -> ScheduleRow:
    lead = group.lead
    if lead.estimated_start is None:
        raise ValueError("only lots with an estimated start are scheduled")
    start_price, price, buy_now = headline_prices(lead.terms)
    return ScheduleRow(
        lot_id=group.id,
        sale_id=sale.id,
        sale_title=sale.title,
        time_zone=sale.time_zone,
        product_id=lead.product_id,
        product_title=product_title,
        format=lead.terms.format,
        currency=lead.terms.currency,
        start_price=start_price,
        price=price,
        buy_now_price=buy_now,
        quantity=lead.room_count,
        state=group.state,
        estimated_start=lead.estimated_start,
        actions=actions,
    )


@dataclass(frozen=True, slots=True)
class ScheduleSlot:
    start_minute: int  # minutes since local midnight, a multiple of 10
    starts_at: datetime  # the slot's start in UTC
    rows: tuple[ScheduleRow, ...]

    @property
    def start_time(self) -> str:
        return format_time_of_day(self.start_minute)


@dataclass(frozen=True, slots=True)
class ScheduleDayPart:
    part: DayPart
    slots: tuple[ScheduleSlot, ...]


@dataclass(frozen=True, slots=True)
class ScheduleDay:
    date: date
    parts: tuple[ScheduleDayPart, ...]  # always morning, afternoon, evening


@dataclass(frozen=True, slots=True)
class Schedule:
    view: ScheduleView
    first_date: date
    end_date: date  # exclusive
    days: tuple[ScheduleDay, ...]  # every date of the range
    truncated: bool


def build_schedule(view: ScheduleView, anchor: date, rows: Iterable[ScheduleRow], truncated: bool) -> Schedule:
    """Bucket rows into the view's days, parts of day and 10-minute slots; drop rows outside it."""
    first, end = view_range(view, anchor)
    buckets: dict[date, dict[tuple[int, datetime], list[ScheduleRow]]] = {}
    for row in rows:
        local = row.estimated_start.astimezone(ZoneInfo(row.time_zone))
        if not first <= local.date() < end:
            continue
        slot_local = local.replace(minute=local.minute - local.minute % SLOT_MINUTES, second=0, microsecond=0)
        slot = (slot_local.hour * 60 + slot_local.minute, slot_local.astimezone(UTC))
        buckets.setdefault(local.date(), {}).setdefault(slot, []).append(row)
    days: list[ScheduleDay] = []
    day = first
    while day < end:
        by_part: dict[DayPart, list[ScheduleSlot]] = {part: [] for part in DayPart}
        for (minute, starts_at), members in sorted(buckets.get(day, {}).items()):
            ordered = tuple(sorted(members, key=lambda r: (r.estimated_start, r.sale_id, r.lot_id)))
            by_part[day_part(minute)].append(ScheduleSlot(minute, starts_at, ordered))
        days.append(ScheduleDay(day, tuple(ScheduleDayPart(part, tuple(by_part[part])) for part in DayPart)))
        day += timedelta(days=1)
    return Schedule(view, first, end, tuple(days), truncated)
