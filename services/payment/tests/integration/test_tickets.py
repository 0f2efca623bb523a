"""Bid tickets: bought through the provider, one spent per bid (idempotent by the bid's id),
unspent ones refundable, and spend on a lot the bidder did not win turned into credit that pays
part of a later invoice. bought = spent + remaining + refunded, always."""

from __future__ import annotations

import uuid

import grpc
import pytest

from gavel.payment.v1 import payment_service_pb2 as pb

pytestmark = pytest.mark.integration
SUCCESS = "4242424242424242"


async def tickets_of(payment, bidder: str) -> dict[str, int]:
    wallet = await payment.admin.GetWallet(pb.GetWalletRequest(bidder_id=bidder))
    return {f"{b.kind}:{b.scope}": b.balance.amount_minor for b in wallet.balances}


async def conservation(payment) -> tuple[int, int, int, int]:
    rows = await payment.admin.ListLedgerEntries(
        pb.ListLedgerEntriesRequest(account_prefix="house|house|tickets_", page={"page_size": 500})
    )
    totals: dict[str, int] = {}
    for entry in rows.entries:
        kind = entry.account.split("|")[2]
        totals[kind] = totals.get(kind, 0) + entry.amount_minor
    bidders = await payment.admin.ListLedgerEntries(
        pb.ListLedgerEntriesRequest(account_prefix="bidder|", page={"page_size": 500})
    )
    remaining = sum(e.amount_minor for e in bidders.entries if e.account.split("|")[2] == "tickets")
    return (
        -totals.get("tickets_issued", 0),
        totals.get("tickets_spent", 0),
        remaining,
        totals.get("tickets_refunded", 0),
    )


async def test_tickets_are_bought_spent_once_per_bid_refunded_and_turned_into_credit_on_an_invoice(start_payment):
    payment = await start_payment()
    sale_id = f"sale-{uuid.uuid4().hex[:8]}"
    lost_lot, won_lot = f"lot-{uuid.uuid4().hex[:8]}", f"lot-{uuid.uuid4().hex[:8]}"
    await payment.terms(sale_id, credit_scope=pb.CREDIT_SCOPE_ANY)
    await payment.admin.DefineTicketPack(
        pb.DefineTicketPackRequest(
            request_id=payment.request_id(),
            pack=pb.TicketPack(id="ten", tickets=10, unit_price=payment.eur(100), active=True),
        )
    )
    packs = await payment.bidder(1).ListTicketPacks(pb.ListTicketPacksRequest())
    assert [(p.id, p.price.amount_minor) for p in packs.packs] == [("ten", 1_000)]
    buyer = payment.bidder(1)
    bought = await buyer.BuyTicketPack(
        pb.BuyTicketPackRequest(request_id=payment.request_id(), pack_id="ten", payment_method=SUCCESS)
    )
    assert bought.payment.status == pb.PAYMENT_STATUS_CAPTURED
    await payment.room.configure(lost_lot, sale_id=sale_id, product_id="product-x")
    await payment.room.configure(won_lot, sale_id=sale_id, product_id="product-y")

    def bid(bid_id: str) -> pb.ConsumeBidTicketRequest:
        return pb.ConsumeBidTicketRequest(
            request_id=bid_id,
            bidder_id="bidder-1",
            sale_id=sale_id,
            lot_id=lost_lot,
            product_id="product-x",
            currency="EUR",
        )

    for bid_id in ("bid-1", "bid-2", "bid-3", "bid-3"):  # the last is a retry of bid-3
        spent = await payment.service.ConsumeBidTicket(bid(bid_id))
    assert (spent.tickets_left, spent.value.amount_minor) == (7, 100)
    refunded = await buyer.RefundTickets(
        pb.RefundTicketsRequest(request_id=payment.request_id(), currency="EUR", tickets=2)
    )
    assert (refunded.refunded, refunded.amount.amount_minor) == (2, 200)
    assert await conservation(payment) == (10, 3, 5, 2)

    await payment.room.sold(lost_lot, "bidder-2", 5_000)  # bidder-1 did not win: 300 becomes credit
    await payment.wait_invoice(lost_lot)
    assert (await tickets_of(payment, "bidder-1")).get("credit:*") == 300
    await payment.room.sold(won_lot, "bidder-1", 10_000)
    invoice = await payment.wait_invoice(won_lot)
    assert invoice.credit_applied.amount_minor == 300
    assert invoice.balance_due.amount_minor == invoice.total.amount_minor - 300
    assert (await tickets_of(payment, "bidder-1")).get("credit:*") is None  # all used
    assert await conservation(payment) == (10, 3, 5, 2)
    verified = await payment.verify()
    assert not verified.mismatched_accounts
    assert not verified.accounts_past_floor


async def test_a_bid_without_a_ticket_is_refused(start_payment):
    payment = await start_payment()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await payment.service.ConsumeBidTicket(
            pb.ConsumeBidTicketRequest(
                request_id="b1", bidder_id="bidder-9", lot_id="lot-1", product_id="p", currency="EUR"
            )
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # bidders cannot spend tickets themselves
        await payment.bidder(9).ConsumeBidTicket(
            pb.ConsumeBidTicketRequest(
                request_id="b2", bidder_id="bidder-9", lot_id="lot-1", product_id="p", currency="EUR"
            )
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
