"""Reservations and room seating: round-robin in reservation order, stable seats, who may sit."""

from datetime import UTC, datetime, timedelta

import pytest

from catalog.app.registrations import register_for_sale
from catalog.app.reservations import ListMyReservations, cancel_reservation, list_my_reservations, reserve_lot
from catalog.app.rooms import enter_room, get_seat, start_lot
from catalog.domain.events import ReservationCancelled, ReservationCreated, SeatAssigned
from catalog.domain.lots import Lot, LotGroup
from catalog.domain.reservations import ReservationState
from catalog.domain.sales import ApprovalRule
from catalog.domain.seating import assign_seat
from catalog.domain.states import State
from gavel_core.auth import Principal, Role
from gavel_core.errors import FailedPrecondition, NotFound, PermissionDenied

STARTS = datetime(2030, 5, 8, 8, 0, tzinfo=UTC)  # 10:00 Paris, the first lot's estimated start
ROOM_OPEN = STARTS - timedelta(minutes=15)


async def _live_group(catalog, quantity=3, bidders=5):
    sale, lots = await catalog.published_sale(quantity=quantity)
    for n in range(1, bidders + 1):
        await catalog.registered(sale, catalog.bidder(n))
    return sale, lots


def test_the_kth_bidder_sits_in_room_k_mod_n(catalog):
    rooms = [f"lot-{i}" for i in range(3)]
    group = LotGroup.of(
        Lot(
            id=lot_id,
            group_id="lot-0",
            sale_id="s",
            product_id="p",
            seller_id="seller-1",
            room_index=index,
            room_count=3,
            position=0,
            duration_slots=1,
            terms=catalog.english_terms(),
            state=State.SCHEDULED,
            created_at=catalog.NOW,
            updated_at=catalog.NOW,
        )
        for index, lot_id in enumerate(rooms)
    )
    assert [assign_seat(group, f"b{k}", k, catalog.NOW).room_index for k in range(7)] == [0, 1, 2, 0, 1, 2, 0]


async def test_reservers_are_seated_round_robin_in_reservation_order(catalog):
    _, lots = await _live_group(catalog, quantity=3, bidders=5)
    seats = [(await catalog(reserve_lot, catalog.bidder(n), lots[0].id)).seat for n in range(1, 6)]

    assert [seat.room_index for seat in seats] == [0, 1, 2, 0, 1]
    assert [seat.lot_id for seat in seats] == [lots[i].id for i in (0, 1, 2, 0, 1)]


async def test_a_product_of_quantity_n_spreads_bidders_over_n_rooms(catalog):
    _, lots = await _live_group(catalog, quantity=2, bidders=4)
    for n in range(1, 5):
        await catalog(reserve_lot, catalog.bidder(n), lots[1].id)  # any lot of the group will do
    per_room = [sum(1 for s in catalog.uow.seats.rows if s.lot_id == lot.id) for lot in lots]
    assert per_room == [2, 2]


async def test_reserving_announces_the_reservation_and_the_seat(catalog):
    _, lots = await _live_group(catalog, quantity=2, bidders=1)
    reserved = await catalog(reserve_lot, catalog.bidder(1), lots[0].id)

    [created] = catalog.events_of(ReservationCreated)
    [seated] = catalog.events_of(SeatAssigned)
    assert (created.reservation_id, created.group_id, created.estimated_start) == (
        reserved.reservation.id,
        lots[0].group_id,
        STARTS,
    )
    assert (seated.bidder_id, seated.lot_id, seated.room_index) == ("bidder-1", lots[0].id, 0)
    assert seated.subject == f"gavel.catalog.seat_assigned.{lots[0].id}"
    assert created.subject == f"gavel.catalog.reservation_created.{lots[0].group_id}"


async def test_re_entering_returns_the_same_seat(catalog):
    _, lots = await _live_group(catalog, quantity=3, bidders=2)
    await catalog(reserve_lot, catalog.bidder(1), lots[0].id)
    second = (await catalog(reserve_lot, catalog.bidder(2), lots[0].id)).seat
    catalog.now = ROOM_OPEN

    entered = await catalog(enter_room, catalog.bidder(2), lots[0].id)
    again = await catalog(enter_room, catalog.bidder(2), lots[2].id)

    assert entered == again == second
    assert len(catalog.events_of(SeatAssigned)) == 2


