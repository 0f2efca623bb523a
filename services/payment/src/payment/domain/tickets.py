"""Bid tickets (the bid-ticket seed): bought in packs, spent one per bid, refundable while unspent;
what a bidder spent on a lot they did not win becomes credit ("subscription money"). Pure.

Every ticket keeps the money value it was bought at (`unit_minor` of its pack), so spending one
moves exactly that value from the bidder's ticket funds to their spend on the lot, and the lot's
outcome moves the spend to the house (the winner's) or to credit (everyone else's). In ticket
units the ledger keeps bought = spent + remaining + refunded at every moment:
`house tickets_issued = -(spent + remaining + refunded)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gavel_core.errors import FailedPrecondition, Violations
from gavel_core.money import MAX_AMOUNT_MINOR, validate_currency

MAX_TICKETS_PER_PACK = 10_000


@dataclass(frozen=True, slots=True)
class TicketPack:
    """What a bidder can buy: `tickets` tickets at `unit_minor` each."""

    id: str
    currency: str
    tickets: int
    unit_minor: int
    active: bool = True

    @property
    def price_minor(self) -> int:
        return self.tickets * self.unit_minor

    def validate(self) -> TicketPack:
        problems = Violations()
        problems.require(bool(self.id) and len(self.id) <= 64, "pack.id", "1 to 64 characters")
        try:
            validate_currency(self.currency, "pack.currency")
        except Exception:
            problems.add("pack.currency", f"unknown currency {self.currency!r}")
        problems.require(1 <= self.tickets <= MAX_TICKETS_PER_PACK, "pack.tickets", f"1 to {MAX_TICKETS_PER_PACK}")
        problems.require(
            self.unit_minor >= 1 and self.unit_minor * max(1, self.tickets) <= MAX_AMOUNT_MINOR,
            "pack.unit_price",
            "must be positive",
        )
        problems.raise_if_any()
        return self


@dataclass(slots=True)
class TicketBatch:
    """One pack a bidder bought (its charge id), and what is left of it."""

    id: str
    bidder_id: str
    pack_id: str
    currency: str
    unit_minor: int
    bought: int
    remaining: int
    refunded: int
    bought_at: datetime
    charge_id: str
    version: int = 0

    @property
    def spent(self) -> int:
        return self.bought - self.remaining - self.refunded


def next_batch(batches: Sequence[TicketBatch], currency: str) -> TicketBatch:
    """The oldest batch with a ticket left in `currency` (first in, first out), or NO_TICKETS."""
    for batch in sorted(batches, key=lambda b: (b.bought_at, b.id)):
        if batch.currency == currency and batch.remaining > 0:
            return batch
    raise FailedPrecondition("NO_TICKETS", f"no bid ticket left in {currency}", {"currency": currency})


@dataclass(frozen=True, slots=True)
class TicketSpend:
    """A bidder's spend on one lot: how many tickets, worth how much."""

    bidder_id: str
    lot_id: str
    product_id: str
    currency: str
    tickets: int
    value_minor: int


def credit_scope_of(product_id: str, any_invoice: bool) -> str:
    return "*" if any_invoice else product_id
