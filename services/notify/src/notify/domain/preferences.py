"""A user's notification preferences: contact points, locale and zone, per-kind channels, quiet
hours, reminder offsets and digests — and the questions the dispatcher asks of them."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gavel_core.errors import Violations
from notify.domain.kinds import KINDS, USER_KINDS, Channel, spec

LOCALES = ("en", "fr", "ko", "zh")
DEFAULT_OFFSETS = (10,)
MAX_OFFSETS = 3
MAX_OFFSET_MINUTES = 24 * 60
EMAIL_MAX = 254
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_PHONE = re.compile(r"^\+[1-9][0-9]{7,14}$")
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class DigestPeriod(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


@dataclass(frozen=True, slots=True)
class Contact:
    address: str = ""
    verified_at: datetime | None = None

    @property
    def verified(self) -> bool:
        return bool(self.address) and self.verified_at is not None


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time

    def ends_after(self, local: datetime) -> datetime | None:
        """If `local` (an aware local time) falls in the quiet hours, when they end; else None."""
        now = local.timetz().replace(tzinfo=None)
        if self.start == self.end:
            return None
        inside = self.start <= now < self.end if self.start < self.end else now >= self.start or now < self.end
        if not inside:
            return None
        day = local.date() if now < self.end else local.date() + timedelta(days=1)
        return datetime.combine(day, self.end).replace(tzinfo=local.tzinfo).astimezone(UTC)


@dataclass(slots=True)
class Preferences:
    user_id: str
    locale: str = "en"
    time_zone: str = "UTC"
    email: Contact = field(default_factory=Contact)
    phone: Contact = field(default_factory=Contact)
    # Per kind and channel, what the user chose; a kind not named here takes its default.
    choices: dict[str, dict[Channel, bool]] = field(default_factory=dict)
    quiet_hours: dict[Channel, QuietHours] = field(default_factory=dict)
    reminder_offsets: tuple[int, ...] = DEFAULT_OFFSETS
    digests: tuple[DigestPeriod, ...] = ()
    digest_hour: int = 8
    channel_off: frozenset[Channel] = frozenset()
    updated_at: datetime | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def contact(self, channel: Channel) -> Contact:
        return self.email if channel is Channel.EMAIL else self.phone

    def wants(self, kind: str, channel: Channel) -> bool:
        """Whether `kind` goes out on `channel` (the user's choice, else the kind's default)."""
        kind_spec = spec(kind)
        if channel not in kind_spec.channels or channel in self.channel_off:
            return False
        if not kind_spec.user_choice:
            return kind_spec.summary_of == "" or self.wants(kind_spec.summary_of, channel)
        chosen = self.choices.get(kind, {}).get(channel)
        if chosen is not None:
            return chosen
        return kind_spec.email if channel is Channel.EMAIL else kind_spec.sms

    def channels_for(self, kind: str) -> list[Channel]:
        """The channels a notice of `kind` is recorded for: wanted and with an address (verification
        is checked when it is sent, so a later verification still lets it out)."""
        return [c for c in Channel if self.wants(kind, c) and self.contact(c).address]

    def quiet_until(self, channel: Channel, now: datetime) -> datetime | None:
        hours = self.quiet_hours.get(channel)
        return None if hours is None else hours.ends_after(now.astimezone(self.zone))

    def opt_out(self, kind: str, channel: Channel) -> None:
        """One-click unsubscribe: `kind` off on `channel`; "*" turns the whole channel off."""
        if kind == "*":
            self.channel_off = self.channel_off | {channel}
        else:
            self.choices.setdefault(kind, {})[channel] = False


def parse_time(text: str, path: str, violations: Violations) -> time | None:
    match = _HHMM.match(text)
    if match is None:
        violations.add(path, 'must be a time of day "HH:MM"')
        return None
    return time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True, slots=True)
class PreferencesInput:
    """What a SetPreferences request asks for, before validation."""

    locale: str
    time_zone: str
    email: str
    email_verified: bool
    phone: str
    phone_verified: bool
    choices: dict[str, dict[Channel, bool]]
    quiet_hours: list[tuple[Channel | None, str, str]]
    reminder_offsets: list[int]
    digests: list[DigestPeriod | None]
    digest_hour: int
    channel_off: frozenset[Channel]


def apply_input(
    current: Preferences, wanted: PreferencesInput, *, may_verify: bool, now: datetime, path: str = "preferences"
) -> Preferences:
    """The preferences after a SetPreferences (validated: INVALID_ARGUMENT lists every problem).

    An address that changes is unverified again; `may_verify` (site admins, services) lets the
    caller mark an address verified it checked itself.
    """
    v = Violations()
    locale = wanted.locale or "en"
    v.require(locale in LOCALES, f"{path}.locale", f"must be one of {', '.join(LOCALES)}")
    zone = wanted.time_zone or "UTC"
    try:
        if len(zone) > 64:
            raise ValueError
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        v.add(f"{path}.time_zone", "must be an IANA time zone such as Europe/Paris")
    email = wanted.email.strip()
    if email and (len(email) > EMAIL_MAX or not _EMAIL.match(email)):
        v.add(f"{path}.email.address", "must be an e-mail address")
    phone = wanted.phone.strip()
    if phone and not _PHONE.match(phone):
        v.add(f"{path}.phone.address", 'must be an E.164 number: "+" and 8 to 15 digits')
    if (wanted.email_verified or wanted.phone_verified) and not may_verify:
        v.add(f"{path}.email.verified", "only site admins and services may mark an address verified")
    for kind in wanted.choices:
        if kind not in USER_KINDS:
            v.add(f"{path}.kinds", f"unknown kind {kind!r}; known: {', '.join(USER_KINDS)}")
    quiet: dict[Channel, QuietHours] = {}
    for index, (channel, start, end) in enumerate(wanted.quiet_hours):
        at = f"{path}.quiet_hours[{index}]"
        if channel is None:
            v.add(f"{at}.channel", "must be CHANNEL_EMAIL or CHANNEL_SMS")
            continue
        if channel in quiet:
            v.add(f"{at}.channel", "at most one quiet-hours window per channel")
        begin, finish = parse_time(start, f"{at}.start", v), parse_time(end, f"{at}.end", v)
        if begin is not None and finish is not None:
            quiet[channel] = QuietHours(begin, finish)
    offsets = wanted.reminder_offsets or list(DEFAULT_OFFSETS)
    if len(offsets) > MAX_OFFSETS:
        v.add(f"{path}.reminder_offsets_minutes", f"at most {MAX_OFFSETS} reminders")
    for index, minutes in enumerate(offsets):
        v.require(
            1 <= minutes <= MAX_OFFSET_MINUTES,
            f"{path}.reminder_offsets_minutes[{index}]",
            f"must be 1 to {MAX_OFFSET_MINUTES} minutes",
        )
    digests: list[DigestPeriod] = []
    for index, period in enumerate(wanted.digests):
        if period is None:
            v.add(f"{path}.digests[{index}]", "must be daily, weekly or monthly")
        elif period not in digests:
            digests.append(period)
    v.require(0 <= wanted.digest_hour <= 23, f"{path}.digest_hour", "must be an hour from 0 to 23")
    v.raise_if_any()

    def contact(old: Contact, address: str, verified: bool) -> Contact:
        if verified and may_verify and address:
            return Contact(address, old.verified_at if old.address == address and old.verified_at else now)
        return old if old.address == address else Contact(address, None)

    return dataclasses.replace(
        current,
        locale=locale,
        time_zone=zone,
        email=contact(current.email, email, wanted.email_verified),
        phone=contact(current.phone, phone, wanted.phone_verified),
        choices={kind: dict(channels) for kind, channels in wanted.choices.items() if kind in KINDS},
        quiet_hours=quiet,
        reminder_offsets=tuple(sorted(set(offsets), reverse=True)),
        digests=tuple(digests),
        digest_hour=wanted.digest_hour,
        channel_off=wanted.channel_off,
        updated_at=now,
    )


def mask(address: str) -> str:
    """An address partly hidden for display: "b•••@gavel.demo", "+33•••••89"."""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}•••@{domain}"
    return f"{address[:3]}{'•' * max(len(address) - 5, 0)}{address[-2:]}"
