"""A sold lot becomes an invoice; the buyer pays it by card through the sandbox (or an admin marks
a bank transfer); the seller's statement shows it settled net of commission. Declines, timeouts and
3-D Secure leave the ledger consistent and the invoice payable again."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from gavel.payment.v1 import payment_service_pb2 as pb

pytestmark = pytest.mark.integration

SUCCESS, DECLINE, INSUFFICIENT, THREE_DS, SLOW = (
    "4242424242424242",
    "4000000000000002",
    "4000000000009995",
    "4000000000003220",
    "4000000000000259",
)


def ids() -> tuple[str, str]:
    return f"sale-{uuid.uuid4().hex[:8]}", f"lot-{uuid.uuid4().hex[:8]}"


async def sold_lot(payment, *, hammer: int = 100_000, buyer: str = "bidder-1", discount_bp: int | None = None, **terms):
    sale_id, lot_id = ids()
    if terms:
        await payment.terms(sale_id, **terms)
    await payment.room.configure(lot_id, sale_id=sale_id, premium_bp=2000, tax_bp=1000)
    await payment.room.sold(lot_id, buyer, hammer, discount_bp)
    return sale_id, lot_id, await payment.wait_invoice(lot_id)


async def pay(payment, bidder, invoice_id: str, card: str = SUCCESS, request_id: str | None = None):
    return await bidder.PayInvoice(
        pb.PayInvoiceRequest(request_id=request_id or payment.request_id(), invoice_id=invoice_id, payment_method=card)
    )


async def test_a_sold_lot_is_invoiced_with_banded_premium_tax_and_discount_paid_by_card_and_settled(start_payment):
    payment = await start_payment()
    bands = [pb.PremiumBand(from_minor=0, bp=2500), pb.PremiumBand(from_minor=50_000, bp=2000)]
    sale_id, _lot_id, invoice = await sold_lot(
        payment,
        hammer=100_000,
        discount_bp=1000,
        premium_bands=bands,
        tax_bp=2000,
        tax_base=pb.TAX_BASE_PREMIUM,
        commission_bp=1000,
    )
    # 10% paddle discount: 90,000; premium 25% of 50,000 + 20% of 40,000 = 20,500; tax 20% of the premium
    assert (invoice.hammer.amount_minor, invoice.discount.amount_minor) == (100_000, 10_000)
    assert (invoice.premium.amount_minor, invoice.tax.amount_minor) == (20_500, 4_100)
    assert invoice.total.amount_minor == invoice.balance_due.amount_minor == 114_600
    await payment.events.wait_for("invoice.issued", invoice.id)  # the outbox publishes after the commit
    assert len(payment.events.of("invoice.issued", invoice.id)) == 1

    buyer = payment.bidder(1)
    paid = await pay(payment, buyer, invoice.id)
    assert paid.payment.status == pb.PAYMENT_STATUS_CAPTURED
    assert paid.invoice.status == pb.INVOICE_STATUS_PAID
    assert paid.invoice.balance_due.amount_minor == 0
    await payment.events.wait_for("invoice.paid", invoice.id)

    statement = await payment.seller.GetSettlementStatement(pb.GetSettlementStatementRequest(sale_id=sale_id))
    assert statement.settled.amount_minor == 90_000 - 9_000  # net hammer less 10% commission
    assert statement.commission.amount_minor == 9_000
    assert [line.paid for line in statement.lines] == [True]
    verified = await payment.verify()
    assert not (verified.mismatched_accounts)
    assert not (verified.unbalanced_transactions)
    assert not (verified.accounts_past_floor)


async def test_the_catalog_lots_flat_premium_and_tax_apply_when_the_sale_set_no_terms(start_payment):
    payment = await start_payment()
    _, _, invoice = await sold_lot(payment, hammer=10_000)
    assert (invoice.premium.amount_minor, invoice.tax.amount_minor) == (2_000, 1_200)  # tax on the whole


async def test_a_declined_card_fails_the_payment_and_leaves_the_invoice_payable(start_payment):
    payment = await start_payment()
    _, _, invoice = await sold_lot(payment)
    buyer = payment.bidder(1)
    for card, reason in ((DECLINE, "declined"), (INSUFFICIENT, "insufficient_funds")):
        failed = await pay(payment, buyer, invoice.id, card)
        assert failed.payment.status == pb.PAYMENT_STATUS_FAILED
        assert failed.payment.failure_reason == reason
        assert failed.invoice.status == pb.INVOICE_STATUS_ISSUED
        assert failed.invoice.balance_due == invoice.balance_due
    await payment.events.wait_for("invoice.payment_failed", invoice.id, count=2)
    paid = await pay(payment, buyer, invoice.id)
    assert paid.invoice.status == pb.INVOICE_STATUS_PAID
    verified = await payment.verify()
    assert not (verified.mismatched_accounts)
    assert not (verified.unbalanced_transactions)
    assert not (verified.accounts_past_floor)


async def test_a_timed_out_card_is_resolved_by_asking_the_provider_not_by_guessing(start_payment):
    payment = await start_payment(provider_timeout_s=0.3, slow_s=1.5)
    _, _, invoice = await sold_lot(payment)
    buyer = payment.bidder(1)
    pending = await pay(payment, buyer, invoice.id, SLOW)
    assert pending.payment.status == pb.PAYMENT_STATUS_PENDING  # unknown: neither paid nor failed
    assert pending.invoice.status == pb.INVOICE_STATUS_ISSUED
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # no second payment while the first is unknown
        await pay(payment, buyer, invoice.id)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await payment.events.wait_for("invoice.paid", invoice.id)  # the reconciler asked the provider
    final = await buyer.GetPayment(pb.GetPaymentRequest(payment_id=pending.payment.id))
    assert final.payment.status == pb.PAYMENT_STATUS_CAPTURED
    got = await buyer.GetInvoice(pb.GetInvoiceRequest(invoice_id=invoice.id))
    assert got.invoice.status == pb.INVOICE_STATUS_PAID
    assert len(payment.events.of("invoice.paid", invoice.id)) == 1


async def test_a_3ds_card_is_confirmed_on_the_sandbox_page_and_a_replayed_webhook_changes_nothing(start_payment):
    payment = await start_payment()
    _, _, invoice = await sold_lot(payment)
    buyer = payment.bidder(1)
    started = await pay(payment, buyer, invoice.id, THREE_DS)
    assert started.payment.status == pb.PAYMENT_STATUS_REQUIRES_ACTION
    assert started.payment.action_url.startswith(payment.sandbox_url + "/3ds/")
    confirmed = await payment.sandbox_post(started.payment.action_url.removeprefix(payment.sandbox_url) + "/confirm")
    assert confirmed.status_code == 200
    await payment.events.wait_for("invoice.paid", invoice.id)
    for event_id in list(payment.sandbox.sent):  # every webhook again, re-signed: no second effect
        assert (await payment.sandbox_post(f"/v1/test/webhooks/{event_id}/resend")).status_code == 200
    got = await buyer.GetInvoice(pb.GetInvoiceRequest(invoice_id=invoice.id))
    assert got.invoice.status == pb.INVOICE_STATUS_PAID
    assert len(payment.events.of("invoice.paid", invoice.id)) == 1
    verified = await payment.verify()
    assert not (verified.mismatched_accounts)
    assert not (verified.unbalanced_transactions)


async def test_a_webhook_with_a_bad_signature_is_refused(start_payment):
    payment = await start_payment()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await payment.user(
            "svc:gateway", __import__("gavel_core.auth", fromlist=["Role"]).Role.SERVICE
        ).HandleProviderWebhook(
            pb.HandleProviderWebhookRequest(body=b'{"id":"evt_x","data":{}}', signature="t=1,v1=00")
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_duplicated_and_concurrent_pay_requests_make_one_payment(start_payment):
    payment = await start_payment()
    _, _, invoice = await sold_lot(payment)
    buyer = payment.bidder(1)
    twins = await asyncio.gather(*(pay(payment, buyer, invoice.id, request_id="same-request") for _ in range(4)))
    assert len({t.payment.id for t in twins}) == 1
    others = await asyncio.gather(*(pay(payment, buyer, invoice.id) for _ in range(3)), return_exceptions=True)
    for other in others:
        assert isinstance(other, grpc.aio.AioRpcError)
        assert other.code() == grpc.StatusCode.FAILED_PRECONDITION  # paid already, or a payment in progress
    listed = await buyer.ListPayments(pb.ListPaymentsRequest(target_id=invoice.id))
    assert [p.status for p in listed.payments] == [pb.PAYMENT_STATUS_CAPTURED]
    assert len(payment.events.of("invoice.paid", invoice.id)) <= 1
    await payment.events.wait_for("invoice.paid", invoice.id)


async def test_an_admin_marks_a_bank_transfer_and_the_invoice_is_paid(start_payment):
    payment = await start_payment()
    _sale_id, _, invoice = await sold_lot(payment)
    marked = await payment.sale_admin.MarkInvoicePaid(
        pb.MarkInvoicePaidRequest(request_id=payment.request_id(), invoice_id=invoice.id, reference="BANK-123")
    )
    assert (marked.invoice.status, marked.invoice.paid_by) == (pb.INVOICE_STATUS_PAID, "bank_transfer")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await pay(payment, payment.bidder(1), invoice.id)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_an_invoice_renders_as_html_and_pdf(start_payment):
    payment = await start_payment()
    _, _, invoice = await sold_lot(payment)
    buyer = payment.bidder(1)
    html = await buyer.RenderInvoice(pb.RenderInvoiceRequest(invoice_id=invoice.id, format=pb.DOCUMENT_FORMAT_HTML))
    assert invoice.number.encode() in html.content
    pdf = await buyer.RenderInvoice(pb.RenderInvoiceRequest(invoice_id=invoice.id, format=pb.DOCUMENT_FORMAT_PDF))
    assert pdf.content.startswith(b"%PDF")
    assert pdf.content_type == "application/pdf"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await payment.bidder(2).GetInvoice(pb.GetInvoiceRequest(invoice_id=invoice.id))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_an_invoice_past_its_due_date_is_overdue_with_a_non_payment_penalty(start_payment):
    payment = await start_payment()
    sale_id, lot_id = ids()
    await payment.terms(sale_id, payment_due_days=1, penalty_fee=payment.eur(500))
    await payment.room.configure(lot_id, sale_id=sale_id)
    await payment.room.sold(lot_id, "bidder-7", 10_000)
    invoice = await payment.wait_invoice(lot_id)
    # the service's clock is real: make the invoice due now by moving its due date back
    from sqlalchemy import update

    from payment.adapters import orm

    async with payment.rt.db.sessions() as session, session.begin():
        await session.execute(
            update(orm.invoices).where(orm.invoices.c.id == invoice.id).values(due_at=orm.invoices.c.issued_at)
        )
    await payment.events.wait_for("invoice.overdue", invoice.id)
    charged = await payment.events.wait_for("penalty.charged", "bidder-7")
    assert charged
    penalties = await payment.admin.ListPenalties(pb.ListPenaltiesRequest(bidder_id="bidder-7"))
    assert [(p.reason, p.amount.amount_minor) for p in penalties.penalties] == [("non_payment", 500)]
    assert penalties.strikes == 1


async def test_a_reordered_webhook_older_than_what_is_known_changes_nothing(start_payment):
    import json
    import time

    from gavel_core.auth import Role
    from payment.adapters import signatures

    payment = await start_payment()
    _, _, invoice = await sold_lot(payment)
    buyer = payment.bidder(1)
    started = await pay(payment, buyer, invoice.id, THREE_DS)
    gateway = payment.user("svc:gateway", Role.SERVICE)

    def webhook(event_id: str, status: str, version: int, reason: str = "") -> pb.HandleProviderWebhookRequest:
        data = {
            "id": "auth_x",
            "idempotency_key": started.payment.id,
            "status": status,
            "version": version,
            "reason": reason,
        }
        body = json.dumps({"id": event_id, "type": "authorization.updated", "data": data}).encode()
        return pb.HandleProviderWebhookRequest(
            body=body, signature=signatures.sign("test-webhook-secret", body, int(time.time()))
        )

    confirmed = await payment.sandbox_post(started.payment.action_url.removeprefix(payment.sandbox_url) + "/confirm")
    assert confirmed.status_code == 200
    await payment.events.wait_for("invoice.paid", invoice.id)
    late = await gateway.HandleProviderWebhook(webhook("evt-late", "declined", 1, "authentication_failed"))
    assert not late.applied  # an older version arriving after the capture
    again = await gateway.HandleProviderWebhook(webhook("evt-late", "declined", 99, "authentication_failed"))
    assert not again.applied  # the same event id: already handled
    final = await buyer.GetPayment(pb.GetPaymentRequest(payment_id=started.payment.id))
    assert final.payment.status == pb.PAYMENT_STATUS_CAPTURED
    assert payment.events.of("invoice.payment_failed", invoice.id) == []