async def test_entering_without_a_reservation_takes_the_next_seat(catalog):
    _, lots = await _live_group(catalog, quantity=3, bidders=3)
    await catalog(reserve_lot, catalog.bidder(1), lots[0].id)
    catalog.now = ROOM_OPEN
    walk_in = await catalog(enter_room, catalog.bidder(2), lots[0].id)
    await catalog(start_lot, catalog.ROOM_SERVICE, lots[0].id)
    late = await catalog(enter_room, catalog.bidder(3), lots[0].id)
    assert (walk_in.room_index, late.room_index) == (1, 2)


async def test_cancelling_and_reserving_again_keeps_the_seat(catalog):
    _, lots = await _live_group(catalog, quantity=3, bidders=2)
    first = await catalog(reserve_lot, catalog.bidder(1), lots[0].id)
    await catalog(reserve_lot, catalog.bidder(2), lots[0].id)
    cancelled = await catalog(cancel_reservation, catalog.bidder(1), first.reservation.id)
    again = await catalog(reserve_lot, catalog.bidder(1), lots[0].id)

    assert cancelled.state is ReservationState.CANCELLED
    assert again.reservation.id != first.reservation.id
    assert again.seat == first.seat
    [event] = catalog.events_of(ReservationCancelled)
    assert (event.reservation_id, event.bidder_id) == (first.reservation.id, "bidder-1")


async def test_reserving_twice_returns_the_active_reservation(catalog):
    _, lots = await _live_group(catalog, bidders=1)
    first = await catalog(reserve_lot, catalog.bidder(1), lots[0].id)
    again = await catalog(reserve_lot, catalog.bidder(1), lots[0].id)
    assert again.reservation is first.reservation
    assert len(catalog.events_of(ReservationCreated)) == 1


async def test_the_seat_lookup_tells_the_room_who_sits_where(catalog):
    _, lots = await _live_group(catalog, quantity=2, bidders=2)
    await catalog(reserve_lot, catalog.bidder(1), lots[0].id)
    await catalog(reserve_lot, catalog.bidder(2), lots[0].id)

    here = await catalog(get_seat, catalog.ROOM_SERVICE, lots[1].id, "bidder-2")
    elsewhere = await catalog(get_seat, catalog.ROOM_SERVICE, lots[1].id, "bidder-1")
    nowhere = await catalog(get_seat, catalog.ROOM_SERVICE, lots[1].id, "bidder-9")

    assert (here.seated, here.seat.room_index) == (True, 1)
    assert (elsewhere.seated, elsewhere.seat.lot_id) == (False, lots[0].id)
    assert (nowhere.seated, nowhere.seat) == (False, None)


async def test_bidders_cannot_look_up_seats(catalog):
    _, lots = await _live_group(catalog, bidders=1)
    with pytest.raises(PermissionDenied):
        await catalog(get_seat, catalog.bidder(1), lots[0].id, "bidder-1")


async def test_an_unregistered_bidder_cannot_reserve_or_enter(catalog):
    _, lots = await catalog.published_sale()
    with pytest.raises(FailedPrecondition) as reserving:
        await catalog(reserve_lot, catalog.bidder(1), lots[0].id)
    catalog.now = ROOM_OPEN
    with pytest.raises(FailedPrecondition) as entering:
        await catalog(enter_room, catalog.bidder(1), lots[0].id)
    assert reserving.value.reason == entering.value.reason == "NOT_REGISTERED"
    assert reserving.value.metadata["registration_status"] == "none"


async def test_a_pending_registration_is_not_enough(catalog):
    sale, lots = await catalog.published_sale(spec=catalog.live_sale_spec(rule=ApprovalRule.MANUAL))
    await catalog(register_for_sale, catalog.bidder(1), sale.id)
    with pytest.raises(FailedPrecondition) as caught:
        await catalog(reserve_lot, catalog.bidder(1), lots[0].id)
    assert caught.value.metadata["registration_status"] == "pending"


async def test_a_seller_cannot_reserve_or_enter_their_own_lot(catalog):
    _, lots = await catalog.published_sale()
    seller_bidding = Principal(catalog.SELLER.subject, frozenset({Role.SELLER, Role.BIDDER}))
    with pytest.raises(PermissionDenied) as reserving:
        await catalog(reserve_lot, seller_bidding, lots[0].id)
    catalog.now = ROOM_OPEN
    with pytest.raises(PermissionDenied) as entering:
        await catalog(enter_room, seller_bidding, lots[0].id)
    assert reserving.value.reason == entering.value.reason == "OWN_LOT"


