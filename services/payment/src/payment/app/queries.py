"""Reads: eligibility, wallets, settlement statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from payment.app.common import Env
from payment.app.discipline import strike_count
from payment.app.ports import PaymentUnitOfWork
from payment.domain import accounts
from payment.domain.invoices import Invoice, InvoiceStatus


@dataclass(frozen=True, slots=True)
class Eligibility:
    banned: bool
    ban_reason: str
    currency: str
    deposit_held: int
    buying_power: int | None
    strikes: int


async def eligibility(uow: PaymentUnitOfWork, env: Env, bidder_id: str, sale_id: str, now: datetime) -> Eligibility:
    bans = [await uow.store.ban(bidder_id, "")] + ([await uow.store.ban(bidder_id, sale_id)] if sale_id else [])
    active = [b for b in bans if b is not None and b.active]
    terms = await uow.store.terms(sale_id) if sale_id else None
    held = 0
    power: int | None = None
    currency = ""
    if terms is not None:
        currency = terms.currency
        held = await uow.ledger.balance(accounts.deposit(bidder_id, sale_id, terms.currency))
        record = await uow.store.deposit(bidder_id, sale_id)
        power = terms.buying_power(held) if record is not None and not record.released else None
    return Eligibility(
        banned=bool(active),
        ban_reason=active[0].reason if active else "",
        currency=currency,
        deposit_held=held,
        buying_power=power,
        strikes=await strike_count(uow, env, bidder_id, now),
    )


@dataclass(frozen=True, slots=True)
class StatementLine:
    invoice: Invoice
    commission: int

    @property
    def paid(self) -> bool:
        return self.invoice.status is InvoiceStatus.PAID


async def settlement_lines(uow: PaymentUnitOfWork, seller_id: str, sale_id: str) -> list[StatementLine]:
    invoices, _ = await uow.store.invoices(
        bidder_id="", seller_id=seller_id, sale_id=sale_id, statuses=(), after="", limit=5_000
    )
    return [StatementLine(invoice, await uow.store.commission_of(invoice.id)) for invoice in invoices]
