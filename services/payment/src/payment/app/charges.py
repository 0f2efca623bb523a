"""Card payments through the provider: one state machine for invoices, deposits and ticket packs.

A charge is written (PENDING) before the provider is called, with its id as the provider's
idempotency key, and every answer - the call's own, a webhook, a lookup - moves it forward only
(payment.domain.payments.moves_forward; the provider's object version breaks ties), so late,
replayed and reordered answers change nothing. The money is posted to the ledger once, in the
transaction that moves the charge from AUTHORIZED to CAPTURED. A call that times out leaves the
charge PENDING; it is resolved by asking the provider (lookup, or the same request again with the
same idempotency key, which the provider answers with what it did), never by guessing. The
provider is never called inside a database transaction.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from gavel_core.errors import Aborted, FailedPrecondition, NotFound, PermissionDenied
from payment.app.common import Env, announce_buying_power, terms_for
from payment.app.invoicing import balance_due, record_payment
from payment.app.ports import PaymentProvider, PaymentUnitOfWork, ProviderResult, ProviderStatus, ProviderUnavailable
from payment.app.tickets import grant_tickets
from payment.domain import accounts
from payment.domain.events import PaymentFailed, RefundCompleted
from payment.domain.ledger import transfer
from payment.domain.payments import (
    Charge,
    ChargeStatus,
    DepositRecord,
    Purpose,
    RefundStatus,
    moves_forward,
    require_no_active_charge,
)

T = TypeVar("T")

_STATUS = {
    ProviderStatus.REQUIRES_ACTION: ChargeStatus.REQUIRES_ACTION,
    ProviderStatus.AUTHORIZED: ChargeStatus.AUTHORIZED,
    ProviderStatus.CAPTURED: ChargeStatus.AUTHORIZED,  # captured at the provider: we still post it ourselves
    ProviderStatus.DECLINED: ChargeStatus.FAILED,
    ProviderStatus.FAILED: ChargeStatus.FAILED,
    ProviderStatus.VOIDED: ChargeStatus.VOIDED,
}


async def start_invoice_charge(
    uow: PaymentUnitOfWork, env: Env, *, invoice_id: str, bidder_id: str, method: str, return_url: str, now: datetime
) -> Charge:
    invoice = await uow.store.invoice(invoice_id, for_update=True)
    if invoice is None:
        raise NotFound("invoice", invoice_id)
    if invoice.bidder_id != bidder_id:
        raise PermissionDenied("only the buyer pays an invoice", reason="NOT_OWNER")
    invoice.require_open()
    require_no_active_charge(await uow.store.active_charges(invoice_id), f"invoice {invoice.number}")
    amount = await balance_due(uow, invoice)
    if amount <= 0:
        raise FailedPrecondition("NOTHING_TO_PAY", f"invoice {invoice.number} has nothing left to pay")
    return await _new_charge(
        uow, env, Purpose.INVOICE, invoice_id, bidder_id, invoice.currency, amount, method, return_url, {}, now
    )


async def start_deposit_charge(
    uow: PaymentUnitOfWork,
    env: Env,
    *,
    sale_id: str,
    bidder_id: str,
    amount: int,
    method: str,
    return_url: str,
    now: datetime,
) -> Charge:
    terms = await terms_for(uow, sale_id)
    if await uow.store.sale_closed(sale_id):
        raise FailedPrecondition("SALE_CLOSED", "the sale has closed: no deposit is taken", {"sale_id": sale_id})
    amount = amount or terms.deposit_minor
    if amount <= 0:
        raise FailedPrecondition(
            "NO_DEPOSIT_ASKED", "the sale asks for no deposit; give an amount", {"sale_id": sale_id}
        )
    require_no_active_charge(await uow.store.active_charges(f"{sale_id}:{bidder_id}"), "this deposit")
    return await _new_charge(
        uow,
        env,
        Purpose.DEPOSIT,
        f"{sale_id}:{bidder_id}",
        bidder_id,
        terms.currency,
        amount,
        method,
        return_url,
        {"sale_id": sale_id},
        now,
    )


async def start_tickets_charge(
    uow: PaymentUnitOfWork, env: Env, *, pack_id: str, bidder_id: str, method: str, return_url: str, now: datetime
) -> Charge:
    from payment.app.tickets import require_pack

    pack = await require_pack(uow, pack_id)
    detail = {"pack_id": pack.id, "tickets": str(pack.tickets), "unit_minor": str(pack.unit_minor)}
    return await _new_charge(
        uow, env, Purpose.TICKETS, pack.id, bidder_id, pack.currency, pack.price_minor, method, return_url, detail, now
    )


async def _new_charge(
    uow: PaymentUnitOfWork,
    env: Env,
    purpose: Purpose,
    target_id: str,
    bidder_id: str,
    currency: str,
    amount: int,
    method: str,
    return_url: str,
    detail: dict[str, str],
    now: datetime,
) -> Charge:
    charge = Charge(
        id=env.ids.new_id(),
        purpose=purpose,
        target_id=target_id,
        bidder_id=bidder_id,
        currency=currency,
        amount=amount,
        status=ChargeStatus.PENDING,
        created_at=now,
        updated_at=now,
        payment_method=method,
        return_url=return_url,
        detail=detail,
    )
    await uow.store.add_charge(charge)
    return charge


async def apply_result(
    uow: PaymentUnitOfWork, env: Env, charge_id: str, result: ProviderResult, now: datetime
) -> Charge:
    """Record what the provider said about the authorization, if it moves the charge forward."""
    charge = await uow.store.charge(charge_id, for_update=True)
    if charge is None:
        raise NotFound("payment", charge_id)
    new = _STATUS.get(result.status)
    if new is None or result.version < charge.provider_version or not moves_forward(charge.status, new):
        return charge
    charge.status = new
    charge.provider_ref = result.provider_ref or charge.provider_ref
    charge.provider_version = max(charge.provider_version, result.version)
    charge.action_url = result.action_url if new is ChargeStatus.REQUIRES_ACTION else ""
    charge.updated_at = now
    if new is ChargeStatus.FAILED:
        charge.failure_reason = result.reason or "declined"
        if charge.purpose is Purpose.INVOICE:
            await uow.collect(
                PaymentFailed(
                    event_id=env.ids.new_id(),
                    occurred_at=now,
                    invoice_id=charge.target_id,
                    bidder_id=charge.bidder_id,
                    payment_id=charge.id,
                    reason=charge.failure_reason,
                )
            )
    await uow.store.save_charge(charge)
    return charge


async def still_wanted(uow: PaymentUnitOfWork, charge: Charge) -> bool:
    """Whether an authorized charge should be captured (else voided): an invoice must still owe it."""
    if charge.purpose is not Purpose.INVOICE:
        return True
    invoice = await uow.store.invoice(charge.target_id, for_update=True)
    return invoice is not None and invoice.open and await balance_due(uow, invoice) >= charge.amount


async def record_capture(
    uow: PaymentUnitOfWork, env: Env, charge_id: str, result: ProviderResult, now: datetime
) -> Charge:
    """The provider captured the charge: post the money where it goes, exactly once."""
    charge = await uow.store.charge(charge_id, for_update=True)
    if charge is None:
        raise NotFound("payment", charge_id)
    if charge.status is not ChargeStatus.AUTHORIZED:
        return charge  # captured (or voided) by a concurrent twin already
    charge.status = ChargeStatus.CAPTURED
    charge.provider_version = max(charge.provider_version, result.version)
    charge.updated_at = now
    await uow.store.save_charge(charge)
    provider = accounts.provider(charge.currency)
    if charge.purpose is Purpose.INVOICE:
        invoice = await uow.store.invoice(charge.target_id, for_update=True)
        assert invoice is not None
        await record_payment(uow, env, invoice, charge.amount, provider, charge.id, "card", now)
    elif charge.purpose is Purpose.DEPOSIT:
        sale_id = charge.detail["sale_id"]
        await uow.ledger.post(
            transfer(
                f"charge:{charge.id}",
                "deposit_placed",
                f"charge:{charge.id}",
                [(provider, accounts.deposit(charge.bidder_id, sale_id, charge.currency), charge.amount)],
            ),
            now,
        )
        record = await uow.store.deposit(charge.bidder_id, sale_id) or DepositRecord(
            charge.bidder_id, sale_id, charge.currency
        )
        record.released = False
        await uow.store.save_deposit(record)
        await announce_buying_power(uow, env, charge.bidder_id, sale_id, now)
    else:
        await uow.ledger.post(
            transfer(
                f"charge:{charge.id}",
                "tickets_bought",
                f"charge:{charge.id}",
                [(provider, accounts.ticket_funds(charge.bidder_id, charge.currency), charge.amount)],
            ),
            now,
        )
        await grant_tickets(
            uow,
            charge.id,
            charge.bidder_id,
            charge.detail["pack_id"],
            charge.currency,
            int(charge.detail["tickets"]),
            int(charge.detail["unit_minor"]),
            now,
        )
    return charge


async def record_void(uow: PaymentUnitOfWork, charge_id: str, now: datetime) -> Charge:
    charge = await uow.store.charge(charge_id, for_update=True)
    if charge is None:
        raise NotFound("payment", charge_id)
    if charge.status is ChargeStatus.AUTHORIZED:
        charge.status = ChargeStatus.VOIDED
        charge.updated_at = now
        await uow.store.save_charge(charge)
    return charge


class Payments:
    """Drives charges and refunds through the provider (application service: commits its own units of work)."""

    def __init__(
        self,
        uow_factory: Callable[[], PaymentUnitOfWork],
        provider: PaymentProvider,
        env: Env,
        clock: Callable[[], datetime],
        *,
        reconcile_after: timedelta = timedelta(seconds=10),
    ) -> None:
        self._uow = uow_factory
        self._provider = provider
        self._env = env
        self._clock = clock
        self._reconcile_after = reconcile_after

    async def _in_uow(self, step: Callable[[PaymentUnitOfWork], Awaitable[T]]) -> T:
        for attempt in range(5):
            try:
                async with self._uow() as uow:
                    result = await step(uow)
                    await uow.commit()
                    return result
            except Aborted:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.02 * (attempt + 1))
        raise AssertionError("unreachable")

    async def get(self, charge_id: str) -> Charge:
        async def read(uow: PaymentUnitOfWork) -> Charge:
            charge = await uow.store.charge(charge_id)
            if charge is None:
                raise NotFound("payment", charge_id)
            return charge

        return await self._in_uow(read)

    async def advance(self, charge_id: str, *, ask_first: bool = False) -> Charge:
        """Take the charge as far as the provider lets it go now."""
        charge = await self.get(charge_id)
        for _ in range(4):
            if charge.status.final or (charge.status is ChargeStatus.REQUIRES_ACTION and not ask_first):
                return charge
            try:
                if charge.status in (ChargeStatus.PENDING, ChargeStatus.REQUIRES_ACTION):
                    result = await self._ask(charge, ask_first)
                    ask_first = False
                    if result is None or result.status is ProviderStatus.PROCESSING:
                        return charge
                    charge = await self._in_uow(functools.partial(self._apply, charge_id=charge_id, result=result))
                    continue
                # AUTHORIZED: capture it, or void it if nothing wants it any more
                wanted = await self._in_uow(functools.partial(still_wanted, charge=charge))
                if wanted:
                    result = await self._provider.capture(f"{charge.id}:capture", charge.provider_ref, charge.amount)
                    if result.status is not ProviderStatus.CAPTURED:
                        return charge
                    charge = await self._in_uow(functools.partial(self._capture, charge_id=charge_id, result=result))
                else:
                    await self._provider.void(f"{charge.id}:void", charge.provider_ref)
                    charge = await self._in_uow(lambda uow: record_void(uow, charge_id, self._clock()))
            except ProviderUnavailable:
                return charge  # unknown: the reconciler asks the provider again
        return charge

    async def _apply(self, uow: PaymentUnitOfWork, *, charge_id: str, result: ProviderResult) -> Charge:
        return await apply_result(uow, self._env, charge_id, result, self._clock())

    async def _capture(self, uow: PaymentUnitOfWork, *, charge_id: str, result: ProviderResult) -> Charge:
        return await record_capture(uow, self._env, charge_id, result, self._clock())

    async def _ask(self, charge: Charge, ask_first: bool) -> ProviderResult | None:
        if ask_first:
            known = await self._provider.lookup(charge.id)
            if known is not None or charge.status is ChargeStatus.REQUIRES_ACTION:
                return known
        if charge.status is ChargeStatus.REQUIRES_ACTION:
            return None
        return await self._provider.authorize(
            charge.id,
            charge.amount,
            charge.currency,
            charge.payment_method,
            charge.return_url,
            f"{charge.purpose}:{charge.target_id}",
        )

    async def apply_webhook(self, charge_key: str, result: ProviderResult) -> Charge:
        """An authorization update from a verified webhook (deduplicated by the caller)."""
        charge = await self._in_uow(lambda uow: apply_result(uow, self._env, charge_key, result, self._clock()))
        return await self.advance(charge.id)

    async def process_refund(self, refund_id: str) -> RefundStatus:
        async def load(uow: PaymentUnitOfWork) -> tuple[str, str, int, RefundStatus]:
            refund = await uow.store.refund(refund_id)
            if refund is None:
                raise NotFound("refund", refund_id)
            charge = await uow.store.charge(refund.charge_id)
            assert charge is not None
            return refund.id, charge.provider_ref, refund.amount, refund.status

        key, ref, amount, status = await self._in_uow(load)
        if status is not RefundStatus.PENDING:
            return status
        try:
            result = await self._provider.refund(key, ref, amount)
        except ProviderUnavailable:
            return RefundStatus.PENDING

        async def record(uow: PaymentUnitOfWork) -> RefundStatus:
            refund = await uow.store.refund(refund_id, for_update=True)
            assert refund is not None
            if refund.status is not RefundStatus.PENDING:
                return refund.status
            now = self._clock()
            refund.updated_at = now
            refund.provider_ref = result.provider_ref
            if result.status is ProviderStatus.REFUNDED:
                refund.status = RefundStatus.SUCCEEDED
                await uow.ledger.post(
                    transfer(
                        refund.id,
                        "refunded",
                        f"charge:{refund.charge_id}",
                        [
                            (
                                accounts.cash(refund.bidder_id, refund.currency),
                                accounts.provider(refund.currency),
                                refund.amount,
                            )
                        ],
                    ),
                    now,
                )
                charge = await uow.store.charge(refund.charge_id, for_update=True)
                assert charge is not None
                charge.refunded += refund.amount
                await uow.store.save_charge(charge)
                if refund.purpose == "deposit_release":
                    record = await uow.store.deposit(refund.bidder_id, refund.target_id)
                    if record is not None:
                        record.refunded += refund.amount
                        await uow.store.save_deposit(record)
                await uow.collect(
                    RefundCompleted(
                        event_id=self._env.ids.new_id(),
                        occurred_at=now,
                        refund_id=refund.id,
                        bidder_id=refund.bidder_id,
                        payment_id=refund.charge_id,
                        currency=refund.currency,
                        amount_minor=refund.amount,
                        purpose=refund.purpose,
                        target_id=refund.target_id,
                    )
                )
            elif result.status is not ProviderStatus.PROCESSING:
                refund.status = RefundStatus.FAILED  # the money stays in the bidder's cash account
                refund.failure_reason = result.reason or result.status.value
            await uow.store.save_refund(refund)
            return refund.status

        return await self._in_uow(record)

    async def reconcile(self, limit: int = 100) -> int:
        """Ask the provider about charges and refunds that have waited too long; how many were looked at."""
        older = self._clock() - self._reconcile_after

        async def pending(uow: PaymentUnitOfWork) -> tuple[list[str], list[str]]:
            charges = await uow.store.charges_to_reconcile(older, limit)
            refunds = await uow.store.refunds_to_reconcile(older, limit)
            return [c.id for c in charges], [r.id for r in refunds]

        charge_ids, refund_ids = await self._in_uow(pending)
        for charge_id in charge_ids:
            await self.advance(charge_id, ask_first=True)
        for refund_id in refund_ids:
            await self.process_refund(refund_id)
        return len(charge_ids) + len(refund_ids)

    async def refunds_now(self, refund_ids: list[str]) -> None:
        for refund_id in refund_ids:
            await self.process_refund(refund_id)
