"""Bidders register, reserve and enter rooms; the catalog seats them round-robin across a product's rooms."""

import asyncio
from collections import Counter

import grpc
import pytest

from gavel.catalog.v1 import catalog_service_pb2 as pb
from gavel.catalog.v1 import resources_pb2 as res
from gavel.events.v1 import catalog_events_pb2 as ev
from gavel_core.auth import Role
from gavel_kit.grpc.errors import error_info_of

pytestmark = pytest.mark.integration


async def test_bidders_of_a_three_room_product_are_seated_round_robin_and_keep_their_seats(catalog):
    sale, lots = await catalog.published_sale_starting_soon(quantity=3)
    bidders = [catalog.bidder(n) for n in range(1, 5)]
    for bidder in bidders:
        assert (await catalog.register(bidder, sale)).status == res.REGISTRATION_STATUS_APPROVED

    first = await bidders[0].ReserveLot(pb.ReserveLotRequest(request_id=catalog.request_id(), lot_id=lots[0].id))
    second = await bidders[1].ReserveLot(pb.ReserveLotRequest(request_id=catalog.request_id(), lot_id=lots[2].id))
    third = await bidders[2].EnterRoom(pb.EnterRoomRequest(request_id=catalog.request_id(), lot_id=lots[0].id))
    fourth = await bidders[3].EnterRoom(pb.EnterRoomRequest(request_id=catalog.request_id(), lot_id=lots[1].id))
    again = await bidders[0].EnterRoom(pb.EnterRoomRequest(request_id=catalog.request_id(), lot_id=lots[2].id))

    assert [first.seat.room_index, second.seat.room_index, third.seat.room_index, fourth.seat.room_index] == [
        0,
        1,
        2,
        0,
    ]
    assert (again.seat.lot_id, again.seat.room_index) == (lots[0].id, 0)  # a seat never changes
    assert first.reservation.state == res.RESERVATION_STATE_ACTIVE
    seated = await catalog.events.wait_for("seat_assigned", 4)
    assert [ev.SeatAssigned.FromString(m.data).room_index for m in seated] == [0, 1, 2, 0]
    assert len(await catalog.events.wait_for("reservation_created", 2)) == 2

    in_room_1 = await catalog.room_service.GetSeat(pb.GetSeatRequest(lot_id=lots[1].id, bidder_id="bidder-2"))
    elsewhere = await catalog.room_service.GetSeat(pb.GetSeatRequest(lot_id=lots[0].id, bidder_id="bidder-2"))
    assert (in_room_1.seated, elsewhere.seated, elsewhere.seat.room_index) == (True, False, 1)

    day = sale.live_session.date
    schedule = await bidders[0].GetSchedule(pb.GetScheduleRequest(view=res.SCHEDULE_VIEW_DAY, date=day))
    [row] = [row for d in schedule.days for part in d.parts for slot in part.slots for row in slot.rows]
    assert (row.actions.reserved, row.actions.reservation_id, row.actions.can_enter_room) == (
        True,
        first.reservation.id,
        True,
    )


async def test_many_bidders_reserving_at_once_are_seated_evenly_with_no_room_shared_by_one_ordinal(catalog):
    sale, lots = await catalog.published_sale_starting_soon(quantity=3)
    bidders = [catalog.bidder(n) for n in range(1, 7)]
    for bidder in bidders:
        await catalog.register(bidder, sale)

    async def reserve(bidder):
        request = pb.ReserveLotRequest(request_id=catalog.request_id(), lot_id=lots[0].id)
        for _ in range(20):  # a collision is ABORTED: retry with the same request id
            try:
                return await bidder.ReserveLot(request)
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.ABORTED:
                    raise
                await asyncio.sleep(0.01)
        raise AssertionError("still aborted after 20 tries")

    replies = await asyncio.gather(*(reserve(bidder) for bidder in bidders))

    assert Counter(reply.seat.room_index for reply in replies) == {0: 2, 1: 2, 2: 2}


