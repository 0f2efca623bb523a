"""What every use case shares: its environment, terms lookup, ownership checks, limit events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from gavel_core.auth import Principal, Role
from gavel_core.errors import NotFound, PermissionDenied
from payment.app.ports import IdGenerator, PaymentUnitOfWork
from payment.domain import accounts
from payment.domain.discipline import Policy
from payment.domain.events import BidLimitSet
from payment.domain.payments import LotInfo
from payment.domain.terms import SaleTerms


@dataclass(frozen=True, slots=True)
class Env:
    ids: IdGenerator
    policy: Policy = field(default_factory=Policy)


async def terms_for(uow: PaymentUnitOfWork, sale_id: str, lot: LotInfo | None = None) -> SaleTerms:
    """The sale's own terms, else the catalog lot's flat premium and tax (on the whole)."""
    terms = await uow.store.terms(sale_id)
    if terms is not None:
        return terms
    if lot is None:
        lots = await uow.store.lots_of_sale(sale_id)
        lot = lots[0] if lots else None
    if lot is None:
        raise NotFound("sale terms", sale_id)
    return SaleTerms.default(sale_id, lot.currency, lot.buyer_premium_bp, lot.tax_bp)


def require_self_or_staff(principal: Principal, bidder_id: str) -> str:
    """The bidder whose data is asked for: the caller themself, or anyone for admins and services."""
    if not bidder_id:
        return principal.subject
    if bidder_id != principal.subject and not principal.has(Role.SALE_ADMIN, Role.SITE_ADMIN, Role.SERVICE):
        raise PermissionDenied("a bidder sees only their own payments", reason="NOT_OWNER")
    return bidder_id


async def announce_buying_power(
    uow: PaymentUnitOfWork, env: Env, bidder_id: str, sale_id: str, now: datetime, *, released: bool = False
) -> None:
    """BidLimitSet for (bidder, sale): deposit held x the sale's multiplier, or no limit once released."""
    terms = await uow.store.terms(sale_id)
    if terms is None:
        return  # without terms payment sets no limit (the sale asks for no deposit)
    if released:
        limit: int | None = None
    else:
        held = await uow.ledger.balance(accounts.deposit(bidder_id, sale_id, terms.currency))
        limit = terms.buying_power(held)
    await uow.collect(
        BidLimitSet(
            event_id=env.ids.new_id(),
            occurred_at=now,
            bidder_id=bidder_id,
            sale_id=sale_id,
            currency=terms.currency,
            limit_minor=limit,
        )
    )
