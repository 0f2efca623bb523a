"""Penalties, strikes and bans. Pure.

A bidder who defaults (lets a winning confirmation lapse, or leaves an invoice unpaid past its due
date) is charged the sale's penalty fee — from their deposit for the sale where one is held, the
rest owed — and gets a strike. `strikes_to_ban` strikes within `window` ban them from every sale
at once (BidderBanned) until a site admin lifts the ban with a reason. An admin may reverse a
penalty with a reason: its money moves back and its strike no longer counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class PenaltyReason(StrEnum):
    CONFIRMATION_TIMEOUT = "confirmation_timeout"
    CONFIRMATION_DECLINED = "confirmation_declined"
    NON_PAYMENT = "non_payment"


@dataclass(frozen=True, slots=True)
class Policy:
    strikes_to_ban: int = 3
    window: timedelta = timedelta(days=365)


@dataclass(slots=True)
class Penalty:
    id: str
    bidder_id: str
    sale_id: str
    lot_id: str
    currency: str
    amount: int
    from_deposit: int
    reason: PenaltyReason
    cause: str
    created_at: datetime
    reversed_at: datetime | None = None
    reversed_by: str = ""
    reversal_reason: str = ""

    @property
    def owed(self) -> int:
        return self.amount - self.from_deposit

    @property
    def counts(self) -> bool:
        return self.reversed_at is None


def split_fee(fee: int, deposit_held: int) -> tuple[int, int]:
    """(taken from the deposit, left owed)."""
    from_deposit = min(max(0, deposit_held), fee)
    return from_deposit, fee - from_deposit


def strikes(penalties: Iterable[Penalty], now: datetime, policy: Policy) -> int:
    """Strikes that count now: penalties not reversed, within the window."""
    return sum(1 for p in penalties if p.counts and now - p.created_at <= policy.window)


def reaches_ban(strike_count: int, policy: Policy) -> bool:
    return policy.strikes_to_ban > 0 and strike_count >= policy.strikes_to_ban


def penalty_reason(room_reason: str) -> PenaltyReason:
    return PenaltyReason.CONFIRMATION_DECLINED if room_reason == "declined" else PenaltyReason.CONFIRMATION_TIMEOUT
