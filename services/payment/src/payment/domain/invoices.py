"""Invoices: what a buyer owes for a lot, and how it is paid. Pure."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from gavel_core.errors import FailedPrecondition
from payment.domain.terms import SaleTerms, TaxBase, bp_of, premium


class InvoiceStatus(StrEnum):
    ISSUED = "issued"
    OVERDUE = "overdue"
    PAID = "paid"


@dataclass(frozen=True, slots=True)
class InvoiceAmounts:
    """hammer - discount + premium + tax = gross; gross - deposit - credit = what remains to pay."""

    hammer: int
    discount: int
    premium: int
    tax: int
    deposit_applied: int
    credit_applied: int

    @property
    def net_hammer(self) -> int:
        return self.hammer - self.discount

    @property
    def gross(self) -> int:
        return self.net_hammer + self.premium + self.tax

    @property
    def to_pay(self) -> int:
        return self.gross - self.deposit_applied - self.credit_applied


def price_lot(hammer: int, discount_bp: int, terms: SaleTerms) -> InvoiceAmounts:
    """The amounts before deposit and credit: the paddle discount comes off the hammer, the premium
    is on the discounted hammer (bands), the tax on the premium or on the whole, per the terms."""
    discount = min(hammer, bp_of(hammer, max(0, discount_bp)))
    net = hammer - discount
    prem = premium(net, terms.premium_bands)
    taxable = prem if terms.tax_base is TaxBase.PREMIUM else net + prem
    return InvoiceAmounts(hammer, discount, prem, bp_of(taxable, terms.tax_bp), 0, 0)


def apply_funds(amounts: InvoiceAmounts, deposit_held: int, credit_available: int) -> InvoiceAmounts:
    """Use the deposit first, then ticket credit, never more than the gross."""
    deposit = min(max(0, deposit_held), amounts.gross)
    credit = min(max(0, credit_available), amounts.gross - deposit)
    return replace(amounts, deposit_applied=deposit, credit_applied=credit)


@dataclass(slots=True)
class Invoice:
    id: str
    number: str
    bidder_id: str
    seller_id: str
    sale_id: str
    lot_id: str
    product_id: str
    currency: str
    amounts: InvoiceAmounts
    status: InvoiceStatus
    issued_at: datetime
    due_at: datetime
    cause: str  # the room event (or tender award) it was issued for
    paid_at: datetime | None = None
    paid_by: str = ""  # card, bank_transfer, funds (deposit and credit covered it)
    terms_version: int = 0
    version: int = 0

    @property
    def open(self) -> bool:
        return self.status in (InvoiceStatus.ISSUED, InvoiceStatus.OVERDUE)

    def require_open(self) -> None:
        if not self.open:
            raise FailedPrecondition(
                "INVALID_STATE",
                f"invoice {self.number} is {self.status.value}",
                {"resource": "invoice", "resource_id": self.id, "current_state": self.status.value},
            )

    def settle(self, now: datetime, by: str) -> None:
        self.status = InvoiceStatus.PAID
        self.paid_at = now
        self.paid_by = by

    def is_overdue(self, now: datetime) -> bool:
        return self.status is InvoiceStatus.ISSUED and now >= self.due_at


def due_date(issued_at: datetime, terms: SaleTerms) -> datetime:
    return issued_at + timedelta(days=terms.payment_due_days)
