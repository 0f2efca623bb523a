"""The event table: which NATS events notify reads and the facts (notify.app.events) each becomes.

A new kind of notice from an existing stream is one entry in `CATALOG_ROUTES`, `PAYMENT_ROUTES` or
`ROOM_ROUTES`; a new stream is one `Source`. The tender book (issue: tender) will add
`Source("TENDER_EVENTS", "notify-tender", "gavel.tender.>", …)` with one route,
`"closing_soon" → Notice(kind="tender_closing_soon")`, once its events exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp

from gavel.catalog.v1 import resources_pb2 as res
from gavel.events.v1 import catalog_events_pb2 as cat
from gavel.events.v1 import eligibility_events_pb2 as elig
from gavel.events.v1 import payment_events_pb2 as pay
from gavel.events.v1 import room_events_pb2 as room
from gavel_core.increments import resolve_increments
from gavel_kit import roomlog
from gavel_kit.logging import get_logger
from notify.app import events as facts
from notify.app.ports import LotInfo, ReservationInfo, SaleInfo

log = get_logger("notify.events")


def at(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def maybe_at(message: Message, field: str) -> datetime | None:
    return at(getattr(message, field)) if message.HasField(field) else None


def money(value: Any) -> dict[str, Any]:
    return {"amount_minor": int(value.amount_minor), "currency": value.currency}


# -- catalog ------------------------------------------------------------------------------------


def sale_published(e: cat.SalePublished) -> list[facts.Fact]:
    return [facts.SaleSeen(SaleInfo(e.sale_id, e.title, e.time_zone))]


def lot_info(lot: res.Lot, estimated_start: datetime | None = None) -> LotInfo:
    increments: tuple[tuple[int, int], ...] = ()
    if lot.WhichOneof("params") == "english":
        try:
            table = resolve_increments(
                [[t.from_amount, t.step] for t in lot.english.increments], lot.english.increment_preset, "increments"
            )
            increments = tuple((int(a), int(b)) for a, b in table.as_lists())
        except Exception:
            increments = ()
    return LotInfo(
        lot_id=lot.id,
        group_id=lot.group_id,
        sale_id=lot.sale_id,
        position=lot.position,
        room_index=lot.room_index,
        currency=lot.currency,
        increments=increments,
        estimated_start=estimated_start or maybe_at(lot, "estimated_start"),
    )


def lot_scheduled(e: cat.LotScheduled) -> list[facts.Fact]:
    return [facts.LotSeen(lot_info(e.lot, maybe_at(e, "estimated_start")))]


def lot_starting(e: cat.LotStarting) -> list[facts.Fact]:
    return [facts.LotStarted(e.event_id, at(e.started_at), e.lot_id, e.group_id, e.sale_id)]


def lot_outcome_recorded(e: cat.LotOutcomeRecorded) -> list[facts.Fact]:
    return [facts.LotClosed(e.lot_id, at(e.closed_at) if e.HasField("closed_at") else at(e.occurred_at))]


def reservation_created(e: cat.ReservationCreated) -> list[facts.Fact]:
    reservation = ReservationInfo(e.reservation_id, e.bidder_id, e.group_id, e.sale_id, maybe_at(e, "estimated_start"))
    return [facts.ReservationMade(e.event_id, at(e.occurred_at), reservation)]


def reservation_cancelled(e: cat.ReservationCancelled) -> list[facts.Fact]:
    return [facts.ReservationDropped(e.reservation_id)]


def registration_decided(e: cat.RegistrationDecided) -> list[facts.Fact]:
    kinds = {
        res.REGISTRATION_STATUS_APPROVED: "registration_approved",
        res.REGISTRATION_STATUS_REJECTED: "registration_rejected",
    }
    kind = kinds.get(e.status)
    if kind is None:
        return []
    return [facts.Notice(e.event_id, at(e.occurred_at), e.bidder_id, kind, {"sale_id": e.sale_id, "reason": e.reason})]


def sale_cancelled(e: cat.SaleCancelled) -> list[facts.Fact]:
    return [facts.SaleCancelled(e.event_id, at(e.occurred_at), e.sale_id, e.reason)]


def lots_retimed(e: cat.LotsRetimed) -> list[facts.Fact]:
    return [facts.GroupRetimed(g.group_id, tuple(g.lot_ids), at(g.estimated_start)) for g in e.groups]


# -- payment ------------------------------------------------------------------------------------


def invoice_issued(e: pay.InvoiceIssued) -> list[facts.Fact]:
    owed = e.to_pay if e.HasField("to_pay") else e.total  # after the deposit and ticket credit
    params = {"invoice_id": e.invoice_id, "total": money(owed), "due_at": at(e.due_at).isoformat()}
    return [facts.Notice(e.event_id, at(e.occurred_at), e.bidder_id, "payment_due", params, lot_id=e.lot_id)]


def invoice_overdue(e: pay.InvoiceOverdue) -> list[facts.Fact]:
    params = {"invoice_id": e.invoice_id, "total": money(e.total), "due_at": at(e.due_at).isoformat()}
    return [facts.Notice(e.event_id, at(e.occurred_at), e.bidder_id, "payment_overdue", params)]


def payment_failed(e: pay.PaymentFailed) -> list[facts.Fact]:
    params = {"invoice_id": e.invoice_id, "reason": e.reason}
    return [facts.Notice(e.event_id, at(e.occurred_at), e.bidder_id, "payment_failed", params)]


def penalty_charged(e: pay.PenaltyCharged) -> list[facts.Fact]:
    params = {"amount": money(e.amount), "reason": e.reason, "strikes": int(e.strikes), "sale_id": e.sale_id}
    return [facts.Notice(e.event_id, at(e.occurred_at), e.bidder_id, "penalty", params)]


def payment_captured(e: pay.PaymentCaptured) -> list[facts.Fact]:
    params = {"invoice_id": e.invoice_id, "amount": money(e.amount), "settled": e.invoice_settled}
    return [facts.Notice(e.event_id, at(e.occurred_at), e.bidder_id, "payment_received", params)]


def penalty_reversed(e: pay.PenaltyReversed) -> list[facts.Fact]:
    params = {"penalty_id": e.penalty_id, "reason": e.reason, "strikes": int(e.strikes)}
    return [facts.Notice(e.event_id, at(e.occurred_at), e.bidder_id, "penalty_reversed", params)]


def refund_completed(e: pay.RefundCompleted) -> list[facts.Fact]:
    params = {"refund_id": e.refund_id, "amount": money(e.amount), "purpose": e.purpose}
    return [facts.Notice(e.event_id, at(e.occurred_at), e.bidder_id, "refund_completed", params)]


def bidder_banned(e: elig.BidderBanned) -> list[facts.Fact]:
    params = {"sale_id": e.sale_id, "reason": e.reason}
    return [facts.Notice(e.event_id, at(e.occurred_at), e.bidder_id, "banned", params)]


def bidder_unbanned(e: elig.BidderUnbanned) -> list[facts.Fact]:
    return [facts.Notice(e.event_id, at(e.occurred_at), e.bidder_id, "unbanned", {"sale_id": e.sale_id})]


# -- room (through gavel_kit.roomlog) -------------------------------------------------------------

RoomTranslate = Callable[[str, room.LotEventBatch, room.RoomEvent, Any], list[facts.Fact]]


def _outbid(
    event_id: str, batch: room.LotEventBatch, ev: room.RoomEvent, previous: str, now_leader: str, price: Any
) -> list[facts.Fact]:
    if not previous or previous == now_leader:
        return []
    return [facts.Outbid(event_id, at(ev.at), batch.lot_id, previous, int(price.amount_minor), price.currency)]


def bid_accepted(event_id: str, batch: room.LotEventBatch, ev: room.RoomEvent, e: room.BidAccepted) -> list[facts.Fact]:
    previous = e.previous_leader if e.HasField("previous_leader") else ""
    return [facts.BidSeen(batch.lot_id, e.bidder), *_outbid(event_id, batch, ev, previous, e.leader, e.price)]


def floor_bid_accepted(
    event_id: str, batch: room.LotEventBatch, ev: room.RoomEvent, e: room.FloorBidAccepted
) -> list[facts.Fact]:
    previous = e.previous_leader if e.HasField("previous_leader") else ""
    return _outbid(event_id, batch, ev, previous, e.bidder, e.amount)


def lot_configured(
    event_id: str, batch: room.LotEventBatch, ev: room.RoomEvent, e: room.LotConfigured
) -> list[facts.Fact]:
    return [facts.LotSeen(lot_info(e.lot))]


def confirmation_requested(
    event_id: str, batch: room.LotEventBatch, ev: room.RoomEvent, e: room.ConfirmationRequested
) -> list[facts.Fact]:
    params = {"price": money(e.price), "deadline": at(e.deadline).isoformat(), "attempt": int(e.attempt)}
    return [facts.Notice(event_id, at(ev.at), e.bidder, "provisional_win", params, lot_id=batch.lot_id)]


def lot_sold(event_id: str, batch: room.LotEventBatch, ev: room.RoomEvent, e: room.LotSold) -> list[facts.Fact]:
    won = facts.Notice(event_id, at(ev.at), e.buyer, "won", {"price": money(e.hammer_price)}, lot_id=batch.lot_id)
    return [facts.LotClosed(batch.lot_id, at(ev.at)), won]


def lot_unsold(event_id: str, batch: room.LotEventBatch, ev: room.RoomEvent, e: room.LotUnsold) -> list[facts.Fact]:
    return [facts.LotClosed(batch.lot_id, at(ev.at))]


def closing_soon(event_id: str, batch: room.LotEventBatch, ev: room.RoomEvent, e: room.ClosingSoon) -> list[facts.Fact]:
    return [facts.ClosingSoon(event_id, at(ev.at), batch.lot_id, at(e.deadline))]


@dataclass(frozen=True, slots=True)
class Route:
    message: type[Message]
    translate: Callable[[Any], list[facts.Fact]]


CATALOG_ROUTES: Mapping[str, Route] = {
    "sale_published": Route(cat.SalePublished, sale_published),
    "sale_cancelled": Route(cat.SaleCancelled, sale_cancelled),
    "lot_scheduled": Route(cat.LotScheduled, lot_scheduled),
    "lot_starting": Route(cat.LotStarting, lot_starting),
    "lot_outcome_recorded": Route(cat.LotOutcomeRecorded, lot_outcome_recorded),
    "reservation_created": Route(cat.ReservationCreated, reservation_created),
    "reservation_cancelled": Route(cat.ReservationCancelled, reservation_cancelled),
    "registration_decided": Route(cat.RegistrationDecided, registration_decided),
    "lots_retimed": Route(cat.LotsRetimed, lots_retimed),
}

PAYMENT_ROUTES: Mapping[str, Route] = {
    "invoice.issued": Route(pay.InvoiceIssued, invoice_issued),
    "invoice.overdue": Route(pay.InvoiceOverdue, invoice_overdue),
    "invoice.payment_failed": Route(pay.PaymentFailed, payment_failed),
    "invoice.paid": Route(pay.PaymentCaptured, payment_captured),
    "penalty.reversed": Route(pay.PenaltyReversed, penalty_reversed),
    "refund.completed": Route(pay.RefundCompleted, refund_completed),
    "penalty.charged": Route(pay.PenaltyCharged, penalty_charged),
    "bidder.banned": Route(elig.BidderBanned, bidder_banned),
    "bidder.unbanned": Route(elig.BidderUnbanned, bidder_unbanned),
}

ROOM_ROUTES: Mapping[str, RoomTranslate] = {
    "lot_configured": lot_configured,
    "bid_accepted": bid_accepted,
    "floor_bid_accepted": floor_bid_accepted,
    "confirmation_requested": confirmation_requested,
    "lot_sold": lot_sold,
    "lot_unsold": lot_unsold,
    "closing_soon": closing_soon,
}


def _by_subject(prefix: str, routes: Mapping[str, Route]) -> Callable[[str, bytes], list[facts.Fact]]:
    """Decode `gavel.<domain>.<route…>.<id>` with the route its middle tokens name."""

    def decode(subject: str, data: bytes) -> list[facts.Fact]:
        if not subject.startswith(prefix):
            return []
        middle = subject[len(prefix) :].rsplit(".", 1)[0]
        route = routes.get(middle)
        if route is None:
            return []
        return route.translate(route.message.FromString(data))

    return decode


def room_facts(subject: str, data: bytes) -> list[facts.Fact]:
    found: list[facts.Fact] = []
    for event_id, batch, event in roomlog.events(data):
        name = event.WhichOneof("event")
        translate = ROOM_ROUTES.get(name or "")
        if translate is not None:
            found.extend(translate(event_id, batch, event, getattr(event, name or "")))
    return found


@dataclass(frozen=True, slots=True)
class Source:
    """One durable consumer: a stream notify reads (owned by another service) and how to decode it."""

    stream: str
    durable: str
    filter_subject: str
    decode: Callable[[str, bytes], list[facts.Fact]]


SOURCES = (
    Source("CATALOG", "notify-catalog", "gavel.catalog.>", _by_subject("gavel.catalog.", CATALOG_ROUTES)),
    Source(roomlog.STREAM, "notify-room", roomlog.SUBJECTS, room_facts),
    Source("PAYMENT_EVENTS", "notify-payment", "gavel.payment.>", _by_subject("gavel.payment.", PAYMENT_ROUTES)),
)


def decode_all(source: Source, messages: Iterable[tuple[str, bytes]]) -> Iterator[facts.Fact]:
    """Every fact of a batch, in order; a message that does not decode is logged and skipped
    (retrying it would never succeed and would hold the consumer back)."""
    for subject, data in messages:
        try:
            yield from source.decode(subject, data)
        except (DecodeError, ValueError, KeyError) as exc:
            log.warning("undecodable event skipped", consumer=source.durable, subject=subject, error=repr(exc))