async def test_a_manual_sale_needs_a_sale_admin_before_a_bidder_may_reserve(catalog):
    product = await catalog.product()
    sale = await catalog.sale_starting_soon(rule=res.APPROVAL_RULE_MANUAL)
    [lot] = await catalog.lot(sale, product)
    await catalog.publish(sale)
    bidder = catalog.bidder(1)

    pending = await catalog.register(bidder, sale)
    assert pending.status == res.REGISTRATION_STATUS_PENDING
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bidder.ReserveLot(pb.ReserveLotRequest(request_id=catalog.request_id(), lot_id=lot.id))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info_of(caught.value).reason == "NOT_REGISTERED"

    decided = await catalog.admin.DecideRegistration(
        pb.DecideRegistrationRequest(
            request_id=catalog.request_id(), registration_id=pending.id, decision=pb.DECISION_APPROVE
        )
    )
    assert (decided.registration.status, decided.registration.decided_by) == (
        res.REGISTRATION_STATUS_APPROVED,
        "admin-1",
    )
    [announced] = await catalog.events.wait_for("registration_decided")
    assert ev.RegistrationDecided.FromString(announced.data).decided_by == "admin-1"
    reserved = await bidder.ReserveLot(pb.ReserveLotRequest(request_id=catalog.request_id(), lot_id=lot.id))
    assert reserved.reservation.state == res.RESERVATION_STATE_ACTIVE
    listed = await catalog.seller.ListRegistrations(pb.ListRegistrationsRequest(sale_id=sale.id))
    assert [r.bidder_id for r in listed.registrations] == ["bidder-1"]  # the sale's owner sees its registrations


async def test_a_deposit_rule_leaves_registrations_pending_until_the_payment_service_exists(catalog):
    product = await catalog.product()
    sale = await catalog.sale_starting_soon(rule=res.APPROVAL_RULE_AUTO_VERIFIED_DEPOSIT)
    await catalog.lot(sale, product)
    await catalog.publish(sale)

    registration = await catalog.register(catalog.bidder(1), sale)

    assert registration.status == res.REGISTRATION_STATUS_PENDING


async def test_a_seller_may_not_register_for_their_own_sale(catalog):
    sale, _ = await catalog.published_sale_starting_soon()
    seller_bidding = catalog.user("seller-1", Role.SELLER, Role.BIDDER)  # the seller, with a bidder's role too
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await catalog.register(seller_bidding, sale)
    assert (caught.value.code(), error_info_of(caught.value).reason) == (grpc.StatusCode.PERMISSION_DENIED, "OWN_LOT")


async def test_a_cancelled_reservation_keeps_the_seat_and_cannot_be_cancelled_twice(catalog):
    sale, [lot] = await catalog.published_sale_starting_soon()
    bidder = catalog.bidder(1)
    await catalog.register(bidder, sale)
    reserved = await bidder.ReserveLot(pb.ReserveLotRequest(request_id=catalog.request_id(), lot_id=lot.id))

    cancel = pb.CancelReservationRequest(request_id=catalog.request_id(), reservation_id=reserved.reservation.id)
    cancelled = await bidder.CancelReservation(cancel)
    assert cancelled.reservation.state == res.RESERVATION_STATE_CANCELLED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bidder.CancelReservation(
            pb.CancelReservationRequest(request_id=catalog.request_id(), reservation_id=reserved.reservation.id)
        )
    assert error_info_of(caught.value).reason == "INVALID_STATE"

    again = await bidder.ReserveLot(pb.ReserveLotRequest(request_id=catalog.request_id(), lot_id=lot.id))
    assert again.reservation.id != reserved.reservation.id
    assert again.seat == reserved.seat
    mine = await bidder.ListMyReservations(pb.ListMyReservationsRequest(include_cancelled=True))
    assert [r.state for r in mine.reservations] == [res.RESERVATION_STATE_CANCELLED, res.RESERVATION_STATE_ACTIVE]
    active = await bidder.ListMyReservations(pb.ListMyReservationsRequest())
    assert [r.id for r in active.reservations] == [again.reservation.id]
