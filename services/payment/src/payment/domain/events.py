"""What the payment service announces (gavel.events.v1 payment and eligibility events). Pure data;
the adapter maps each to its protobuf message and subject (docs/events.md "Payment")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

STREAM = "PAYMENT_EVENTS"
SUBJECT_PREFIX = "gavel.payment"


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class InvoiceIssued(Event):
    invoice_id: str
    bidder_id: str
    sale_id: str
    lot_id: str
    currency: str
    total_minor: int
    to_pay_minor: int
    due_at: datetime
    seller_id: str

    @property
    def subject(self) -> str:
        return f"{SUBJECT_PREFIX}.invoice.issued.{self.invoice_id}"


@dataclass(frozen=True, slots=True)
class PaymentCaptured(Event):
    invoice_id: str
    bidder_id: str
    payment_id: str
    currency: str
    amount_minor: int
    invoice_settled: bool
    method: str

    @property
    def subject(self) -> str:
        return f"{SUBJECT_PREFIX}.invoice.paid.{self.invoice_id}"


@dataclass(frozen=True, slots=True)
class PaymentFailed(Event):
    invoice_id: str
    bidder_id: str
    payment_id: str
    reason: str

    @property
    def subject(self) -> str:
        return f"{SUBJECT_PREFIX}.invoice.payment_failed.{self.invoice_id}"


@dataclass(frozen=True, slots=True)
class InvoiceOverdue(Event):
    invoice_id: str
    bidder_id: str
    currency: str
    total_minor: int
    due_at: datetime

    @property
    def subject(self) -> str:
        return f"{SUBJECT_PREFIX}.invoice.overdue.{self.invoice_id}"


@dataclass(frozen=True, slots=True)
class PenaltyCharged(Event):
    penalty_id: str
    bidder_id: str
    sale_id: str
    lot_id: str
    currency: str
    amount_minor: int
    reason: str
    strikes: int
    from_deposit_minor: int

    @property
    def subject(self) -> str:
        return f"{SUBJECT_PREFIX}.penalty.charged.{self.bidder_id}"


@dataclass(frozen=True, slots=True)
class PenaltyReversed(Event):
    penalty_id: str
    bidder_id: str
    reason: str
    strikes: int

    @property
    def subject(self) -> str:
        return f"{SUBJECT_PREFIX}.penalty.reversed.{self.bidder_id}"


@dataclass(frozen=True, slots=True)
class BidderBanned(Event):
    bidder_id: str
    sale_id: str
    reason: str

    @property
    def subject(self) -> str:
        return f"{SUBJECT_PREFIX}.bidder.banned.{self.bidder_id}"


@dataclass(frozen=True, slots=True)
class BidderUnbanned(Event):
    bidder_id: str
    sale_id: str

    @property
    def subject(self) -> str:
        return f"{SUBJECT_PREFIX}.bidder.unbanned.{self.bidder_id}"


@dataclass(frozen=True, slots=True)
class BidLimitSet(Event):
    bidder_id: str
    sale_id: str
    currency: str
    limit_minor: int | None  # None: no limit of this scope

    @property
    def subject(self) -> str:
        return f"{SUBJECT_PREFIX}.bidder.bid_limit_set.{self.bidder_id}"


@dataclass(frozen=True, slots=True)
class RefundCompleted(Event):
    refund_id: str
    bidder_id: str
    payment_id: str
    currency: str
    amount_minor: int
    purpose: str
    target_id: str

    @property
    def subject(self) -> str:
        return f"{SUBJECT_PREFIX}.refund.completed.{self.bidder_id}"


PaymentEvent = (
    InvoiceIssued
    | PaymentCaptured
    | PaymentFailed
    | InvoiceOverdue
    | PenaltyCharged
    | PenaltyReversed
    | BidderBanned
    | BidderUnbanned
    | BidLimitSet
    | RefundCompleted
)
