"""Deposits become buying power (BidLimitSet), pay for penalties and invoices, and go back to the
others when the sale closes; defaults earn strikes, strikes a ban (BidderBanned) that only a site
admin lifts; every penalty can be reversed with a reason."""

from __future__ import annotations

import uuid

import grpc
import pytest

from gavel.events.v1 import eligibility_events_pb2 as elig
from gavel.events.v1 import payment_events_pb2 as pay
from gavel.payment.v1 import payment_service_pb2 as pb

pytestmark = pytest.mark.integration
SUCCESS = "4242424242424242"


def new_ids() -> tuple[str, str]:
    return f"sale-{uuid.uuid4().hex[:8]}", f"lot-{uuid.uuid4().hex[:8]}"


async def place_deposit(payment, bidder, sale_id: str, amount: int | None = None) -> pb.PlaceDepositResponse:
    request = pb.PlaceDepositRequest(request_id=payment.request_id(), sale_id=sale_id, payment_method=SUCCESS)
    if amount is not None:
        request.amount.CopyFrom(payment.eur(amount))
    return await bidder.PlaceDeposit(request)


async def test_a_deposit_sets_buying_power_verifies_registration_and_is_applied_to_the_winners_invoice(start_payment):
    payment = await start_payment()
    sale_id, lot_id = new_ids()
    await payment.terms(sale_id, deposit=payment.eur(50_000), buying_power_bp=100_000)  # 10x
    bidder = payment.bidder(1)
    placed = await place_deposit(payment, bidder, sale_id)
    assert placed.payment.status == pb.PAYMENT_STATUS_CAPTURED
    assert (placed.deposit.held.amount_minor, placed.deposit.buying_power.amount_minor) == (50_000, 500_000)
    limit = elig.BidLimitSet.FromString((await payment.events.wait_for("bidder.bid_limit_set", "bidder-1"))[0].data)
    assert (limit.sale_id, limit.limit.amount_minor) == (sale_id, 500_000)
    checked = await payment.service.HasVerifiedDeposit(
        pb.HasVerifiedDepositRequest(bidder_id="bidder-1", sale_id=sale_id)
    )
    assert checked.verified
    other = await payment.service.HasVerifiedDeposit(
        pb.HasVerifiedDepositRequest(bidder_id="bidder-2", sale_id=sale_id)
    )
    assert not other.verified
    eligibility = await payment.service.GetEligibility(pb.GetEligibilityRequest(bidder_id="bidder-1", sale_id=sale_id))
    assert (eligibility.banned, eligibility.buying_power.amount_minor) == (False, 500_000)

    await payment.room.configure(lot_id, sale_id=sale_id)
    await payment.room.sold(lot_id, "bidder-1", 80_000)
    invoice = await payment.wait_invoice(lot_id)
    assert invoice.deposit_applied.amount_minor == 50_000
    assert invoice.balance_due.amount_minor == 30_000


async def test_deposits_of_bidders_who_won_nothing_are_refunded_when_the_sale_closes(start_payment, catalog_event):
    payment = await start_payment()
    sale_id, lot_id = new_ids()
    await payment.terms(sale_id, deposit=payment.eur(10_000))
    winner, loser = payment.bidder(1), payment.bidder(2)
    await place_deposit(payment, winner, sale_id)
    await place_deposit(payment, loser, sale_id)
    await payment.room.configure(lot_id, sale_id=sale_id)
    await payment.room.sold(lot_id, "bidder-1", 30_000)
    await payment.wait_invoice(lot_id)
    outcome = catalog_event(lot_id, sale_id, winner="bidder-1", closed=True)
    await payment.js.publish(f"gavel.catalog.lot_outcome_recorded.{lot_id}", outcome.SerializeToString())
    released = await payment.events.wait_for("bidder.bid_limit_set", "bidder-2", count=2)
    assert not elig.BidLimitSet.FromString(released[1].data).HasField("limit")  # no limit: the sale is over
    refund = pay.RefundCompleted.FromString((await payment.events.wait_for("refund.completed", "bidder-2"))[0].data)
    assert (refund.amount.amount_minor, refund.purpose, refund.target_id) == (10_000, "deposit_release", sale_id)
    listed = await payment.admin.ListDeposits(pb.ListDepositsRequest(sale_id=sale_id))
    by_bidder = {d.bidder_id: d for d in listed.deposits}
    assert by_bidder["bidder-2"].released
    assert by_bidder["bidder-2"].held.amount_minor == 0
    assert by_bidder["bidder-2"].refunded.amount_minor == 10_000  # the sandbox refunded it
    assert by_bidder["bidder-1"].applied.amount_minor == 10_000
    wallet = await loser.GetWallet(pb.GetWalletRequest())
    assert [b for b in wallet.balances if b.balance.amount_minor] == []
    verified = await payment.verify()
    assert not verified.mismatched_accounts
    assert not verified.accounts_past_floor


