"""Domain events to their gavel.events.v1 messages (payment_events.proto, eligibility_events.proto)."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from gavel.common.v1.money_pb2 import Money
from gavel.events.v1 import eligibility_events_pb2 as elig
from gavel.events.v1 import payment_events_pb2 as pay
from payment.domain import events as ev


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def money(amount: int, currency: str) -> Money:
    return Money(amount_minor=amount, currency=currency)


def event_message(event: ev.PaymentEvent) -> Message:
    at = timestamp(event.occurred_at)
    match event:
        case ev.InvoiceIssued():
            return pay.InvoiceIssued(
                event_id=event.event_id,
                occurred_at=at,
                invoice_id=event.invoice_id,
                bidder_id=event.bidder_id,
                sale_id=event.sale_id,
                lot_id=event.lot_id,
                total=money(event.total_minor, event.currency),
                due_at=timestamp(event.due_at),
                to_pay=money(event.to_pay_minor, event.currency),
                seller_id=event.seller_id,
            )
        case ev.PaymentCaptured():
            return pay.PaymentCaptured(
                event_id=event.event_id,
                occurred_at=at,
                invoice_id=event.invoice_id,
                bidder_id=event.bidder_id,
                payment_id=event.payment_id,
                amount=money(event.amount_minor, event.currency),
                invoice_settled=event.invoice_settled,
                method=event.method,
            )
        case ev.PaymentFailed():
            return pay.PaymentFailed(
                event_id=event.event_id,
                occurred_at=at,
                invoice_id=event.invoice_id,
                bidder_id=event.bidder_id,
                payment_id=event.payment_id,
                reason=event.reason,
            )
        case ev.InvoiceOverdue():
            return pay.InvoiceOverdue(
                event_id=event.event_id,
                occurred_at=at,
                invoice_id=event.invoice_id,
                bidder_id=event.bidder_id,
                total=money(event.total_minor, event.currency),
                due_at=timestamp(event.due_at),
            )
        case ev.PenaltyCharged():
            return pay.PenaltyCharged(
                event_id=event.event_id,
                occurred_at=at,
                penalty_id=event.penalty_id,
                bidder_id=event.bidder_id,
                sale_id=event.sale_id,
                lot_id=event.lot_id,
                amount=money(event.amount_minor, event.currency),
                reason=event.reason,
                strikes=event.strikes,
                from_deposit=money(event.from_deposit_minor, event.currency),
            )
        case ev.PenaltyReversed():
            return pay.PenaltyReversed(
                event_id=event.event_id,
                occurred_at=at,
                penalty_id=event.penalty_id,
                bidder_id=event.bidder_id,
                reason=event.reason,
                strikes=event.strikes,
            )
        case ev.BidderBanned():
            return elig.BidderBanned(
                event_id=event.event_id,
                occurred_at=at,
                bidder_id=event.bidder_id,
                sale_id=event.sale_id,
                reason=event.reason,
            )
        case ev.BidderUnbanned():
            return elig.BidderUnbanned(
                event_id=event.event_id, occurred_at=at, bidder_id=event.bidder_id, sale_id=event.sale_id
            )
        case ev.BidLimitSet():
            limit = None if event.limit_minor is None else money(event.limit_minor, event.currency)
            return elig.BidLimitSet(
                event_id=event.event_id, occurred_at=at, bidder_id=event.bidder_id, sale_id=event.sale_id, limit=limit
            )
        case ev.RefundCompleted():
            return pay.RefundCompleted(
                event_id=event.event_id,
                occurred_at=at,
                refund_id=event.refund_id,
                bidder_id=event.bidder_id,
                payment_id=event.payment_id,
                amount=money(event.amount_minor, event.currency),
                purpose=event.purpose,
                target_id=event.target_id,
            )
    raise TypeError(f"no message for {type(event).__name__}")
