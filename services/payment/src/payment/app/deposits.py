"""Deposits: held per (bidder, sale) in the ledger, turned into buying power, applied to the
winner's invoices, forfeited to penalties, and refunded to everyone else when the sale closes."""

from __future__ import annotations

from datetime import datetime

from payment.app.common import Env, announce_buying_power
from payment.app.ports import PaymentUnitOfWork
from payment.domain import accounts
from payment.domain.ledger import transfer
from payment.domain.payments import Purpose, Refund, RefundStatus


async def create_refunds(
    uow: PaymentUnitOfWork,
    env: Env,
    *,
    bidder_id: str,
    purpose: str,
    target_id: str,
    amount: int,
    currency: str,
    charges: list[tuple[str, int]],
    source_key: str,
    now: datetime,
) -> list[Refund]:
    """Refund `amount` back onto the charges it came from (id, refundable), newest first. The money
    moves to the bidder's cash account now (reserved for the refund) and to the provider when the
    provider confirms (`payment.app.charges.Payments.process_refund`)."""
    made: list[Refund] = []
    left = amount
    for number, (charge_id, refundable) in enumerate(charges):
        take = min(left, refundable)
        if take <= 0:
            continue
        refund = Refund(
            id=f"refund:{source_key}:{number}",
            charge_id=charge_id,
            bidder_id=bidder_id,
            currency=currency,
            amount=take,
            purpose=purpose,
            target_id=target_id,
            status=RefundStatus.PENDING,
            created_at=now,
            updated_at=now,
        )
        await uow.store.add_refund(refund)
        made.append(refund)
        left -= take
        if left == 0:
            break
    return made


async def release_deposits(
    uow: PaymentUnitOfWork, env: Env, sale_id: str, now: datetime, *, bidder_id: str = ""
) -> int:
    """Refund what every bidder (or one) still holds for the sale, except winners whose invoice
    has not been issued yet (it is released after the invoice uses what it needs)."""
    released = 0
    lots = await uow.store.lots_of_sale(sale_id)
    for record in await uow.store.deposits(bidder_id=bidder_id, sale_id=sale_id):
        if record.released:
            continue
        waiting = [
            lot
            for lot in lots
            if lot.winner_id == record.bidder_id and await uow.store.invoice_for_lot(lot.lot_id) is None
        ]
        if waiting:
            continue
        account = accounts.deposit(record.bidder_id, sale_id, record.currency)
        held = await uow.ledger.balance(account)
        if held > 0:
            charges = [
                (c.id, c.amount - c.refunded)
                for c in reversed(await uow.store.captured_charges(Purpose.DEPOSIT, record.bidder_id, sale_id))
            ]
            key = f"deposit:{sale_id}:{record.bidder_id}:{now.timestamp():.0f}"
            await uow.ledger.post(
                transfer(
                    key,
                    "deposit_released",
                    f"sale:{sale_id}",
                    [(account, accounts.cash(record.bidder_id, record.currency), held)],
                ),
                now,
            )
            await create_refunds(
                uow,
                env,
                bidder_id=record.bidder_id,
                purpose="deposit_release",
                target_id=sale_id,
                amount=held,
                currency=record.currency,
                charges=charges,
                source_key=key,
                now=now,
            )
        record.released = True
        await uow.store.save_deposit(record)
        await announce_buying_power(uow, env, record.bidder_id, sale_id, now, released=True)
        released += 1
    return released
