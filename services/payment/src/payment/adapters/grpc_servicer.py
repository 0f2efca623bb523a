"""gavel.payment.v1.PaymentService over the payment use cases: mapping and plumbing only.

Mutating RPCs run in `gavel_kit.db.run_idempotent` keyed by (caller, method, request_id): the
change, its events (outbox) and the answer commit together, a repeat returns the stored answer,
and a lock conflict (`Aborted`) is retried here. Calls that start a card payment store the
payment's id as their answer, then take the payment as far as the provider lets it go now, so a
retried call reports the same payment's current state, never a second payment.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar, cast

import grpc
from google.protobuf.message import Message

from gavel.payment.v1 import payment_service_pb2 as pb
from gavel.payment.v1 import payment_service_pb2_grpc
from gavel_core.auth import Principal, Role
from gavel_core.errors import Aborted, FailedPrecondition, FieldViolation, InvalidArgument, NotFound, PermissionDenied
from gavel_kit.auth import current_principal
from gavel_kit.db import SqlUnitOfWork, run_idempotent
from payment.adapters import mapping
from payment.adapters.documents import invoice_html, invoice_pdf
from payment.adapters.events import money, timestamp
from payment.adapters.sql import SqlPaymentUnitOfWork
from payment.adapters.webhooks import WebhookReceiver
from payment.app import charges, deposits, discipline, invoicing, queries, tickets
from payment.app.charges import Payments
from payment.app.common import Env, require_self_or_staff, terms_for
from payment.app.ports import PaymentUnitOfWork
from payment.domain import accounts
from payment.domain.ledger import AccountId
from payment.domain.payments import Purpose, require_reason
from payment.domain.tickets import TicketPack
from payment.domain.validation import MAX_METHOD, require_id, require_text, require_url

SERVICE = "gavel.payment.v1.PaymentService"
R = TypeVar("R", bound=Message)
T = TypeVar("T")
Context = grpc.aio.ServicerContext[Any, Any] | None
Action = Callable[[SqlPaymentUnitOfWork, Principal, datetime], Awaitable[R]]


def method(name: str) -> str:
    return f"/{SERVICE}/{name}"


class PaymentServicer(payment_service_pb2_grpc.PaymentServiceServicer):
    def __init__(
        self,
        uow_factory: Callable[[], SqlPaymentUnitOfWork],
        *,
        env: Env,
        payments: Payments,
        webhooks: WebhookReceiver,
        clock: Callable[[], datetime],
    ) -> None:
        self._uow_factory = uow_factory
        self._env = env
        self._payments = payments
        self._webhooks = webhooks
        self._clock = clock

    # -- plumbing -------------------------------------------------------------------------------

    async def _mutate(self, name: str, request: Any, response_type: type[R], action: Action[R]) -> R:
        principal = current_principal()
        require_id("request_id", request.request_id)
        created: list[SqlPaymentUnitOfWork] = []

        def factory() -> SqlUnitOfWork:
            uow = self._uow_factory()
            created.append(uow)
            return uow

        async def attempt(uow: SqlUnitOfWork) -> bytes:
            reply = await action(cast(SqlPaymentUnitOfWork, uow), principal, self._clock())
            return reply.SerializeToString(deterministic=True)

        refused_once = False
        for round_ in range(5):
            try:
                answer = await run_idempotent(
                    factory,
                    caller=principal.subject,
                    method=method(name),
                    request_id=request.request_id,
                    request_bytes=request.SerializeToString(deterministic=True),
                    action=attempt,
                )
                break
            except Aborted:
                if round_ == 4:
                    raise
                await asyncio.sleep(0.02 * (round_ + 1))
            except FailedPrecondition as exc:
                # A concurrent twin of this very request may have just committed (its change is
                # why this attempt is refused): once more, and its stored answer is returned.
                if refused_once or exc.reason == "REQUEST_ID_REUSED":
                    raise
                refused_once = True
        refunds = [refund for uow in created for refund in uow.new_refunds]
        if refunds:
            await self._payments.refunds_now(refunds)
        return response_type.FromString(answer)

    async def _read(self, action: Callable[[PaymentUnitOfWork, Principal, datetime], Awaitable[T]]) -> T:
        principal = current_principal()
        async with self._uow_factory() as uow:
            return await action(uow, principal, self._clock())

    async def _invoice_view(self, uow: PaymentUnitOfWork, principal: Principal, invoice_id: str) -> pb.Invoice:
        invoice = await uow.store.invoice(require_id("invoice_id", invoice_id))
        if invoice is None or not _may_see(principal, invoice.bidder_id):
            raise NotFound("invoice", invoice_id)
        return mapping.invoice_message(invoice, await invoicing.balance_due(uow, invoice))

    async def _payment_reply(self, charge_id: str) -> pb.Payment:
        charge = await self._payments.advance(charge_id)
        return mapping.payment_message(charge)

    # -- eligibility ----------------------------------------------------------------------------

    async def GetEligibility(self, request: pb.GetEligibilityRequest, context: Context) -> pb.GetEligibilityResponse:
        async def action(uow: PaymentUnitOfWork, caller: Principal, now: datetime) -> pb.GetEligibilityResponse:
            bidder = require_self_or_staff(caller, require_id("bidder_id", request.bidder_id, optional=True))
            sale_id = require_id("sale_id", request.sale_id, optional=True)
            result = await queries.eligibility(uow, self._env, bidder, sale_id, now)
            reply = pb.GetEligibilityResponse(
                banned=result.banned, ban_reason=result.ban_reason, strikes=result.strikes
            )
            if result.currency:
                reply.deposit_held.CopyFrom(money(result.deposit_held, result.currency))
                if result.buying_power is not None:
                    reply.buying_power.CopyFrom(money(result.buying_power, result.currency))
            return reply

        return await self._read(action)

    async def HasVerifiedDeposit(
        self, request: pb.HasVerifiedDepositRequest, context: Context
    ) -> pb.HasVerifiedDepositResponse:
        async def action(uow: PaymentUnitOfWork, caller: Principal, now: datetime) -> pb.HasVerifiedDepositResponse:
            bidder = require_id("bidder_id", request.bidder_id)
            sale_id = require_id("sale_id", request.sale_id)
            terms = await uow.store.terms(sale_id)
            if terms is None:
                return pb.HasVerifiedDepositResponse(verified=False)
            held = await uow.ledger.balance(accounts.deposit(bidder, sale_id, terms.currency))
            # Verified: captured by the provider (the ledger holds only captured money) and, when the
            # sale asks for an amount, at least that much.
            verified = held > 0 and held >= terms.deposit_minor
            return pb.HasVerifiedDepositResponse(verified=verified, deposit_held=money(held, terms.currency))

        return await self._read(action)

    # -- terms ----------------------------------------------------------------------------------

    async def SetSaleTerms(self, request: pb.SetSaleTermsRequest, context: Context) -> pb.SetSaleTermsResponse:
        require_id("terms.sale_id", request.terms.sale_id)
        terms = mapping.terms_of(request.terms)

        async def action(uow: SqlPaymentUnitOfWork, caller: Principal, now: datetime) -> pb.SetSaleTermsResponse:
            existing = await uow.store.terms(terms.sale_id)
            if existing is not None and existing.frozen:
                raise FailedPrecondition(
                    "TERMS_FROZEN",
                    "the sale's terms are frozen: an invoice was issued under them",
                    {"sale_id": terms.sale_id},
                )
            saved = type(terms)(**{**_fields(terms), "version": (existing.version + 1) if existing else 1})
            await uow.store.save_terms(saved)
            return pb.SetSaleTermsResponse(terms=mapping.terms_message(saved))

        return await self._mutate("SetSaleTerms", request, pb.SetSaleTermsResponse, action)

    async def GetSaleTerms(self, request: pb.GetSaleTermsRequest, context: Context) -> pb.GetSaleTermsResponse:
        async def action(uow: PaymentUnitOfWork, caller: Principal, now: datetime) -> pb.GetSaleTermsResponse:
            sale_id = require_id("sale_id", request.sale_id)
            own = await uow.store.terms(sale_id)
            terms = own or await terms_for(uow, sale_id)
            return pb.GetSaleTermsResponse(terms=mapping.terms_message(terms), set=own is not None)

        return await self._read(action)

    # -- invoices -------------------------------------------------------------------------------

    async def GetInvoice(self, request: pb.GetInvoiceRequest, context: Context) -> pb.GetInvoiceResponse:
        async def action(uow: PaymentUnitOfWork, caller: Principal, now: datetime) -> pb.GetInvoiceResponse:
            return pb.GetInvoiceResponse(invoice=await self._invoice_view(uow, caller, request.invoice_id))

        return await self._read(action)

    async def ListInvoices(self, request: pb.ListInvoicesRequest, context: Context) -> pb.ListInvoicesResponse:
        async def action(uow: PaymentUnitOfWork, caller: Principal, now: datetime) -> pb.ListInvoicesResponse:
            if caller.has(Role.SALE_ADMIN, Role.SITE_ADMIN):
                bidder = require_id("bidder_id", request.bidder_id, optional=True)
            else:
                bidder = require_self_or_staff(caller, require_id("bidder_id", request.bidder_id, optional=True))
            statuses = [mapping.INVOICE_STATUS_OF[s].value for s in request.statuses if s in mapping.INVOICE_STATUS_OF]
            after = require_id("page.page_token", request.page.page_token, optional=True)
            items, total = await uow.store.invoices(
                bidder_id=bidder,
                seller_id="",
                sale_id=require_id("sale_id", request.sale_id, optional=True),
                statuses=statuses,
                after=after,
                limit=mapping.page_size(request.page) + 1,
            )
            size = mapping.page_size(request.page)
            page, more = items[:size], len(items) > size
            return pb.ListInvoicesResponse(
                invoices=[mapping.invoice_message(i, await invoicing.balance_due(uow, i)) for i in page],
                page=_page(page[-1].id if more and page else "", total),
            )

        return await self._read(action)

    async def RenderInvoice(self, request: pb.RenderInvoiceRequest, context: Context) -> pb.RenderInvoiceResponse:
        async def action(uow: PaymentUnitOfWork, caller: Principal, now: datetime) -> tuple[str, str]:
            view = await self._invoice_view(uow, caller, request.invoice_id)
            invoice = await uow.store.invoice(view.id)
            assert invoice is not None
            return invoice_html(invoice, view.balance_due.amount_minor), invoice.number

        html, number = await self._read(action)
        if request.format == pb.DOCUMENT_FORMAT_PDF:
            return pb.RenderInvoiceResponse(
                content_type="application/pdf", content=await invoice_pdf(html), filename=f"{number}.pdf"
            )
        return pb.RenderInvoiceResponse(
            content_type="text/html; charset=utf-8", content=html.encode(), filename=f"{number}.html"
        )

    async def PayInvoice(self, request: pb.PayInvoiceRequest, context: Context) -> pb.PayInvoiceResponse:
        invoice_id = require_id("invoice_id", request.invoice_id)
        payment_method = require_text("payment_method", request.payment_method, max_length=MAX_METHOD)
        return_url = require_url("return_url", request.return_url)

        async def action(uow: SqlPaymentUnitOfWork, caller: Principal, now: datetime) -> pb.PayInvoiceResponse:
            charge = await charges.start_invoice_charge(
                uow,
                self._env,
                invoice_id=invoice_id,
                bidder_id=caller.subject,
                method=payment_method,
                return_url=return_url,
                now=now,
            )
            return pb.PayInvoiceResponse(payment=pb.Payment(id=charge.id))

        started = await self._mutate("PayInvoice", request, pb.PayInvoiceResponse, action)
        payment = await self._payment_reply(started.payment.id)

        async def view(uow: PaymentUnitOfWork, caller: Principal, now: datetime) -> pb.Invoice:
            return await self._invoice_view(uow, caller, invoice_id)

        return pb.PayInvoiceResponse(payment=payment, invoice=await self._read(view))

    async def MarkInvoicePaid(self, request: pb.MarkInvoicePaidRequest, context: Context) -> pb.MarkInvoicePaidResponse:
        invoice_id = require_id("invoice_id", request.invoice_id)
        reference = require_text("reference", request.reference, max_length=200)
        require_id("reference", reference.replace(" ", "-"))

        async def action(uow: SqlPaymentUnitOfWork, caller: Principal, now: datetime) -> pb.MarkInvoicePaidResponse:
            invoice = await invoicing.mark_paid_by_transfer(
                uow, self._env, invoice_id, reference.replace(" ", "-"), now
            )
            return pb.MarkInvoicePaidResponse(
                invoice=mapping.invoice_message(invoice, await invoicing.balance_due(uow, invoice))
            )

        return await self._mutate("MarkInvoicePaid", request, pb.MarkInvoicePaidResponse, action)

    async def GetPayment(self, request: pb.GetPaymentRequest, context: Context) -> pb.GetPaymentResponse:
        async def action(uow: PaymentUnitOfWork, caller: Principal, now: datetime) -> pb.GetPaymentResponse:
            charge = await uow.store.charge(require_id("payment_id", request.payment_id))
            if charge is None or not _may_see(caller, charge.bidder_id):
                raise NotFound("payment", request.payment_id)
            return pb.GetPaymentResponse(payment=mapping.payment_message(charge))

        return await self._read(action)

    async def ListPayments(self, request: pb.ListPaymentsRequest, context: Context) -> pb.ListPaymentsResponse:
        async def action(uow: PaymentUnitOfWork, caller: Principal, now: datetime) -> pb.ListPaymentsResponse:
            if caller.has(Role.SALE_ADMIN, Role.SITE_ADMIN):
                bidder = require_id("bidder_id", request.bidder_id, optional=True)
            else:
                bidder = require_self_or_staff(caller, require_id("bidder_id", request.bidder_id, optional=True))
            size = mapping.page_size(request.page)
            items, total = await uow.store.charges(
                bidder_id=bidder,
                target_id=require_id("target_id", request.target_id, optional=True),
                after=require_id("page.page_token", request.page.page_token, optional=True),
                limit=size + 1,
            )
            page, more = items[:size], len(items) > size
            return pb.ListPaymentsResponse(
                payments=[mapping.payment_message(c) for c in page],
                page=_page(page[-1].id if more and page else "", total),
            )

        return await self._read(action)

    async def HandleProviderWebhook(
        self, request: pb.HandleProviderWebhookRequest, context: Context
    ) -> pb.HandleProviderWebhookResponse:
        applied = await self._webhooks.receive(request.body, request.signature)
        return pb.HandleProviderWebhookResponse(applied=applied)

    # -- deposits -------------------------------------------------------------------------------

    async def PlaceDeposit(self, request: pb.PlaceDepositRequest, context: Context) -> pb.PlaceDepositResponse:
        sale_id = require_id("sale_id", request.sale_id)
        payment_method = require_text("payment_method", request.payment_method, max_length=MAX_METHOD)
        return_url = require_url("return_url", request.return_url)

        async def action(uow: SqlPaymentUnitOfWork, caller: Principal, now: datetime) -> pb.PlaceDepositResponse:
            terms = await terms_for(uow, sale_id)
            amount = mapping.amount_of(request.amount, terms.currency, "amount") if request.HasField("amount") else 0
            charge = await charges.start_deposit_charge(
                uow,
                self._env,
                sale_id=sale_id,
                bidder_id=caller.subject,
                amount=amount,
                method=payment_method,
                return_url=return_url,
                now=now,
            )
            return pb.PlaceDepositResponse(payment=pb.Payment(id=charge.id))

        started = await self._mutate("PlaceDeposit", request, pb.PlaceDepositResponse, action)
        payment = await self._payment_reply(started.payment.id)
        listed = await self.ListDeposits(pb.ListDepositsRequest(sale_id=sale_id), context)
        reply = pb.PlaceDepositResponse(payment=payment)
        if listed.deposits:
            reply.deposit.CopyFrom(listed.deposits[0])
        return reply

    async def ListDeposits(self, request: pb.ListDepositsRequest, context: Context) -> pb.ListDepositsResponse:
        async def action(uow: PaymentUnitOfWork, caller: Principal, now: datetime) -> pb.ListDepositsResponse:
            if caller.has(Role.SALE_ADMIN, Role.SITE_ADMIN):
                bidder = require_id("bidder_id", request.bidder_id, optional=True)
            else:
                bidder = require_self_or_staff(caller, require_id("bidder_id", request.bidder_id, optional=True))
            records = await uow.store.deposits(
                bidder_id=bidder, sale_id=require_id("sale_id", request.sale_id, optional=True)
            )
            reply = pb.ListDepositsResponse()
            for record in records:
                held = await uow.ledger.balance(accounts.deposit(record.bidder_id, record.sale_id, record.currency))
                terms = await uow.store.terms(record.sale_id)
                power = terms.buying_power(held) if terms is not None else 0
                reply.deposits.append(mapping.deposit_message(record, held, power))
            return reply

        return await self._read(action)

    async def ReleaseDeposits(self, request: pb.ReleaseDepositsRequest, context: Context) -> pb.ReleaseDepositsResponse:
        sale_id = require_id("sale_id", request.sale_id)

        async def action(uow: SqlPaymentUnitOfWork, caller: Principal, now: datetime) -> pb.ReleaseDepositsResponse:
            return pb.ReleaseDepositsResponse(released=await deposits.release_deposits(uow, self._env, sale_id, now))

        return await self._mutate("ReleaseDeposits", request, pb.ReleaseDepositsResponse, action)

    # -- discipline -----------------------------------------------------------------------------

    async def ListPenalties(self, request: pb.ListPenaltiesRequest, context: Context) -> pb.ListPenaltiesResponse:
        async def action(uow: PaymentUnitOfWork, caller: Principal, now: datetime) -> pb.ListPenaltiesResponse:
            if caller.has(Role.SALE_ADMIN, Role.SITE_ADMIN):
                bidder = require_id("bidder_id", request.bidder_id, optional=True)
            else:
                bidder = require_self_or_staff(caller, require_id("bidder_id", request.bidder_id, optional=True))
            size = mapping.page_size(request.page)
            items, total = await uow.store.penalties(
                bidder_id=bidder,
                after=require_id("page.page_token", request.page.page_token, optional=True),
                limit=size + 1,
            )
            page, more = items[:size], len(items) > size
            strikes = await discipline.strike_count(uow, self._env, bidder, now) if bidder else 0
            return pb.ListPenaltiesResponse(
                penalties=[mapping.penalty_message(p) for p in page],
                page=_page(page[-1].id if more and page else "", total),
                strikes=strikes,
            )

        return await self._read(action)

    async def ReversePenalty(self, request: pb.ReversePenaltyRequest, context: Context) -> pb.ReversePenaltyResponse:
        penalty_id = require_id("penalty_id", request.penalty_id)
        reason = require_reason(request.reason)

        async def action(uow: SqlPaymentUnitOfWork, caller: Principal, now: datetime) -> pb.ReversePenaltyResponse:
            penalty, strikes = await discipline.reverse_penalty(uow, self._env, penalty_id, caller.subject, reason, now)
            return pb.ReversePenaltyResponse(penalty=mapping.penalty_message(penalty), strikes=strikes)

        return await self._mutate("ReversePenalty", request, pb.ReversePenaltyResponse, action)

    async def BanBidder(self, request: pb.BanBidderRequest, context: Context) -> pb.BanBidderResponse:
        bidder = require_id("bidder_id", request.bidder_id)
        sale_id = require_id("sale_id", request.sale_id, optional=True)
        reason = require_reason(request.reason)

        async def action(uow: SqlPaymentUnitOfWork, caller: Principal, now: datetime) -> pb.BanBidderResponse:
            ban = await discipline.ban(uow, self._env, bidder, sale_id, reason, "admin", caller.subject, now)
            return pb.BanBidderResponse(ban=mapping.ban_message(ban))

        return await self._mutate("BanBidder", request, pb.BanBidderResponse, action)

    async def LiftBan(self, request: pb.LiftBanRequest, context: Context) -> pb.LiftBanResponse:
        bidder = require_id("bidder_id", request.bidder_id)
        sale_id = require_id("sale_id", request.sale_id, optional=True)
        reason = require_reason(request.reason)

        async def action(uow: SqlPaymentUnitOfWork, caller: Principal, now: datetime) -> pb.LiftBanResponse:
            ban = await discipline.lift_ban(uow, self._env, bidder, sale_id, reason, caller.subject, now)
            return pb.LiftBanResponse(ban=mapping.ban_message(ban))

        return await self._mutate("LiftBan", request, pb.LiftBanResponse, action)

    async def ListBans(self, request: pb.ListBansRequest, context: Context) -> pb.ListBansResponse:
        async def action(uow: PaymentUnitOfWork, caller: Principal, now: datetime) -> pb.ListBansResponse:
            bans = await uow.store.bans(
                bidder_id=require_id("bidder_id", request.bidder_id, optional=True), active_only=request.active_only
            )
            return pb.ListBansResponse(bans=[mapping.ban_message(b) for b in bans])

        return await self._read(action)

    # -- tickets --------------------------------------------------------------------------------

    async def DefineTicketPack(
        self, request: pb.DefineTicketPackRequest, context: Context
    ) -> pb.DefineTicketPackResponse:
        message = request.pack
        pack = TicketPack(
            id=message.id,
            currency=message.unit_price.currency,
            tickets=message.tickets,
            unit_minor=message.unit_price.amount_minor,
            active=message.active,
        ).validate()
        require_id("pack.id", pack.id)

        async def action(uow: SqlPaymentUnitOfWork, caller: Principal, now: datetime) -> pb.DefineTicketPackResponse:
            await uow.store.save_pack(pack)
            return pb.DefineTicketPackResponse(pack=mapping.pack_message(pack))

        return await self._mutate("DefineTicketPack", request, pb.DefineTicketPackResponse, action)

    async def ListTicketPacks(self, request: pb.ListTicketPacksRequest, context: Context) -> pb.ListTicketPacksResponse:
        async def action(uow: PaymentUnitOfWork, caller: Principal, now: datetime) -> pb.ListTicketPacksResponse:
            return pb.ListTicketPacksResponse(
                packs=[mapping.pack_message(p) for p in await uow.store.packs() if p.active]
            )

        return await self._read(action)

    async def BuyTicketPack(self, request: pb.BuyTicketPackRequest, context: Context) -> pb.BuyTicketPackResponse:
        pack_id = require_id("pack_id", request.pack_id)
        payment_method = require_text("payment_method", request.payment_method, max_length=MAX_METHOD)
        return_url = require_url("return_url", request.return_url)

        async def action(uow: SqlPaymentUnitOfWork, caller: Principal, now: datetime) -> pb.BuyTicketPackResponse:
            charge = await charges.start_tickets_charge(
                uow,
                self._env,
                pack_id=pack_id,
                bidder_id=caller.subject,
                method=payment_method,
                return_url=return_url,
                now=now,
            )
            return pb.BuyTicketPackResponse(payment=pb.Payment(id=charge.id))

        started = await self._mutate("BuyTicketPack", request, pb.BuyTicketPackResponse, action)
        return pb.BuyTicketPackResponse(payment=await self._payment_reply(started.payment.id))

    async def ConsumeBidTicket(
        self, request: pb.ConsumeBidTicketRequest, context: Context
    ) -> pb.ConsumeBidTicketResponse:
        bidder = require_id("bidder_id", request.bidder_id)
        sale_id = require_id("sale_id", request.sale_id, optional=True)
        lot_id = require_id("lot_id", request.lot_id)
        product_id = require_id("product_id", request.product_id)
        currency = request.currency
        from gavel_core.money import validate_currency

        validate_currency(currency)

        async def action(uow: SqlPaymentUnitOfWork, caller: Principal, now: datetime) -> pb.ConsumeBidTicketResponse:
            left, value = await tickets.consume_ticket(
                uow,
                bidder_id=bidder,
                sale_id=sale_id,
                lot_id=lot_id,
                product_id=product_id,
                currency=currency,
                cause=f"bid:{caller.subject}:{request.request_id}",
                now=now,
            )
            return pb.ConsumeBidTicketResponse(tickets_left=left, value=money(value, currency))

        return await self._mutate("ConsumeBidTicket", request, pb.ConsumeBidTicketResponse, action)

    async def SettleLotTickets(
        self, request: pb.SettleLotTicketsRequest, context: Context
    ) -> pb.SettleLotTicketsResponse:
        lot_id = require_id("lot_id", request.lot_id)
        winner = require_id("winner_id", request.winner_id, optional=True)

        async def action(uow: SqlPaymentUnitOfWork, caller: Principal, now: datetime) -> pb.SettleLotTicketsResponse:
            lot = await uow.store.lot(lot_id)
            terms = await uow.store.terms(lot.sale_id) if lot is not None else None
            any_invoice = tickets.credit_any(terms.credit_scope if terms is not None else None)
            credited = await tickets.settle_lot_tickets(
                uow, lot_id, winner, any_invoice, f"settle:{caller.subject}", now
            )
            return pb.SettleLotTicketsResponse(credited=credited)

        return await self._mutate("SettleLotTickets", request, pb.SettleLotTicketsResponse, action)

    async def RefundTickets(self, request: pb.RefundTicketsRequest, context: Context) -> pb.RefundTicketsResponse:
        from gavel_core.money import validate_currency

        currency = validate_currency(request.currency)

        async def action(uow: SqlPaymentUnitOfWork, caller: Principal, now: datetime) -> pb.RefundTicketsResponse:
            count, amount = await tickets.refund_tickets(
                uow,
                self._env,
                bidder_id=caller.subject,
                currency=currency,
                count=request.tickets,
                request_key=f"{caller.subject}:{request.request_id}",
                now=now,
            )
            return pb.RefundTicketsResponse(refunded=count, amount=money(amount, currency))

        return await self._mutate("RefundTickets", request, pb.RefundTicketsResponse, action)

    async def GetWallet(self, request: pb.GetWalletRequest, context: Context) -> pb.GetWalletResponse:
        async def action(uow: PaymentUnitOfWork, caller: Principal, now: datetime) -> pb.GetWalletResponse:
            bidder = require_self_or_staff(caller, require_id("bidder_id", request.bidder_id, optional=True))
            balances = await uow.ledger.balances_of("bidder", bidder)
            return pb.GetWalletResponse(
                balances=[
                    pb.Balance(kind=a.kind, scope=a.scope, balance=money(b, a.currency))
                    for a, b in sorted(balances.items())
                    if b
                ]
            )

        return await self._read(action)

    # -- sellers and books ----------------------------------------------------------------------

    async def GetSettlementStatement(
        self, request: pb.GetSettlementStatementRequest, context: Context
    ) -> pb.GetSettlementStatementResponse:
        async def action(uow: PaymentUnitOfWork, caller: Principal, now: datetime) -> pb.GetSettlementStatementResponse:
            seller = require_id("seller_id", request.seller_id, optional=True) or caller.subject
            if seller != caller.subject and not caller.has(Role.SALE_ADMIN, Role.SITE_ADMIN):
                raise PermissionDenied("a seller sees only their own statement", reason="NOT_OWNER")
            sale_id = require_id("sale_id", request.sale_id, optional=True)
            lines = await queries.settlement_lines(uow, seller, sale_id)
            reply = pb.GetSettlementStatementResponse(seller_id=seller, sale_id=sale_id)
            totals: dict[str, list[int]] = {}
            for line in lines:
                inv, c = line.invoice, line.invoice.currency
                net = inv.amounts.net_hammer - line.commission
                reply.lines.append(
                    pb.SettlementLine(
                        invoice_id=inv.id,
                        lot_id=inv.lot_id,
                        buyer_id=inv.bidder_id,
                        hammer=money(inv.amounts.net_hammer, c),
                        commission=money(line.commission, c),
                        net=money(net, c),
                        paid=line.paid,
                    )
                )
                settled, pending, commission = totals.setdefault(c, [0, 0, 0])
                totals[c] = [
                    settled + (net if line.paid else 0),
                    pending + (0 if line.paid else net),
                    commission + (line.commission if line.paid else 0),
                ]
            if len(totals) == 1:
                ((currency, (settled, pending, commission)),) = totals.items()
                reply.settled.CopyFrom(money(settled, currency))
                reply.pending.CopyFrom(money(pending, currency))
                reply.commission.CopyFrom(money(commission, currency))
            return reply

        return await self._read(action)

    async def VerifyLedger(self, request: pb.VerifyLedgerRequest, context: Context) -> pb.VerifyLedgerResponse:
        async def action(uow: PaymentUnitOfWork, caller: Principal, now: datetime) -> pb.VerifyLedgerResponse:
            count, transactions, mismatched, unbalanced, past_floor = await cast(
                SqlPaymentUnitOfWork, uow
            ).ledger.verify()
            return pb.VerifyLedgerResponse(
                accounts=count,
                transactions=transactions,
                mismatched_accounts=mismatched,
                unbalanced_transactions=unbalanced,
                accounts_past_floor=past_floor,
            )

        return await self._read(action)

    async def ListLedgerEntries(
        self, request: pb.ListLedgerEntriesRequest, context: Context
    ) -> pb.ListLedgerEntriesResponse:
        prefix = require_text("account_prefix", request.account_prefix, max_length=400, optional=True)
        token = request.page.page_token
        if token and not token.isdigit():
            raise InvalidArgument([FieldViolation("page.page_token", "not a token of this list")])

        async def action(uow: PaymentUnitOfWork, caller: Principal, now: datetime) -> pb.ListLedgerEntriesResponse:
            size = mapping.page_size(request.page)
            rows, total = await cast(SqlPaymentUnitOfWork, uow).ledger.entries(prefix, int(token or 0), size + 1)
            page, more = rows[:size], len(rows) > size
            return pb.ListLedgerEntriesResponse(
                entries=[
                    pb.LedgerEntry(
                        transaction_id=r.transaction_id,
                        kind=r.kind,
                        cause=r.cause,
                        account=r.account_id,
                        amount_minor=r.amount,
                        currency=r.currency,
                        created_at=timestamp(r.created_at),
                    )
                    for r in page
                ],
                page=_page(str(page[-1].id) if more and page else "", total),
            )

        return await self._read(action)


def _may_see(principal: Principal, bidder_id: str) -> bool:
    return principal.subject == bidder_id or principal.has(Role.SALE_ADMIN, Role.SITE_ADMIN, Role.SERVICE)


def _page(next_token: str, total: int) -> Any:
    from gavel.common.v1.paging_pb2 import PageInfo

    return PageInfo(next_page_token=next_token, total_size=total)


def _fields(terms: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(terms, f.name) for f in dataclasses.fields(terms)}


__all__ = ["AccountId", "PaymentServicer", "Purpose", "json"]