async def test_a_room_is_not_open_until_shortly_before_the_lot(catalog):
    _, lots = await _live_group(catalog, bidders=1)
    catalog.now = ROOM_OPEN - timedelta(seconds=1)
    with pytest.raises(FailedPrecondition) as caught:
        await catalog(enter_room, catalog.bidder(1), lots[0].id)
    assert caught.value.reason == "LOT_NOT_OPEN"
    assert caught.value.metadata["opens_at"] == ROOM_OPEN.isoformat()


async def test_a_timed_tender_lot_has_no_room_and_its_reservation_no_seat(catalog):
    sale, lots = await catalog.published_sale(spec=catalog.tender_sale_spec(), terms=catalog.tender_terms())
    await catalog.registered(sale, catalog.bidder(1))
    reserved = await catalog(reserve_lot, catalog.bidder(1), lots[0].id)
    catalog.now = sale.starts_at
    with pytest.raises(FailedPrecondition) as caught:
        await catalog(enter_room, catalog.bidder(1), lots[0].id)
    assert reserved.seat is None
    assert caught.value.reason == "LOT_NOT_OPEN"


async def test_reserving_after_the_start_is_too_late(catalog):
    _, lots = await _live_group(catalog, bidders=1)
    catalog.now = STARTS
    with pytest.raises(FailedPrecondition) as caught:
        await catalog(reserve_lot, catalog.bidder(1), lots[0].id)
    assert caught.value.reason == "TOO_LATE"


async def test_a_live_lot_cannot_be_reserved_but_can_be_entered(catalog):
    _, lots = await _live_group(catalog, bidders=1)
    await catalog(start_lot, catalog.ROOM_SERVICE, lots[0].id)
    with pytest.raises(FailedPrecondition) as caught:
        await catalog(reserve_lot, catalog.bidder(1), lots[0].id)
    assert caught.value.metadata["current_state"] == "live"
    assert (await catalog(enter_room, catalog.bidder(1), lots[0].id)).lot_id == lots[0].id


async def test_a_draft_lot_cannot_be_reserved(catalog):
    sale = await catalog.sale()
    lots = await catalog.lot(sale)
    with pytest.raises(NotFound):
        await catalog(reserve_lot, catalog.bidder(1), lots[0].id)


async def test_a_bidder_cannot_cancel_another_bidders_reservation(catalog):
    _, lots = await _live_group(catalog, bidders=2)
    reserved = await catalog(reserve_lot, catalog.bidder(1), lots[0].id)
    with pytest.raises(PermissionDenied) as caught:
        await catalog(cancel_reservation, catalog.bidder(2), reserved.reservation.id)
    assert caught.value.reason == "NOT_OWNER"


async def test_a_cancelled_reservation_cannot_be_cancelled_again(catalog):
    _, lots = await _live_group(catalog, bidders=1)
    reserved = await catalog(reserve_lot, catalog.bidder(1), lots[0].id)
    await catalog(cancel_reservation, catalog.bidder(1), reserved.reservation.id)
    with pytest.raises(FailedPrecondition) as caught:
        await catalog(cancel_reservation, catalog.ADMIN, reserved.reservation.id)
    assert caught.value.metadata["current_state"] == "cancelled"


async def test_cancelling_an_unknown_reservation_is_not_found(catalog):
    with pytest.raises(NotFound):
        await catalog(cancel_reservation, catalog.bidder(1), "nope")


async def test_a_bidder_lists_their_own_reservations(catalog):
    _, lots = await _live_group(catalog, bidders=2)
    mine = await catalog(reserve_lot, catalog.bidder(1), lots[0].id)
    await catalog(reserve_lot, catalog.bidder(2), lots[0].id)
    await catalog(cancel_reservation, catalog.bidder(1), mine.reservation.id)
    again = await catalog(reserve_lot, catalog.bidder(1), lots[0].id)

    active = await catalog(list_my_reservations, catalog.bidder(1), ListMyReservations())
    everything = await catalog(list_my_reservations, catalog.bidder(1), ListMyReservations(include_cancelled=True))
    assert [r.id for r in active.items] == [again.reservation.id]
    assert [r.id for r in everything.items] == [mine.reservation.id, again.reservation.id]
