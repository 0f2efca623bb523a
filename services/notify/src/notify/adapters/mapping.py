"""Between notify's protobuf messages (gavel.notify.v1) and its domain values."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from gavel.notify.v1 import notify_service_pb2 as pb
from gavel_core.errors import FieldViolation, InvalidArgument
from notify.app.ports import DeadLetterView
from notify.domain.deliveries import Delivery, Status
from notify.domain.kinds import USER_KINDS, Channel
from notify.domain.preferences import DigestPeriod, Preferences, PreferencesInput, mask

CHANNELS = {pb.CHANNEL_EMAIL: Channel.EMAIL, pb.CHANNEL_SMS: Channel.SMS}
CHANNEL_WIRE = {value: key for key, value in CHANNELS.items()}
PERIODS = {
    pb.DIGEST_PERIOD_DAILY: DigestPeriod.DAILY,
    pb.DIGEST_PERIOD_WEEKLY: DigestPeriod.WEEKLY,
    pb.DIGEST_PERIOD_MONTHLY: DigestPeriod.MONTHLY,
}
PERIOD_WIRE = {value: key for key, value in PERIODS.items()}
STATUSES = {
    pb.DELIVERY_STATUS_PENDING: Status.PENDING,
    pb.DELIVERY_STATUS_HELD: Status.HELD,
    pb.DELIVERY_STATUS_SENT: Status.SENT,
    pb.DELIVERY_STATUS_DELIVERED: Status.DELIVERED,
    pb.DELIVERY_STATUS_DROPPED: Status.DROPPED,
    pb.DELIVERY_STATUS_FOLDED: Status.FOLDED,
    pb.DELIVERY_STATUS_DEAD: Status.DEAD,
    pb.DELIVERY_STATUS_FAILED: Status.FAILED,
}
STATUS_WIRE = {value: key for key, value in STATUSES.items()}
MAX_KINDS = 64
MAX_QUIET = 4
MAX_DIGESTS = 3
MAX_OFFSETS_ON_WIRE = 10


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def channel(value: int, path: str = "channel") -> Channel:
    found = CHANNELS.get(value)  # type: ignore[call-overload]
    if found is None:
        raise InvalidArgument([FieldViolation(path, "must be CHANNEL_EMAIL or CHANNEL_SMS")])
    return found  # type: ignore[no-any-return]


def preferences_input(message: pb.Preferences, path: str = "preferences") -> PreferencesInput:
    violations = []
    if len(message.kinds) > MAX_KINDS:
        violations.append(FieldViolation(f"{path}.kinds", f"at most {MAX_KINDS} entries"))
    if len(message.quiet_hours) > MAX_QUIET:
        violations.append(FieldViolation(f"{path}.quiet_hours", f"at most {MAX_QUIET} entries"))
    if len(message.digests) > MAX_DIGESTS:
        violations.append(FieldViolation(f"{path}.digests", f"at most {MAX_DIGESTS} entries"))
    if len(message.reminder_offsets_minutes) > MAX_OFFSETS_ON_WIRE:
        violations.append(FieldViolation(f"{path}.reminder_offsets_minutes", "at most 3 reminders"))
    for field, text in (("locale", message.locale), ("time_zone", message.time_zone)):
        if len(text) > 64:
            violations.append(FieldViolation(f"{path}.{field}", "is too long"))
    if len(message.email.address) > 254:
        violations.append(FieldViolation(f"{path}.email.address", "must be an e-mail address"))
    if len(message.phone.address) > 20:
        violations.append(FieldViolation(f"{path}.phone.address", 'must be an E.164 number: "+" and 8 to 15 digits'))
    if violations:
        raise InvalidArgument(violations)
    choices: dict[str, dict[Channel, bool]] = {}
    for entry in message.kinds:
        choices[entry.kind[:64]] = {Channel.EMAIL: entry.email, Channel.SMS: entry.sms}
    off = frozenset(c for c, flag in ((Channel.EMAIL, message.email_off), (Channel.SMS, message.sms_off)) if flag)
    return PreferencesInput(
        locale=message.locale,
        time_zone=message.time_zone,
        email=message.email.address,
        email_verified=message.email.verified,
        phone=message.phone.address,
        phone_verified=message.phone.verified,
        choices=choices,
        quiet_hours=[(CHANNELS.get(q.channel), q.start[:8], q.end[:8]) for q in message.quiet_hours],  # type: ignore[call-overload]
        reminder_offsets=list(message.reminder_offsets_minutes),
        digests=[PERIODS.get(d) for d in message.digests],  # type: ignore[call-overload]
        digest_hour=message.digest_hour if message.HasField("digest_hour") else 8,
        channel_off=off,
    )


def preferences_message(p: Preferences) -> pb.Preferences:
    message = pb.Preferences(
        user_id=p.user_id,
        locale=p.locale,
        time_zone=p.time_zone,
        email=pb.ContactPoint(address=p.email.address, verified=p.email.verified),
        phone=pb.ContactPoint(address=p.phone.address, verified=p.phone.verified),
        kinds=[
            pb.KindPreference(kind=kind, email=p.wants(kind, Channel.EMAIL), sms=p.wants(kind, Channel.SMS))
            for kind in USER_KINDS
        ],
        quiet_hours=[
            pb.QuietHours(channel=CHANNEL_WIRE[c], start=h.start.strftime("%H:%M"), end=h.end.strftime("%H:%M"))
            for c, h in sorted(p.quiet_hours.items())
        ],
        reminder_offsets_minutes=list(p.reminder_offsets),
        digests=[PERIOD_WIRE[d] for d in p.digests],
        digest_hour=p.digest_hour,
        email_off=Channel.EMAIL in p.channel_off,
        sms_off=Channel.SMS in p.channel_off,
    )
    if p.email.verified_at is not None:
        message.email.verified_at.CopyFrom(timestamp(p.email.verified_at))
    if p.phone.verified_at is not None:
        message.phone.verified_at.CopyFrom(timestamp(p.phone.verified_at))
    if p.updated_at is not None:
        message.updated_at.CopyFrom(timestamp(p.updated_at))
    return message


def delivery_message(d: Delivery, *, hide_address: bool) -> pb.Delivery:
    message = pb.Delivery(
        delivery_id=d.id,
        user_id=d.user_id,
        kind=d.kind,
        channel=CHANNEL_WIRE[d.channel],
        status=STATUS_WIRE[d.status],
        reason=d.reason,
        summary=d.summary,
        address=mask(d.address) if hide_address and d.address else d.address,
        attempts=d.attempts,
        last_error="" if hide_address else d.last_error,
        created_at=timestamp(d.created_at),
        due_at=timestamp(d.due_at),
        segments=d.segments,
        folded_into=d.folded_into,
        lot_id=d.lot_id,
    )
    if d.sent_at is not None:
        message.sent_at.CopyFrom(timestamp(d.sent_at))
    return message


def dead_letter_message(view: DeadLetterView) -> pb.DeadLetter:
    return pb.DeadLetter(
        delivery=delivery_message(view.delivery, hide_address=False), dead_at=timestamp(view.dead_at), error=view.error
    )


def statuses(values: list[int]) -> tuple[Status, ...]:
    found = []
    for index, value in enumerate(values):
        status = STATUSES.get(value)  # type: ignore[call-overload]
        if status is None:
            raise InvalidArgument([FieldViolation(f"statuses[{index}]", "is not a delivery status")])
        found.append(status)
    return tuple(found)
