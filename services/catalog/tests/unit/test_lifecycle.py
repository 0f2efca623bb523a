"""Publishing a sale and the lot life cycle: draft → scheduled → live → closed / cancelled."""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from catalog.app.lots import ListLots, list_lots
from catalog.app.rooms import CloseLot, close_lot, start_lot
from catalog.app.sales import UpdateSale, publish_sale, update_sale
from catalog.domain.events import LotOutcomeRecorded, LotScheduled, LotsRetimed, LotStarting, SalePublished
from catalog.domain.lots import LotOutcome, LotResult
from catalog.domain.states import State
from gavel_core.auth import Principal, Role
from gavel_core.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied


def fields(error: InvalidArgument) -> set[str]:
    return {violation.field for violation in error.violations}


async def test_publishing_schedules_the_sale_and_every_lot_and_announces_them(catalog):
    sale = await catalog.sale()
    lots = await catalog.lot(sale, quantity=2)
    published = await catalog(publish_sale, catalog.SELLER, sale.id)

    assert published.sale.state is State.SCHEDULED
    assert published.sale.published_at == catalog.NOW
    assert {view.lot.state for view in published.lots} == {State.SCHEDULED}
    [announced] = catalog.events_of(SalePublished)
    assert (announced.sale_id, announced.lot_ids, announced.subject) == (
        sale.id,
        (lots[0].id, lots[1].id),
        f"gavel.catalog.sale_published.{sale.id}",
    )
    scheduled = catalog.events_of(LotScheduled)
    assert [(e.lot_id, e.room_index, e.room_count) for e in scheduled] == [(lots[0].id, 0, 2), (lots[1].id, 1, 2)]
    assert scheduled[0].terms.seed == lots[0].terms.seed  # the engines need the secret seed
    assert scheduled[0].estimated_start == datetime(2030, 5, 8, 8, 0, tzinfo=UTC)


async def test_a_sale_without_lots_cannot_be_published(catalog):
    sale = await catalog.sale()
    with pytest.raises(InvalidArgument) as caught:
        await catalog(publish_sale, catalog.SELLER, sale.id)
    assert fields(caught.value) == {"sale.lots"}
    assert sale.state is State.DRAFT
    assert catalog.events == []


async def test_publishing_reports_every_lot_that_does_not_fit_the_time_slots(catalog):
    sale = await catalog.sale(spec=catalog.live_sale_spec(("10:00", "10:30")))
    await catalog.lot(sale, duration_slots=2)
    await catalog.lot(sale, duration_slots=2)
    await catalog.lot(sale)
    with pytest.raises(InvalidArgument) as caught:
        await catalog(publish_sale, catalog.SELLER, sale.id)
    assert fields(caught.value) == {"sale.lots[1].duration_slots", "sale.lots[2].duration_slots"}


async def test_a_sale_whose_start_has_passed_cannot_be_published(catalog):
    sale = await catalog.sale()
    await catalog.lot(sale)
    catalog.now = datetime(2030, 5, 8, 9, 0, tzinfo=UTC)
    with pytest.raises(InvalidArgument) as caught:
        await catalog(publish_sale, catalog.SELLER, sale.id)
    assert fields(caught.value) == {"sale.live_session.date"}


async def test_a_sale_that_changed_kind_reports_its_lots_of_the_wrong_format(catalog):
    sale = await catalog.sale()
    await catalog.lot(sale)
    await catalog(update_sale, catalog.SELLER, UpdateSale(sale.id, catalog.tender_sale_spec()))
    with pytest.raises(InvalidArgument) as caught:
        await catalog(publish_sale, catalog.SELLER, sale.id)
    assert fields(caught.value) == {"sale.lots[0].format", "sale.lots[0].duration_slots"}


async def test_a_sale_is_published_once(catalog):
    sale, _ = await catalog.published_sale()
    with pytest.raises(FailedPrecondition) as caught:
        await catalog(publish_sale, catalog.SELLER, sale.id)
    assert (caught.value.reason, caught.value.metadata["current_state"]) == ("INVALID_STATE", "scheduled")


