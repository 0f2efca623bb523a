"""What payment does with what happened in the rooms and the catalog.

The adapters decode the room's log (gavel_kit.roomlog) and the catalog's LotOutcomeRecorded into
these facts; each is handled once (its stable event id is recorded in the same transaction as its
effects), so a redelivered message has no second effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from payment.app.common import Env, terms_for
from payment.app.deposits import release_deposits
from payment.app.discipline import charge_penalty
from payment.app.invoicing import issue_invoice
from payment.app.ports import PaymentUnitOfWork
from payment.app.tickets import settle_lot_tickets
from payment.domain.discipline import penalty_reason
from payment.domain.payments import LotInfo
from payment.domain.terms import CreditScope


@dataclass(frozen=True, slots=True)
class LotConfigured:
    lot: LotInfo


@dataclass(frozen=True, slots=True)
class LotSold:
    lot_id: str
    buyer_id: str
    hammer_minor: int
    currency: str
    discount_bp: int


@dataclass(frozen=True, slots=True)
class LotUnsold:
    lot_id: str


@dataclass(frozen=True, slots=True)
class PenaltyAssessed:
    lot_id: str
    bidder_id: str
    price_minor: int
    currency: str
    reason: str


@dataclass(frozen=True, slots=True)
class LotOutcome:
    """The catalog recorded a lot's outcome (room or tender); `sale_closed` when it was the last."""

    lot_id: str
    sale_id: str
    winner_id: str
    sale_closed: bool


Fact = LotConfigured | LotSold | LotUnsold | PenaltyAssessed | LotOutcome


async def _credit_any(uow: PaymentUnitOfWork, lot: LotInfo | None) -> bool:
    if lot is None:
        return False
    terms = await uow.store.terms(lot.sale_id)
    return terms is not None and terms.credit_scope is CreditScope.ANY


async def handle(uow: PaymentUnitOfWork, env: Env, event_id: str, fact: Fact, now: datetime) -> bool:
    """Apply one fact; False if it was handled before."""
    if not await uow.store.first_time(event_id, now):
        return False
    cause = f"event:{event_id}"
    match fact:
        case LotConfigured():
            await uow.store.save_lot(fact.lot)
        case LotSold():
            await issue_invoice(
                uow,
                env,
                lot_id=fact.lot_id,
                buyer_id=fact.buyer_id,
                hammer_minor=fact.hammer_minor,
                currency=fact.currency,
                discount_bp=fact.discount_bp,
                cause=cause,
                now=now,
            )
            known = await uow.store.lot(fact.lot_id)
            await settle_lot_tickets(uow, fact.lot_id, fact.buyer_id, await _credit_any(uow, known), cause, now)
        case LotUnsold():
            known = await uow.store.lot(fact.lot_id)
            await settle_lot_tickets(uow, fact.lot_id, "", await _credit_any(uow, known), cause, now)
        case PenaltyAssessed():
            known = await uow.store.lot(fact.lot_id)
            sale_id = known.sale_id if known is not None else ""
            await charge_penalty(
                uow,
                env,
                bidder_id=fact.bidder_id,
                sale_id=sale_id,
                lot_id=fact.lot_id,
                price_minor=fact.price_minor,
                currency=fact.currency,
                reason=penalty_reason(fact.reason),
                cause=cause,
                now=now,
            )
        case LotOutcome():
            if fact.winner_id:
                await uow.store.set_lot_winner(fact.lot_id, fact.sale_id, fact.winner_id)
            if fact.sale_closed and await uow.store.close_sale(fact.sale_id, now):
                await release_deposits(uow, env, fact.sale_id, now)
    return True


__all__ = ["Fact", "LotConfigured", "LotOutcome", "LotSold", "LotUnsold", "PenaltyAssessed", "handle", "terms_for"]
