"""The room's wire formats: lot batches (gavel.events.v1.LotEventBatch), the catalog's Lot as a
lot's terms, and the public projection watchers get.

Engine events map to `gavel.events.v1.RoomEvent` by name and field, driven by the proto
descriptors so the two cannot drift apart silently (a unit test round-trips every event type):
the oneof field is the event class name in snake_case; a field with the event field's name carries
it (Money for amounts, in the lot's currency; proto3 `optional` or message presence for None);
an event field `x_ms` with no proto field of that name is an instant carried as Timestamp `x`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.timestamp_pb2 import Timestamp

from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1.money_pb2 import Money
from gavel.events.v1 import room_events_pb2 as ev
from gavel.room.v1 import room_service_pb2 as pb
from gavel_core.errors import FieldViolation, InvalidArgument
from gavel_core.formats import LotTerms
from gavel_kit.lotwire import terms_from_lot, write_terms
from room.app.model import Batch, ClosingSoon, LotConfigured, LotInfo, LotSummary, LotView, RoomEvent, Withdrawn
from room.app.views import ACCOUNT_FIELDS, INTERNAL_EVENTS, SECRET_FIELDS
from room.domain import ALL_EVENTS, Event

EVENT_TYPE = "gavel.events.v1.LotEventBatch"


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def timestamp(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def millis(value: Timestamp) -> int:
    return value.seconds * 1000 + value.nanos // 1_000_000


# -- engine events ↔ RoomEvent ------------------------------------------------------------------------

Encoder = Callable[[Any, str, Any], None]  # (proto message, currency, domain value)
Decoder = Callable[[Any], Any]


def _field_codec(message_field: FieldDescriptor, domain_name: str) -> tuple[str, str, Encoder, Decoder]:
    name = message_field.name
    kind = message_field.message_type.full_name if message_field.message_type is not None else "scalar"
    has_presence = message_field.has_presence
    if kind == "gavel.common.v1.Money":

        def encode_money(message: Any, currency: str, value: Any) -> None:
            if value is not None:
                getattr(message, name).CopyFrom(Money(amount_minor=value, currency=currency))

        def decode_money(message: Any) -> Any:
            return getattr(message, name).amount_minor if message.HasField(name) else None

        return domain_name, name, encode_money, decode_money
    if kind == "google.protobuf.Timestamp":

        def encode_instant(message: Any, currency: str, value: Any) -> None:
            if value is not None:
                getattr(message, name).CopyFrom(timestamp(value))

        def decode_instant(message: Any) -> Any:
            return millis(getattr(message, name)) if message.HasField(name) else None

        return domain_name, name, encode_instant, decode_instant

    def encode_scalar(message: Any, currency: str, value: Any) -> None:
        if value is not None:
            setattr(message, name, value)

    def decode_scalar(message: Any) -> Any:
        if has_presence and not message.HasField(name):
            return None
        return getattr(message, name)

    return domain_name, name, encode_scalar, decode_scalar


class _EventCodec:
    def __init__(self, event_type: type[Event]) -> None:
        self.event_type = event_type
        self.oneof = snake(event_type.__name__)
        descriptor = ev.RoomEvent.DESCRIPTOR.fields_by_name[self.oneof].message_type
        if descriptor is None:
            raise TypeError(f"gavel.events.v1.RoomEvent.{self.oneof} is not a message")
        self.fields: list[tuple[str, str, Encoder, Decoder]] = []
        for f in fields(event_type):
            if f.name in ("lot_id", "at_ms"):
                continue
            proto_field = descriptor.fields_by_name.get(f.name)
            if proto_field is None and f.name.endswith("_ms"):
                proto_field = descriptor.fields_by_name.get(f.name[:-3])
            if proto_field is None:
                raise TypeError(f"{event_type.__name__}.{f.name} has no field in gavel.events.v1.{descriptor.name}")
            self.fields.append(_field_codec(proto_field, f.name))
        self.secret = SECRET_FIELDS.get(event_type.__name__, ())

    def encode(self, event: Event, currency: str, into: Any) -> None:
        into.at.CopyFrom(timestamp(event.at_ms))
        message = getattr(into, self.oneof)
        message.SetInParent()
        for domain_name, _, encode, _ in self.fields:
            encode(message, currency, getattr(event, domain_name))

    def decode(self, lot_id: str, wire: Any) -> Event:
        message = getattr(wire, self.oneof)
        values = {domain_name: decode(message) for domain_name, _, _, decode in self.fields}
        return self.event_type(lot_id=lot_id, at_ms=millis(wire.at), **values)


_CODECS: dict[type[Event], _EventCodec] = {event_type: _EventCodec(event_type) for event_type in ALL_EVENTS}
_BY_ONEOF: dict[str, _EventCodec] = {codec.oneof: codec for codec in _CODECS.values()}


def encode_event(event: RoomEvent, currency: str, into: ev.RoomEvent) -> None:
    if isinstance(event, LotConfigured):
        into.at.CopyFrom(timestamp(event.at_ms))
        if event.source:  # the catalog's published lot, as it sent it
            into.lot_configured.lot.ParseFromString(event.source)
        else:
            into.lot_configured.lot.CopyFrom(lot_message(event.info, event.terms))
        into.lot_configured.draw_secret = event.draw_secret
    elif isinstance(event, Withdrawn):
        into.at.CopyFrom(timestamp(event.at_ms))
        into.withdrawn.by = event.by
        into.withdrawn.reason = event.reason
    elif isinstance(event, ClosingSoon):
        into.at.CopyFrom(timestamp(event.at_ms))
        into.closing_soon.deadline.CopyFrom(timestamp(event.deadline_ms))
    else:
        _CODECS[type(event)].encode(event, currency, into)


def decode_event(lot_id: str, wire: ev.RoomEvent) -> RoomEvent:
    which = wire.WhichOneof("event")
    if which == "lot_configured":
        configured = wire.lot_configured
        info, terms = lot_from_message(configured.lot)
        return LotConfigured(
            lot_id, millis(wire.at), info, terms, configured.draw_secret, configured.lot.SerializeToString()
        )
    if which == "withdrawn":
        return Withdrawn(lot_id, millis(wire.at), wire.withdrawn.by, wire.withdrawn.reason)
    if which == "closing_soon":
        return ClosingSoon(lot_id, millis(wire.at), millis(wire.closing_soon.deadline))
    codec = _BY_ONEOF.get(which or "")
    if codec is None:
        raise ValueError(f"lot {lot_id}: unknown room event {which!r}")
    return codec.decode(lot_id, wire)


def encode_batch(batch: Batch) -> bytes:
    currency = batch.currency
    message = ev.LotEventBatch(
        lot_id=batch.lot_id,
        lot_sequence=batch.lot_sequence,
        command_id=batch.command_id,
        command=batch.command,
        actor_id=batch.actor_id,
        request_fingerprint=batch.fingerprint,
        decided_at=timestamp(batch.decided_at_ms),
        after=summary_message(batch.after, currency),
    )
    for event in batch.events:
        encode_event(event, currency, message.events.add())
    return message.SerializeToString()


def decode_batch(data: bytes) -> Batch:
    return batch_from_message(ev.LotEventBatch.FromString(data))


def batch_from_message(message: ev.LotEventBatch) -> Batch:
    lot_id = message.lot_id
    after = message.after
    return Batch(
        lot_id=lot_id,
        lot_sequence=message.lot_sequence,
        command_id=message.command_id,
        command=message.command,
        actor_id=message.actor_id,
        fingerprint=message.request_fingerprint,
        decided_at_ms=millis(message.decided_at),
        events=tuple(decode_event(lot_id, event) for event in message.events),
        after=LotSummary(
            phase=after.phase,
            price=after.price.amount_minor,
            leader=after.leader_id if after.HasField("leader_id") else None,
            deadline_ms=millis(after.deadline) if after.HasField("deadline") else None,
        ),
        currency=after.price.currency,
    )


def summary_message(summary: LotSummary, currency: str) -> ev.LotSummary:
    message = ev.LotSummary(phase=summary.phase, price=Money(amount_minor=summary.price, currency=currency))
    if summary.leader is not None:
        message.leader_id = summary.leader
    if summary.deadline_ms is not None:
        message.deadline.CopyFrom(timestamp(summary.deadline_ms))
    return message


# -- what watchers see ----------------------------------------------------------------------------------


Rename = Callable[[str], str]  # an account id → what the public may see of it (a per-sale pseudonym)


def _account_fields(oneof: str) -> tuple[str, ...]:
    message_type = ev.RoomEvent.DESCRIPTOR.fields_by_name[oneof].message_type
    return tuple(name for name in ACCOUNT_FIELDS if message_type is not None and name in message_type.fields_by_name)


_ACCOUNT_FIELDS: dict[str, tuple[str, ...]] = {oneof: _account_fields(oneof) for oneof in _BY_ONEOF}


def _rename(inner: Any, fields: tuple[str, ...], rename: Rename) -> None:
    for name in fields:
        descriptor = inner.DESCRIPTOR.fields_by_name[name]
        if descriptor.has_presence and not inner.HasField(name):
            continue
        value = getattr(inner, name)
        if value:
            setattr(inner, name, rename(value))


def public_events(message: ev.LotEventBatch, rename: Rename | None = None) -> list[ev.RoomEvent]:
    """The batch's events without the internal ones, secrets cleared and (with `rename`) accounts
    replaced by what the public may see of them (a copy: the input is kept)."""
    shown: list[ev.RoomEvent] = []
    for event in message.events:
        which = event.WhichOneof("event")
        if which in ("closing_soon", "withdrawn"):
            shown.append(event)
            continue
        codec = _BY_ONEOF.get(which or "")
        if which is None or codec is None or codec.event_type.__name__ in INTERNAL_EVENTS:
            continue  # LotConfigured (terms and secrets), PenaltyAssessed, or an event this version does not know
        accounts = _ACCOUNT_FIELDS.get(which, ()) if rename is not None else ()
        if codec.secret or accounts:
            event = ev.RoomEvent.FromString(event.SerializeToString())
            inner = getattr(event, which)
            for name in codec.secret:
                inner.ClearField(name)
            if rename is not None:
                _rename(inner, accounts, rename)
        shown.append(event)
    return shown


def public_summary(summary: ev.LotSummary, rename: Rename | None) -> ev.LotSummary:
    if rename is None or not summary.HasField("leader_id"):
        return summary
    shown = ev.LotSummary()
    shown.CopyFrom(summary)
    shown.leader_id = rename(summary.leader_id)
    return shown


def sale_of(message: ev.LotEventBatch) -> str | None:
    """The lot's sale, when the batch is the lot's first (LotConfigured carries it)."""
    for event in message.events:
        if event.WhichOneof("event") == "lot_configured":
            return event.lot_configured.lot.sale_id
    return None


def public_batch(data: bytes, rename: Rename | None = None) -> bytes:
    """What an announcement carries: the batch as watchers may see it — public events, secrets
    cleared, accounts renamed, and no command id, actor or request fingerprint (a client's request
    id and the caller's account stay in the stream)."""
    message = ev.LotEventBatch.FromString(data)
    shown = ev.LotEventBatch(
        lot_id=message.lot_id,
        lot_sequence=message.lot_sequence,
        command=message.command,
        decided_at=message.decided_at,
        events=public_events(message, rename),
        after=public_summary(message.after, rename),
    )
    return shown.SerializeToString()


def watch_response(message: ev.LotEventBatch, rename: Rename | None = None) -> pb.WatchResponse:
    return pb.WatchResponse(
        lot_id=message.lot_id,
        lot_sequence=message.lot_sequence,
        occurred_at=message.decided_at,
        events=public_events(message, rename),
        after=public_summary(message.after, rename),
    )


# -- the catalog's Lot ↔ a lot's identity and terms ----------------------------------------------------


def is_live_format(wire_format: int) -> bool:
    return wire_format in (res.FORMAT_ENGLISH, res.FORMAT_DUTCH, res.FORMAT_LUCKY)


def _not_live() -> InvalidArgument:
    return InvalidArgument([FieldViolation("lot.format", "not a live format")])


def lot_from_message(lot: res.Lot) -> tuple[LotInfo, LotTerms]:
    """A catalog lot (LotScheduled.lot, GetLot) as the room runs it, seed included. InvalidArgument
    for a lot no room engine runs (tenders) or whose terms cannot be read (`gavel_kit.lotwire`)."""
    if not is_live_format(lot.format):
        raise _not_live()
    terms = terms_from_lot(lot, keep_seed=True)
    info = LotInfo(
        lot_id=lot.id,
        sale_id=lot.sale_id,
        seller_id=lot.seller_id,
        group_id=lot.group_id,
        room_index=lot.room_index,
        room_count=max(1, lot.room_count),
        product_id=lot.product_id,
        registration_required=lot.registration_required,
    )
    return info, terms


def lot_message(info: LotInfo, terms: LotTerms) -> res.Lot:
    """The inverse of `lot_from_message` (what LotConfigured stores)."""
    if not terms.format.is_live:
        raise _not_live()
    lot = res.Lot(
        id=info.lot_id,
        group_id=info.group_id,
        sale_id=info.sale_id,
        product_id=info.product_id,
        seller_id=info.seller_id,
        room_index=info.room_index,
        room_count=info.room_count,
        registration_required=info.registration_required,
    )
    write_terms(lot, terms)
    return lot


# -- LotView ↔ the API's LotState ------------------------------------------------------------------------

_PHASES = {
    "scheduled": pb.LOT_PHASE_SCHEDULED,
    "open": pb.LOT_PHASE_OPEN,
    "paused": pb.LOT_PHASE_PAUSED,
    "hammered": pb.LOT_PHASE_HAMMERED,
    "passed": pb.LOT_PHASE_PASSED,
    "awaiting_vendor": pb.LOT_PHASE_AWAITING_VENDOR,
    "awaiting_confirmation": pb.LOT_PHASE_AWAITING_CONFIRMATION,
    "sold": pb.LOT_PHASE_SOLD,
    "unsold": pb.LOT_PHASE_UNSOLD,
}


def lot_state_message(view: LotView) -> pb.LotState:
    def money(amount: int) -> Money:
        return Money(amount_minor=amount, currency=view.currency)

    message = pb.LotState(
        lot_id=view.lot_id,
        sale_id=view.sale_id,
        format=view.format,
        close=view.close,
        phase=_PHASES.get(view.phase, pb.LOT_PHASE_UNSPECIFIED),
        lot_sequence=view.lot_sequence,
        price=money(view.price),
        leader_id=view.leader or "",
        round=view.round,
        options=view.options,
        buyer_id=view.buyer or "",
        unsold_reason=view.unsold_reason or "",
        room_index=view.room_index,
        room_count=view.room_count,
    )
    if view.deadline_ms is not None:
        message.deadline.CopyFrom(timestamp(view.deadline_ms))
    if view.asking is not None:
        message.asking.CopyFrom(money(view.asking))
    if view.min_bid is not None:
        message.min_bid.CopyFrom(money(view.min_bid))
    if view.hammer_price is not None:
        message.hammer_price.CopyFrom(money(view.hammer_price))
    return message