async def test_only_the_owner_or_an_admin_publishes(catalog):
    sale = await catalog.sale()
    await catalog.lot(sale)
    with pytest.raises(NotFound):
        await catalog(publish_sale, catalog.OTHER_SELLER, sale.id)
    published = await catalog(publish_sale, catalog.ADMIN, sale.id)
    assert published.sale.state is State.SCHEDULED


async def test_a_timed_tender_is_published_with_its_tender_lots(catalog):
    sale, lots = await catalog.published_sale(spec=catalog.tender_sale_spec(), terms=catalog.tender_terms())
    assert (sale.state, lots[0].state, lots[0].estimated_start) == (State.SCHEDULED, State.SCHEDULED, sale.starts_at)


# -- starting and closing -----------------------------------------------------------------------


async def test_starting_a_lot_makes_it_and_its_sale_live(catalog):
    sale, lots = await catalog.published_sale()
    catalog.now = datetime(2030, 5, 8, 8, 0, tzinfo=UTC)
    view = await catalog(start_lot, catalog.ROOM_SERVICE, lots[0].id)

    assert (view.lot.state, view.lot.started_at, sale.state) == (State.LIVE, catalog.now, State.LIVE)
    [event] = catalog.events_of(LotStarting)
    assert (event.lot_id, event.group_id, event.started_at) == (lots[0].id, lots[0].group_id, catalog.now)
    assert event.subject == f"gavel.catalog.lot_starting.{lots[0].id}"


async def test_a_draft_lot_cannot_be_started(catalog):
    sale = await catalog.sale()
    lots = await catalog.lot(sale)
    with pytest.raises(FailedPrecondition) as caught:
        await catalog(start_lot, catalog.ADMIN, lots[0].id)
    assert caught.value.metadata["current_state"] == "draft"


async def test_a_live_lot_cannot_be_started_again(catalog):
    _, lots = await catalog.published_sale()
    await catalog(start_lot, catalog.ROOM_SERVICE, lots[0].id)
    with pytest.raises(FailedPrecondition) as caught:
        await catalog(start_lot, catalog.ROOM_SERVICE, lots[0].id)
    assert caught.value.metadata["current_state"] == "live"


@pytest.mark.parametrize("who", ["SELLER", "PUBLIC"])
async def test_only_services_criers_and_admins_start_lots(catalog, who):
    _, lots = await catalog.published_sale()
    with pytest.raises(PermissionDenied):
        await catalog(start_lot, getattr(catalog, who), lots[0].id)


async def test_a_sold_lot_closes_and_the_last_one_closes_the_sale(catalog):
    sale, lots = await catalog.published_sale(quantity=2)
    for lot in lots:
        await catalog(start_lot, catalog.ROOM_SERVICE, lot.id)
    catalog.now += timedelta(minutes=5)
    sold = LotResult(LotOutcome.SOLD, winner_id="bidder-7", hammer_price=42_000, room_sequence=9)
    await catalog(close_lot, catalog.ROOM_SERVICE, CloseLot(lots[0].id, sold))
    assert (lots[0].state, lots[0].winner_id, lots[0].hammer_price, sale.state) == (
        State.CLOSED,
        "bidder-7",
        42_000,
        State.LIVE,
    )
    await catalog(close_lot, catalog.ROOM_SERVICE, CloseLot(lots[1].id, LotResult(LotOutcome.PASSED, room_sequence=4)))

    assert sale.state is State.CLOSED
    first, second = catalog.events_of(LotOutcomeRecorded)
    assert (first.outcome, first.hammer_price, first.currency, first.sale_closed) == (
        LotOutcome.SOLD,
        42_000,
        "EUR",
        False,
    )
    assert (second.outcome, second.sale_closed, second.closed_at) == (LotOutcome.PASSED, True, catalog.now)
    assert (first.room_sequence, second.room_sequence) == (9, 4)