async def test_a_confirmation_timeout_takes_the_penalty_from_the_deposit_and_three_strikes_ban(start_payment):
    payment = await start_payment(strikes_to_ban=3)
    sale_id, _ = new_ids()
    await payment.terms(sale_id, deposit=payment.eur(10_000), penalty_fee=payment.eur(1_000), penalty_fee_bp=500)
    await place_deposit(payment, payment.bidder(5), sale_id)
    lots = [f"lot-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for lot_id in lots:
        await payment.room.configure(lot_id, sale_id=sale_id)
        await payment.room.penalty(lot_id, "bidder-5", 20_000)
        await payment.room.penalty(lot_id, "bidder-5", 20_000)  # a second default on the lot (Dutch, lucky)
    charged = await payment.events.wait_for("penalty.charged", "bidder-5", count=6)
    first = pay.PenaltyCharged.FromString(charged[0].data)
    assert (first.amount.amount_minor, first.from_deposit.amount_minor, first.strikes) == (2_000, 2_000, 1)
    banned = elig.BidderBanned.FromString((await payment.events.wait_for("bidder.banned", "bidder-5"))[0].data)
    assert banned.sale_id == ""  # every sale
    eligibility = await payment.service.GetEligibility(pb.GetEligibilityRequest(bidder_id="bidder-5", sale_id=sale_id))
    assert eligibility.banned
    assert eligibility.deposit_held.amount_minor == 0  # 10,000 went to five penalties of 2,000
    wallet = await payment.admin.GetWallet(pb.GetWalletRequest(bidder_id="bidder-5"))
    owed = [b for b in wallet.balances if b.kind == "penalties_owed"]
    assert owed[0].balance.amount_minor == -2_000  # the sixth penalty is owed

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await payment.sale_admin.LiftBan(
            pb.LiftBanRequest(request_id=payment.request_id(), bidder_id="bidder-5", reason="x")
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED  # site admins only
    lifted = await payment.admin.LiftBan(
        pb.LiftBanRequest(request_id=payment.request_id(), bidder_id="bidder-5", reason="disputed: network outage")
    )
    assert lifted.ban.lift_reason == "disputed: network outage"
    await payment.events.wait_for("bidder.unbanned", "bidder-5")

    penalties = await payment.admin.ListPenalties(pb.ListPenaltiesRequest(bidder_id="bidder-5"))
    reversed_ = await payment.admin.ReversePenalty(
        pb.ReversePenaltyRequest(
            request_id=payment.request_id(), penalty_id=penalties.penalties[0].id, reason="courtesy"
        )
    )
    assert reversed_.strikes == 5
    assert reversed_.penalty.reversal_reason == "courtesy"
    eligibility = await payment.service.GetEligibility(pb.GetEligibilityRequest(bidder_id="bidder-5", sale_id=sale_id))
    assert eligibility.deposit_held.amount_minor == 2_000  # the reversed penalty's part came back
    verified = await payment.verify()
    assert not verified.mismatched_accounts
    assert not verified.unbalanced_transactions


async def test_a_redelivered_room_event_has_no_second_effect(start_payment):
    payment = await start_payment()
    sale_id, lot_id = new_ids()
    await payment.room.configure(lot_id, sale_id=sale_id)
    from gavel.events.v1 import room_events_pb2

    from .conftest import eur, ts

    batch = room_events_pb2.LotEventBatch(
        lot_id=lot_id,
        lot_sequence=2,
        command_id="hammer",
        events=[
            room_events_pb2.RoomEvent(
                at=ts(), lot_sold=room_events_pb2.LotSold(buyer="bidder-1", hammer_price=eur(5_000))
            )
        ],
    )
    for copy in range(2):  # the same batch twice (a redelivery past the dedupe window)
        await payment.js.publish(
            f"gavel.room.lot.{lot_id}", batch.SerializeToString(), headers={"Nats-Msg-Id": f"x{copy}"}
        )
    await payment.wait_invoice(lot_id)
    listed = await payment.admin.ListInvoices(pb.ListInvoicesRequest(sale_id=sale_id))
    assert len(listed.invoices) == 1
