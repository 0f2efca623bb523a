"""Invoices: issued from a sold lot, paid by card, bank transfer or the bidder's funds, overdue
past their due date; seller settlement follows payment."""

from __future__ import annotations

from datetime import datetime

from gavel_core.errors import FailedPrecondition, NotFound, Unavailable
from payment.app.common import Env, announce_buying_power, terms_for
from payment.app.deposits import release_deposits
from payment.app.discipline import charge_penalty
from payment.app.ports import PaymentUnitOfWork
from payment.domain import accounts
from payment.domain.discipline import PenaltyReason
from payment.domain.events import InvoiceIssued, InvoiceOverdue, PaymentCaptured
from payment.domain.invoices import Invoice, InvoiceStatus, apply_funds, due_date, price_lot
from payment.domain.ledger import AccountId, transfer
from payment.domain.payments import require_no_active_charge
from payment.domain.terms import bp_of


async def issue_invoice(
    uow: PaymentUnitOfWork,
    env: Env,
    *,
    lot_id: str,
    buyer_id: str,
    hammer_minor: int,
    currency: str,
    discount_bp: int,
    cause: str,
    now: datetime,
) -> Invoice:
    """The invoice for a sold lot (once per lot, whatever is retried)."""
    existing = await uow.store.invoice_for_lot(lot_id)
    if existing is not None:
        return existing
    lot = await uow.store.lot(lot_id)
    if lot is None:
        raise Unavailable(f"lot {lot_id} is not known yet")  # its LotConfigured comes first: retry
    terms = await terms_for(uow, lot.sale_id, lot)
    if terms.currency != currency:
        terms = type(terms).default(lot.sale_id, currency, lot.buyer_premium_bp, lot.tax_bp)
    await uow.store.freeze_terms(lot.sale_id)
    ledger = uow.ledger
    deposit_account = accounts.deposit(buyer_id, lot.sale_id, currency)
    # Credit for this product first, then credit redeemable on any invoice (sales whose terms say so).
    credits = [accounts.credit(buyer_id, lot.product_id, currency), accounts.credit(buyer_id, "*", currency)]
    credit_balances = [(account, await ledger.balance(account)) for account in credits]
    amounts = apply_funds(
        price_lot(hammer_minor, discount_bp, terms),
        await ledger.balance(deposit_account),
        sum(balance for _, balance in credit_balances),
    )
    commission = bp_of(amounts.net_hammer, terms.commission_bp)
    invoice_id = env.ids.new_id()
    invoice = Invoice(
        id=invoice_id,
        number=f"INV-{now:%Y%m%d}-{invoice_id[-8:].upper()}",
        bidder_id=buyer_id,
        seller_id=lot.seller_id,
        sale_id=lot.sale_id,
        lot_id=lot_id,
        product_id=lot.product_id,
        currency=currency,
        amounts=amounts,
        status=InvoiceStatus.ISSUED,
        issued_at=now,
        due_at=due_date(now, terms),
        cause=cause,
        terms_version=terms.version,
    )
    await uow.store.add_invoice(invoice, commission)
    due = accounts.invoice_due(invoice_id, currency)
    await ledger.post(
        transfer(
            f"invoice:{invoice_id}:issue",
            "invoice_issued",
            cause,
            [
                (due, accounts.seller_pending(lot.seller_id, currency), amounts.net_hammer),
                (due, accounts.house("premium", currency), amounts.premium),
                (due, accounts.house("tax", currency), amounts.tax),
            ],
            memo=f"invoice {invoice.number} for lot {lot_id}",
        ),
        now,
    )
    if amounts.deposit_applied or amounts.credit_applied:
        moves = [(deposit_account, due, amounts.deposit_applied)]
        left = amounts.credit_applied
        for account, balance in credit_balances:
            take = min(left, balance)
            moves.append((account, due, take))
            left -= take
        await ledger.post(transfer(f"invoice:{invoice_id}:funds", "funds_applied", f"invoice:{invoice_id}", moves), now)
    if amounts.deposit_applied:
        record = await uow.store.deposit(buyer_id, lot.sale_id)
        if record is not None:
            record.applied += amounts.deposit_applied
            await uow.store.save_deposit(record)
        await announce_buying_power(uow, env, buyer_id, lot.sale_id, now)
    await uow.collect(
        InvoiceIssued(
            event_id=env.ids.new_id(),
            occurred_at=now,
            invoice_id=invoice_id,
            bidder_id=buyer_id,
            sale_id=lot.sale_id,
            lot_id=lot_id,
            currency=currency,
            total_minor=amounts.gross,
            to_pay_minor=amounts.to_pay,
            due_at=invoice.due_at,
            seller_id=lot.seller_id,
        )
    )
    if amounts.to_pay == 0:
        await settle(uow, invoice, now, "funds")
    if await uow.store.sale_closed(lot.sale_id):
        await release_deposits(uow, env, lot.sale_id, now, bidder_id=buyer_id)
    return invoice


