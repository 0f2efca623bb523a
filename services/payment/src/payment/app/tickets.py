"""Bid tickets and credit (payment.domain.tickets for the rules)."""

from __future__ import annotations

from datetime import datetime

from gavel_core.errors import FailedPrecondition, NotFound
from payment.app.common import Env
from payment.app.deposits import create_refunds
from payment.app.ports import PaymentUnitOfWork
from payment.domain import accounts
from payment.domain.ledger import transfer
from payment.domain.terms import CreditScope
from payment.domain.tickets import TicketBatch, TicketPack, TicketSpend, credit_scope_of, next_batch


async def grant_tickets(
    uow: PaymentUnitOfWork,
    charge_id: str,
    bidder_id: str,
    pack_id: str,
    currency: str,
    tickets: int,
    unit_minor: int,
    now: datetime,
) -> None:
    """A pack's charge was captured: its money backs the bidder's new tickets."""
    await uow.store.add_batch(
        TicketBatch(
            id=charge_id,
            bidder_id=bidder_id,
            pack_id=pack_id,
            currency=currency,
            unit_minor=unit_minor,
            bought=tickets,
            remaining=tickets,
            refunded=0,
            bought_at=now,
            charge_id=charge_id,
        )
    )
    await uow.ledger.post(
        transfer(
            f"charge:{charge_id}:tickets",
            "tickets_issued",
            f"charge:{charge_id}",
            [
                (accounts.house_tickets("tickets_issued", currency), accounts.tickets(bidder_id, currency), tickets),
            ],
        ),
        now,
    )


async def consume_ticket(
    uow: PaymentUnitOfWork,
    *,
    bidder_id: str,
    sale_id: str,
    lot_id: str,
    product_id: str,
    currency: str,
    cause: str,
    now: datetime,
) -> tuple[int, int]:
    """Spend one ticket on the lot; (tickets left in the currency, the ticket's value)."""
    batches = await uow.store.batches(bidder_id, for_update=True)
    batch = next_batch(batches, currency)
    batch.remaining -= 1
    await uow.store.save_batch(batch)
    await uow.ledger.post(
        transfer(
            f"ticket:{cause}",
            "ticket_spent",
            cause,
            [
                (accounts.tickets(bidder_id, currency), accounts.house_tickets("tickets_spent", currency), 1),
                (
                    accounts.ticket_funds(bidder_id, currency),
                    accounts.ticket_spend(bidder_id, lot_id, currency),
                    batch.unit_minor,
                ),
            ],
            memo=f"bid on lot {lot_id}",
        ),
        now,
    )
    await uow.store.add_spend(TicketSpend(bidder_id, lot_id, product_id, currency, 1, batch.unit_minor))
    left = sum(b.remaining for b in batches if b.currency == currency)
    return left, batch.unit_minor


async def settle_lot_tickets(
    uow: PaymentUnitOfWork, lot_id: str, winner_id: str, any_invoice: bool, cause: str, now: datetime
) -> int:
    """The lot's outcome: the winner's spend is the house's, everyone else's becomes credit."""
    credited = 0
    for spend, settled in await uow.store.spends_of_lot(lot_id):
        if settled:
            continue
        source = accounts.ticket_spend(spend.bidder_id, lot_id, spend.currency)
        if spend.bidder_id == winner_id:
            destination = accounts.house("ticket_revenue", spend.currency)
        else:
            destination = accounts.credit(
                spend.bidder_id, credit_scope_of(spend.product_id, any_invoice), spend.currency
            )
            credited += 1
        await uow.ledger.post(
            transfer(
                f"tickets:{lot_id}:{spend.bidder_id}:settle",
                "ticket_spend_settled",
                cause,
                [(source, destination, spend.value_minor)],
            ),
            now,
        )
        await uow.store.mark_spend_settled(spend.bidder_id, lot_id)
    return credited


def credit_any(scope: CreditScope | None) -> bool:
    return scope is CreditScope.ANY


async def refund_tickets(
    uow: PaymentUnitOfWork, env: Env, *, bidder_id: str, currency: str, count: int, request_key: str, now: datetime
) -> tuple[int, int]:
    """Refund up to `count` unspent tickets (0: all) in the currency; (tickets, amount)."""
    batches = [b for b in await uow.store.batches(bidder_id, for_update=True) if b.currency == currency and b.remaining]
    available = sum(b.remaining for b in batches)
    if available == 0:
        raise FailedPrecondition("NO_TICKETS", f"no unspent ticket in {currency}", {"currency": currency})
    wanted = available if count == 0 else count
    if wanted > available:
        raise FailedPrecondition(
            "NO_TICKETS", f"only {available} unspent tickets in {currency}", {"available": str(available)}
        )
    refunded = amount = 0
    for batch in sorted(batches, key=lambda b: (b.bought_at, b.id), reverse=True):  # newest first
        take = min(batch.remaining, wanted - refunded)
        if take == 0:
            break
        batch.remaining -= take
        batch.refunded += take
        await uow.store.save_batch(batch)
        value = take * batch.unit_minor
        key = f"tickets:{request_key}:{batch.id}"
        await uow.ledger.post(
            transfer(
                key,
                "tickets_refunded",
                f"refund:{request_key}",
                [
                    (accounts.tickets(bidder_id, currency), accounts.house_tickets("tickets_refunded", currency), take),
                    (accounts.ticket_funds(bidder_id, currency), accounts.cash(bidder_id, currency), value),
                ],
            ),
            now,
        )
        await create_refunds(
            uow,
            env,
            bidder_id=bidder_id,
            purpose="ticket_refund",
            target_id=batch.id,
            amount=value,
            currency=currency,
            charges=[(batch.charge_id, value)],
            source_key=key,
            now=now,
        )
        refunded += take
        amount += value
    return refunded, amount


async def require_pack(uow: PaymentUnitOfWork, pack_id: str) -> TicketPack:
    pack = await uow.store.pack(pack_id)
    if pack is None or not pack.active:
        raise NotFound("ticket pack", pack_id)
    return pack