async def test_a_withdrawn_live_lot_ends_cancelled(catalog):
    _, lots = await catalog.published_sale()
    await catalog(start_lot, catalog.ROOM_SERVICE, lots[0].id)
    view = await catalog(
        close_lot, catalog.ROOM_SERVICE, CloseLot(lots[0].id, LotResult(LotOutcome.WITHDRAWN, room_sequence=3))
    )
    assert view.lot.state is State.CANCELLED


async def test_a_lot_that_is_not_live_cannot_be_closed(catalog):
    _, lots = await catalog.published_sale()
    with pytest.raises(FailedPrecondition) as caught:
        await catalog(close_lot, catalog.ROOM_SERVICE, CloseLot(lots[0].id, LotResult(LotOutcome.PASSED)))
    assert caught.value.metadata["current_state"] == "scheduled"


async def test_a_closed_lot_answers_the_same_report_again_and_refuses_another(catalog):
    _, lots = await catalog.published_sale()
    await catalog(start_lot, catalog.ROOM_SERVICE, lots[0].id)
    passed = LotResult(LotOutcome.PASSED, room_sequence=5)
    await catalog(close_lot, catalog.ROOM_SERVICE, CloseLot(lots[0].id, passed))
    again = await catalog(close_lot, catalog.ROOM_SERVICE, CloseLot(lots[0].id, passed))
    assert again.lot.state is State.CLOSED
    assert len(catalog.events_of(LotOutcomeRecorded)) == 1
    sold = LotResult(LotOutcome.SOLD, winner_id="bidder-1", hammer_price=100, room_sequence=5)
    with pytest.raises(FailedPrecondition) as caught:
        await catalog(close_lot, catalog.ROOM_SERVICE, CloseLot(lots[0].id, sold))
    assert "closed" in caught.value.message


@pytest.mark.parametrize("who", ["ADMIN", "SALE_ADMIN", "CRIER", "SELLER"])
async def test_people_cannot_record_an_outcome_only_the_room_can(catalog, who):
    _, lots = await catalog.published_sale()
    await catalog(start_lot, catalog.ROOM_SERVICE, lots[0].id)
    sold = LotResult(LotOutcome.SOLD, winner_id="bidder-1", hammer_price=1, room_sequence=2)
    with pytest.raises(PermissionDenied) as caught:
        await catalog(close_lot, getattr(catalog, who), CloseLot(lots[0].id, sold))
    assert caught.value.reason == "NOT_ROOM"
    assert lots[0].state is State.LIVE


async def test_another_service_than_the_room_cannot_record_a_live_lot_outcome(catalog):
    _, lots = await catalog.published_sale()
    await catalog(start_lot, catalog.ROOM_SERVICE, lots[0].id)
    tender = Principal("svc:tender", frozenset({Role.SERVICE}))
    with pytest.raises(PermissionDenied) as caught:
        await catalog(close_lot, tender, CloseLot(lots[0].id, LotResult(LotOutcome.PASSED, room_sequence=2)))
    assert caught.value.reason == "NOT_ROOM"


async def test_an_outcome_without_the_room_sequence_is_refused(catalog):
    _, lots = await catalog.published_sale()
    await catalog(start_lot, catalog.ROOM_SERVICE, lots[0].id)
    with pytest.raises(InvalidArgument) as caught:
        await catalog(close_lot, catalog.ROOM_SERVICE, CloseLot(lots[0].id, LotResult(LotOutcome.PASSED)))
    assert fields(caught.value) == {"room_sequence"}