async def balance_due(uow: PaymentUnitOfWork, invoice: Invoice) -> int:
    return -await uow.ledger.balance(accounts.invoice_due(invoice.id, invoice.currency))


async def settle(uow: PaymentUnitOfWork, invoice: Invoice, now: datetime, by: str) -> None:
    """Paid in full: the seller's hammer moves from pending to settlement, net of commission."""
    invoice.settle(now, by)
    await uow.store.save_invoice(invoice)
    commission = await uow.store.commission_of(invoice.id)
    pending = accounts.seller_pending(invoice.seller_id, invoice.currency)
    await uow.ledger.post(
        transfer(
            f"invoice:{invoice.id}:settle",
            "seller_settled",
            f"invoice:{invoice.id}",
            [
                (
                    pending,
                    accounts.seller_settlement(invoice.seller_id, invoice.currency),
                    invoice.amounts.net_hammer - commission,
                ),
                (pending, accounts.house("commission", invoice.currency), commission),
            ],
        ),
        now,
    )


async def record_payment(
    uow: PaymentUnitOfWork,
    env: Env,
    invoice: Invoice,
    amount: int,
    source: AccountId,
    payment_id: str,
    method: str,
    now: datetime,
) -> None:
    """Money for the invoice arrived (card capture or bank transfer): post it, settle if paid in full."""
    due = accounts.invoice_due(invoice.id, invoice.currency)
    await uow.ledger.post(
        transfer(f"payment:{payment_id}", "invoice_paid", f"payment:{payment_id}", [(source, due, amount)]), now
    )
    settled = await balance_due(uow, invoice) == 0
    if settled:
        await settle(uow, invoice, now, method)
    await uow.collect(
        PaymentCaptured(
            event_id=env.ids.new_id(),
            occurred_at=now,
            invoice_id=invoice.id,
            bidder_id=invoice.bidder_id,
            payment_id=payment_id,
            currency=invoice.currency,
            amount_minor=amount,
            invoice_settled=settled,
            method=method,
        )
    )


async def mark_paid_by_transfer(
    uow: PaymentUnitOfWork, env: Env, invoice_id: str, reference: str, now: datetime
) -> Invoice:
    invoice = await uow.store.invoice(invoice_id, for_update=True)
    if invoice is None:
        raise NotFound("invoice", invoice_id)
    invoice.require_open()
    require_no_active_charge(await uow.store.active_charges(invoice_id), f"invoice {invoice.number}")
    amount = await balance_due(uow, invoice)
    if amount <= 0:
        raise FailedPrecondition("NOTHING_TO_PAY", f"invoice {invoice.number} has nothing left to pay")
    await record_payment(
        uow,
        env,
        invoice,
        amount,
        accounts.bank(invoice.currency),
        f"bank:{invoice_id}:{reference}",
        "bank_transfer",
        now,
    )
    return invoice


async def mark_overdue(uow: PaymentUnitOfWork, env: Env, invoice_id: str, now: datetime) -> bool:
    """An unpaid invoice past its due date: InvoiceOverdue, and a non-payment penalty with a strike."""
    invoice = await uow.store.invoice(invoice_id, for_update=True)
    if invoice is None or not invoice.is_overdue(now):
        return False
    invoice.status = InvoiceStatus.OVERDUE
    await uow.store.save_invoice(invoice)
    await uow.collect(
        InvoiceOverdue(
            event_id=env.ids.new_id(),
            occurred_at=now,
            invoice_id=invoice.id,
            bidder_id=invoice.bidder_id,
            currency=invoice.currency,
            total_minor=invoice.amounts.gross,
            due_at=invoice.due_at,
        )
    )
    await charge_penalty(
        uow,
        env,
        bidder_id=invoice.bidder_id,
        sale_id=invoice.sale_id,
        lot_id=invoice.lot_id,
        price_minor=invoice.amounts.gross,
        currency=invoice.currency,
        reason=PenaltyReason.NON_PAYMENT,
        cause=f"invoice:{invoice.id}:overdue",
        now=now,
    )
    return True
