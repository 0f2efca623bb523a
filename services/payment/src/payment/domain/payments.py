"""Card payments through the provider (charges), refunds, deposits and bans. Pure data and rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from gavel_core.errors import FailedPrecondition


class Purpose(StrEnum):
    INVOICE = "invoice"
    DEPOSIT = "deposit"
    TICKETS = "tickets"


class ChargeStatus(StrEnum):
    PENDING = "pending"  # created; the provider's answer not known yet (or the call timed out)
    REQUIRES_ACTION = "requires_action"  # the card holder must confirm (3-D Secure)
    AUTHORIZED = "authorized"  # the provider holds the money; capture next
    CAPTURED = "captured"  # final: the money is ours, the ledger says where it went
    FAILED = "failed"  # final: declined, insufficient funds, authentication failed
    VOIDED = "voided"  # final: authorized but no longer wanted (the invoice was paid otherwise)

    @property
    def final(self) -> bool:
        return self in (ChargeStatus.CAPTURED, ChargeStatus.FAILED, ChargeStatus.VOIDED)


# Which provider statuses move a charge where (a status never moves back: webhooks may come late
# or twice, in any order).
_RANK = {
    ChargeStatus.PENDING: 0,
    ChargeStatus.REQUIRES_ACTION: 1,
    ChargeStatus.AUTHORIZED: 2,
    ChargeStatus.CAPTURED: 3,
    ChargeStatus.FAILED: 3,
    ChargeStatus.VOIDED: 3,
}


def moves_forward(current: ChargeStatus, new: ChargeStatus) -> bool:
    return not current.final and _RANK[new] > _RANK[current]


@dataclass(slots=True)
class Charge:
    id: str  # also the idempotency key at the provider
    purpose: Purpose
    target_id: str
    bidder_id: str
    currency: str
    amount: int
    status: ChargeStatus
    created_at: datetime
    updated_at: datetime
    payment_method: str
    return_url: str = ""
    provider_ref: str = ""
    provider_version: int = 0
    action_url: str = ""
    failure_reason: str = ""
    refunded: int = 0
    detail: dict[str, str] = field(default_factory=dict)


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(slots=True)
class Refund:
    id: str
    charge_id: str
    bidder_id: str
    currency: str
    amount: int
    purpose: str  # deposit_release, ticket_refund
    target_id: str
    status: RefundStatus
    created_at: datetime
    updated_at: datetime
    provider_ref: str = ""
    failure_reason: str = ""


@dataclass(slots=True)
class DepositRecord:
    bidder_id: str
    sale_id: str
    currency: str
    applied: int = 0
    forfeited: int = 0
    refunded: int = 0
    released: bool = False


@dataclass(slots=True)
class Ban:
    bidder_id: str
    sale_id: str  # "" = every sale
    reason: str
    source: str  # strikes or admin
    active: bool
    banned_at: datetime
    banned_by: str
    lifted_at: datetime | None = None
    lifted_by: str = ""
    lift_reason: str = ""


@dataclass(frozen=True, slots=True)
class LotInfo:
    """What payment knows of a lot (from the room's LotConfigured and the catalog's outcome)."""

    lot_id: str
    sale_id: str
    seller_id: str
    product_id: str
    currency: str
    buyer_premium_bp: int
    tax_bp: int
    title: str = ""
    winner_id: str = ""


def require_reason(reason: str, field_name: str = "reason") -> str:
    from gavel_core.errors import FieldViolation, InvalidArgument

    text = reason.strip()
    if not 1 <= len(text) <= 500 or any(ord(c) < 32 for c in text):
        raise InvalidArgument([FieldViolation(field_name, "1 to 500 characters, no control characters")])
    return text


def require_no_active_charge(active: list[Charge], target: str) -> None:
    if active:
        raise FailedPrecondition(
            "PAYMENT_IN_PROGRESS",
            f"a payment for {target} is already in progress",
            {"payment_id": active[0].id, "status": active[0].status.value},
        )