@pytest.mark.parametrize(
    ("result", "bad"),
    [
        (LotResult(LotOutcome.SOLD, hammer_price=100), {"winner_id"}),
        (LotResult(LotOutcome.SOLD, winner_id="bidder-1"), {"hammer_price"}),
        (LotResult(LotOutcome.SOLD, winner_id="bidder-1", hammer_price=-1), {"hammer_price.amount_minor"}),
        (LotResult(LotOutcome.SOLD, winner_id="bidder-1", hammer_price=10**16), {"hammer_price.amount_minor"}),
        (LotResult(LotOutcome.SOLD, winner_id="seller-1", hammer_price=100), {"winner_id"}),
        (LotResult(LotOutcome.SOLD, winner_id="bidder-1", hammer_price=100, currency="USD"), {"hammer_price.currency"}),
        (LotResult(LotOutcome.PASSED, winner_id="bidder-1", hammer_price=100), {"winner_id", "hammer_price"}),
        (LotResult(LotOutcome.PASSED, closed_at=datetime(2030, 5, 6, 7, 0, tzinfo=UTC)), {"closed_at"}),
        (LotResult(LotOutcome.PASSED, closed_at=datetime(2030, 5, 6, 9, 0, tzinfo=UTC)), {"closed_at"}),
    ],
)
async def test_a_lot_result_is_checked(catalog, result, bad):
    _, lots = await catalog.published_sale()
    await catalog(start_lot, catalog.ROOM_SERVICE, lots[0].id)
    with pytest.raises(InvalidArgument) as caught:
        await catalog(
            close_lot, catalog.ROOM_SERVICE, CloseLot(lots[0].id, dataclasses.replace(result, room_sequence=7))
        )
    assert fields(caught.value) == bad
    assert lots[0].state is State.LIVE


async def test_live_and_closed_lots_are_listed_by_state(catalog):
    _, lots = await catalog.published_sale(quantity=2)
    await catalog(start_lot, catalog.ROOM_SERVICE, lots[1].id)
    live = await catalog(list_lots, catalog.PUBLIC, ListLots(states=frozenset({State.LIVE})))
    assert [view.lot.id for view in live.items] == [lots[1].id]


async def test_a_live_lot_starting_late_moves_the_later_groups_back_as_far_as_they_must(catalog):
    sale = await catalog.sale(spec=catalog.live_sale_spec(("10:00", "11:00"), ("14:00", "16:00")))
    groups = [(await catalog.lot(sale, duration_slots=2, title=f"Lot {n}"))[0] for n in range(4)]
    await catalog(publish_sale, catalog.SELLER, sale.id)
    paris = [lot.estimated_start for lot in groups]  # 10:00, 10:20, 10:40, 14:00 in Paris (UTC+2)
    assert [start.strftime("%H:%M") for start in paris] == ["08:00", "08:20", "08:40", "12:00"]

    catalog.now = paris[0] + timedelta(seconds=30)  # a scheduler round late: not a slip
    await catalog(start_lot, catalog.ROOM_SERVICE, groups[0].id)
    assert catalog.events_of(LotsRetimed) == []

    catalog.now = paris[1] + timedelta(minutes=15)  # the second lot starts 15 minutes late
    await catalog(start_lot, catalog.ROOM_SERVICE, groups[1].id)
    [event] = catalog.events_of(LotsRetimed)
    assert event.subject == f"gavel.catalog.lots_retimed.{sale.id}"
    assert event.started_lot_id == groups[1].id
    assert [(g.group_id, g.previous_start, g.estimated_start) for g in event.groups] == [
        (groups[2].group_id, paris[2], paris[2] + timedelta(minutes=15)),  # 10:55, after the late lot's 20 minutes
    ]  # the 14:00 lot keeps its time: the break absorbs the delay
    assert groups[2].estimated_start == paris[2] + timedelta(minutes=15)
    assert groups[3].estimated_start == paris[3]


def test_lots_retimed_goes_on_the_wire_with_every_moved_group():
    from catalog.adapters.mapping import event_message
    from catalog.domain.retiming import Retimed

    before, after = datetime(2030, 5, 8, 8, 40, tzinfo=UTC), datetime(2030, 5, 8, 8, 55, tzinfo=UTC)
    event = LotsRetimed(
        event_id="e1",
        occurred_at=after,
        sale_id="s1",
        started_lot_id="l2",
        groups=(Retimed("g3", ("l3", "l4"), before, after),),
    )
    message = event_message(event)
    assert message.DESCRIPTOR.full_name == "gavel.events.v1.LotsRetimed"
    [group] = message.groups
    assert (group.group_id, list(group.lot_ids)) == ("g3", ["l3", "l4"])
    assert group.estimated_start.ToDatetime(tzinfo=UTC) == after
