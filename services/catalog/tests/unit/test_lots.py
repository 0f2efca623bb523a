"""Lots: groups of N rooms, term validation with dotted paths, running order, layout, secrets."""

import copy
import dataclasses
import random
from datetime import UTC, date, datetime

import pytest

from catalog.app.lots import (
    AddLot,
    ListLots,
    ReorderLots,
    UpdateLot,
    add_lot,
    get_lot,
    list_lots,
    remove_lot,
    reorder_lots,
    update_lot,
)
from catalog.app.rooms import start_lot
from catalog.domain.events import LotScheduled
from catalog.domain.lots import LotSpec, lay_out
from catalog.domain.states import State
from gavel_core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from gavel_core.formats import DutchParams, DutchStepMode, EnglishClose, Format, LotTerms, LuckyParams, LuckyWinningRule
from gavel_core.increments import resolve_increments
from gavel_core.money import amount_in


def fields(error: InvalidArgument) -> set[str]:
    return {violation.field for violation in error.violations}


async def test_a_product_of_quantity_n_becomes_n_lots_one_per_room(catalog):
    sale = await catalog.sale()
    lots = await catalog.lot(sale, quantity=3)

    assert [lot.room_index for lot in lots] == [0, 1, 2]
    assert {lot.room_count for lot in lots} == {3}
    assert {lot.group_id for lot in lots} == {lots[0].id}
    assert {lot.state for lot in lots} == {State.DRAFT}
    assert len({lot.terms.seed for lot in lots}) == 3  # each room draws its own seeded choices


async def test_each_lot_of_a_group_gets_the_same_estimated_start(catalog):
    sale = await catalog.sale()
    lots = await catalog.lot(sale, quantity=2)
    assert {lot.estimated_start for lot in lots} == {datetime(2030, 5, 8, 8, 0, tzinfo=UTC)}


async def test_live_lots_run_back_to_back_and_move_to_the_next_slot_when_full(catalog):
    sale = await catalog.sale(spec=catalog.live_sale_spec(("10:00", "10:30"), ("14:00", "15:00")))
    first = await catalog.lot(sale, duration_slots=2)
    second = await catalog.lot(sale, duration_slots=2)  # 10:20 + 20 min overruns 10:30
    third = await catalog.lot(sale, duration_slots=1)
    # Paris local 10:00 / 14:00 / 14:20 are 08:00 / 12:00 / 12:20 UTC.
    assert [g[0].estimated_start for g in (first, second, third)] == [
        datetime(2030, 5, 8, 8, 0, tzinfo=UTC),
        datetime(2030, 5, 8, 12, 0, tzinfo=UTC),
        datetime(2030, 5, 8, 12, 20, tzinfo=UTC),
    ]


async def test_a_lot_that_does_not_fit_has_no_estimated_start(catalog):
    sale = await catalog.sale(spec=catalog.live_sale_spec(("10:00", "10:20")))
    await catalog.lot(sale, duration_slots=2)
    late = await catalog.lot(sale)
    assert late[0].estimated_start is None


async def test_timed_tender_lots_all_start_with_the_sale(catalog):
    sale = await catalog.sale(spec=catalog.tender_sale_spec())
    lots = await catalog.lot(sale, terms=catalog.tender_terms())
    assert lots[0].estimated_start == sale.starts_at
    assert lots[0].duration_slots == 0


def fully_laid_out(sale, lots):
    """The estimated starts `lay_out` gives the whole sale, computed on copies of its lots."""
    copies = copy.deepcopy(lots)
    for lot in copies:
        lot.estimated_start = None
    lay_out(sale, copies)
    return [(lot.id, lot.estimated_start) for lot in copies]


@pytest.mark.parametrize(
    "spec",
    [
        lambda c: c.live_sale_spec(("09:00", "09:30"), ("10:00", "11:10"), ("14:00", "16:00")),
        lambda c: c.live_sale_spec(("20:00", "24:00"), time_zone="Asia/Tokyo"),
        # Paris sets its clocks back an hour that night: 02:00-03:00 happens twice.
        lambda c: c.live_sale_spec(("01:00", "04:00"), day=date(2030, 10, 27)),
        lambda c: c.tender_sale_spec(),
    ],
    ids=["three slots", "to midnight in Tokyo", "clock change day", "timed tender"],
)
async def test_adding_groups_one_by_one_lays_each_out_as_a_full_lay_out_of_the_sale_would(catalog, spec):
    sale = await catalog.sale(spec=spec(catalog))
    live = sale.kind.value == "live_session"
    draw = random.Random(7)
    for _ in range(25):  # enough to use up every slot, and then some that do not fit
        terms = catalog.english_terms() if live else catalog.tender_terms()
        await catalog.lot(sale, quantity=draw.randint(1, 3), terms=terms, duration_slots=draw.randint(1, 4) * live)
        lots = await catalog.uow.lots.list_by_sale(sale.id)
        assert [(lot.id, lot.estimated_start) for lot in lots] == fully_laid_out(sale, lots)
    assert lots[-1].estimated_start is None or not live


async def test_adding_a_group_lays_it_out_after_the_last_lot_without_loading_the_others(catalog, monkeypatch):
    sale = await catalog.sale(spec=catalog.live_sale_spec(("10:00", "10:30"), ("14:00", "15:00")))
    await catalog.lot(sale, duration_slots=2)

    async def every_lot(sale_id):
        raise AssertionError("AddLot loaded every lot of the sale")

    monkeypatch.setattr(catalog.uow.lots, "list_by_sale", every_lot)
    second = await catalog.lot(sale, quantity=2, duration_slots=2)  # 10:20 + 20 min overruns 10:30
    third = await catalog.lot(sale)
    # Paris local 14:00 / 14:20 are 12:00 / 12:20 UTC.
    assert [lot.estimated_start for lot in second] == [datetime(2030, 5, 8, 12, 0, tzinfo=UTC)] * 2
    assert [lot.position for lot in (*second, *third)] == [1, 1, 2]
    assert third[0].estimated_start == datetime(2030, 5, 8, 12, 20, tzinfo=UTC)


async def test_on_a_clock_change_day_a_lot_is_placed_by_laying_out_the_whole_sale(catalog):
    sale = await catalog.sale(spec=catalog.live_sale_spec(("01:00", "04:00"), day=date(2030, 10, 27)))
    first = await catalog.lot(sale, duration_slots=6)  # 01:00-02:00 summer time
    assert sale.estimated_starts_after(first[0].estimated_start, 6, [1]) is None  # cannot tell from the start alone
    second = await catalog.lot(sale)
    # 02:00 on the wall clock, the first time round (summer time, UTC+2).
    assert second[0].estimated_start == datetime(2030, 10, 27, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("terms", "duration_slots", "field"),
    [
        (lambda c: c.english_terms(opening_bid=-5), 0, "lot.english.opening_bid"),
        (lambda c: c.english_terms(opening_bid=10**16), 0, "lot.english.opening_bid"),
        (lambda c: c.english_terms(currency="XYZ"), 0, "lot.currency"),
        (lambda c: c.english_terms(buy_now=5_000), 0, "lot.english.buy_now"),
        (lambda c: c.english_terms(close=EnglishClose.ROUNDS), 0, "lot.english.rounds"),
        (lambda c: dataclasses.replace(c.english_terms(), buyer_premium_bp=10_001), 0, "lot.buyer_premium_bp"),
        (lambda c: dataclasses.replace(c.english_terms(), tax_bp=-1), 0, "lot.tax_bp"),
        (lambda c: c.english_terms(), 37, "lot.duration_slots"),
        (lambda c: c.english_terms(), -1, "lot.duration_slots"),
        (lambda c: c.tender_terms(), 0, "lot.format"),
        (
            lambda c: LotTerms(
                "EUR", Format.DUTCH, DutchParams(start_price=100, floor_price=200, tick_ms=1_000, step=5)
            ),
            0,
            "lot.dutch.floor_price",
        ),
        (
            lambda c: LotTerms("EUR", Format.LUCKY, LuckyParams(("only",), price=100, window_ms=1_000)),
            0,
            "lot.lucky.options",
        ),
        (
            lambda c: LotTerms(
                "EUR",
                Format.DUTCH,
                DutchParams(50_000, 10_000, 1_000, DutchStepMode.RANDOM, steps=(10_000, 20_000, 15_000)),
            ),
            0,
            "lot.dutch.steps",
        ),
        (
            lambda c: LotTerms(
                "EUR", Format.DUTCH, DutchParams(50_000, 10_000, 1_000, DutchStepMode.RANDOM, steps=(50_000, -1))
            ),
            0,
            "lot.dutch.steps[1]",
        ),
        (lambda c: c.english_terms(rounds_beat_by_increment=True), 0, "lot.english.rounds_beat_by_increment"),
        (lambda c: LotTerms("EUR", Format.ENGLISH, c.tender_terms().params), 0, "lot.params"),
    ],
)
async def test_bad_lot_terms_name_the_request_field(catalog, terms, duration_slots, field):
    sale = await catalog.sale()
    product = await catalog.product()
    with pytest.raises(InvalidArgument) as caught:
        await catalog(add_lot, catalog.SELLER, AddLot(sale.id, LotSpec(product.id, terms(catalog), duration_slots)))
    assert field in fields(caught.value)


async def test_a_timed_tender_takes_only_tender_lots_without_slots(catalog):
    sale = await catalog.sale(spec=catalog.tender_sale_spec())
    product = await catalog.product()
    with pytest.raises(InvalidArgument) as caught:
        await catalog(add_lot, catalog.SELLER, AddLot(sale.id, LotSpec(product.id, catalog.english_terms(), 3)))
    assert fields(caught.value) == {"lot.format", "lot.duration_slots"}


async def test_adding_to_an_unknown_sale_or_product_is_not_found(catalog):
    sale = await catalog.sale()
    product = await catalog.product()
    with pytest.raises(NotFound):
        await catalog(add_lot, catalog.SELLER, AddLot("nope", LotSpec(product.id, catalog.english_terms())))
    with pytest.raises(NotFound):
        await catalog(add_lot, catalog.SELLER, AddLot(sale.id, LotSpec("nope", catalog.english_terms())))


async def test_empty_ids_are_invalid(catalog):
    with pytest.raises(InvalidArgument) as caught:
        await catalog(add_lot, catalog.SELLER, AddLot("", LotSpec("", catalog.english_terms())))
    assert fields(caught.value) == {"sale_id"}


async def test_a_seller_cannot_add_another_sellers_product(catalog):
    sale = await catalog.sale()
    product = await catalog.product(catalog.OTHER_SELLER)
    with pytest.raises(PermissionDenied) as caught:
        await catalog(add_lot, catalog.SELLER, AddLot(sale.id, LotSpec(product.id, catalog.english_terms())))
    assert caught.value.reason == "NOT_OWNER"


async def test_an_admin_may_add_any_sellers_product_to_any_sale(catalog):
    sale = await catalog.sale()
    product = await catalog.product(catalog.OTHER_SELLER)
    [view] = await catalog(add_lot, catalog.ADMIN, AddLot(sale.id, LotSpec(product.id, catalog.english_terms())))
    assert view.lot.seller_id == catalog.OTHER_SELLER.subject


async def test_a_product_is_offered_in_one_open_group_at_a_time(catalog):
    first = await catalog.sale()
    second = await catalog.sale()
    product = await catalog.product()
    await catalog(add_lot, catalog.SELLER, AddLot(first.id, LotSpec(product.id, catalog.english_terms())))
    with pytest.raises(AlreadyExists):
        await catalog(add_lot, catalog.SELLER, AddLot(second.id, LotSpec(product.id, catalog.english_terms())))


async def test_a_lot_added_to_a_published_sale_is_published_at_once(catalog):
    sale, first = await catalog.published_sale()
    product = await catalog.product(title="Pine chest")
    views = await catalog(add_lot, catalog.SELLER, AddLot(sale.id, LotSpec(product.id, catalog.english_terms())))
    [added] = [view.lot for view in views]
    assert (added.state, added.position) == (State.SCHEDULED, first[0].position + 1)
    [scheduled] = [e for e in catalog.events_of(LotScheduled) if e.lot_id == added.id]
    assert scheduled.estimated_start == added.estimated_start is not None


async def test_a_lot_that_does_not_fit_a_published_session_is_refused(catalog):
    sale, _ = await catalog.published_sale(spec=catalog.live_sale_spec(("10:00", "10:10")))
    product = await catalog.product(title="Pine chest")
    with pytest.raises(InvalidArgument) as caught:
        await catalog(add_lot, catalog.SELLER, AddLot(sale.id, LotSpec(product.id, catalog.english_terms())))
    assert {v.field for v in caught.value.violations} == {"lot.duration_slots"}


async def test_lots_cannot_be_added_to_a_live_sale(catalog):
    sale, lots = await catalog.published_sale()
    await catalog(start_lot, catalog.ROOM_SERVICE, lots[0].id)
    product = await catalog.product(title="Pine chest")
    with pytest.raises(FailedPrecondition) as caught:
        await catalog(add_lot, catalog.SELLER, AddLot(sale.id, LotSpec(product.id, catalog.english_terms())))
    assert caught.value.metadata["current_state"] == "live"


async def test_updating_a_lot_updates_its_whole_group_and_keeps_each_seed(catalog):
    sale = await catalog.sale()
    lots = await catalog.lot(sale, quantity=2)
    seeds = [lot.terms.seed for lot in lots]
    views = await catalog(
        update_lot, catalog.SELLER, UpdateLot(lots[1].id, catalog.english_terms(opening_bid=20_000), duration_slots=3)
    )
    assert [v.lot.terms.params.opening_bid for v in views] == [20_000, 20_000]
    assert [v.lot.duration_slots for v in views] == [3, 3]
    assert [v.lot.terms.seed for v in views] == seeds


async def test_a_seller_cannot_update_a_lot_in_another_sellers_sale(catalog):
    _, lots = await catalog.published_sale()
    with pytest.raises(PermissionDenied) as caught:
        await catalog(update_lot, catalog.OTHER_SELLER, UpdateLot(lots[0].id, catalog.english_terms()))
    assert caught.value.reason == "NOT_OWNER"


async def test_the_terms_of_a_published_lot_are_frozen(catalog):
    _, lots = await catalog.published_sale()
    with pytest.raises(FailedPrecondition) as caught:
        await catalog(update_lot, catalog.SELLER, UpdateLot(lots[0].id, catalog.english_terms(opening_bid=99_000)))
    assert (caught.value.reason, caught.value.metadata["current_state"]) == ("TERMS_FROZEN", "scheduled")
    assert lots[0].terms.params.opening_bid == 10_000


async def test_removing_a_lot_removes_its_group_and_closes_the_gap(catalog):
    sale = await catalog.sale()
    first = await catalog.lot(sale)
    middle = await catalog.lot(sale, quantity=2)
    last = await catalog.lot(sale)
    await catalog(remove_lot, catalog.SELLER, middle[1].id)

    remaining = await catalog.uow.lots.list_by_sale(sale.id)
    assert [lot.id for lot in remaining] == [first[0].id, last[0].id]
    assert [lot.position for lot in remaining] == [0, 1]
    assert last[0].estimated_start == datetime(2030, 5, 8, 8, 10, tzinfo=UTC)


async def test_reordering_sets_the_running_order_and_the_start_times(catalog):
    sale = await catalog.sale()
    a = await catalog.lot(sale, title="A")
    b = await catalog.lot(sale, title="B", quantity=2)
    c = await catalog.lot(sale, title="C")
    views = await catalog(reorder_lots, catalog.SELLER, ReorderLots(sale.id, (c[0].id, a[0].id, b[0].id)))

    assert [v.lot.group_id for v in views] == [c[0].id, a[0].id, b[0].id, b[0].id]
    assert [v.lot.position for v in views] == [0, 1, 2, 2]
    assert c[0].estimated_start == datetime(2030, 5, 8, 8, 0, tzinfo=UTC)
    assert b[1].estimated_start == datetime(2030, 5, 8, 8, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    "order",
    [
        lambda a, b: (a,),  # one missing
        lambda a, b: (a, b, "stranger"),  # one unknown
        lambda a, b: (a, a, b),  # repeated
    ],
)
async def test_a_reorder_must_name_every_group_exactly_once(catalog, order):
    sale = await catalog.sale()
    a = await catalog.lot(sale)
    b = await catalog.lot(sale)
    with pytest.raises(InvalidArgument) as caught:
        await catalog(reorder_lots, catalog.SELLER, ReorderLots(sale.id, order(a[0].id, b[0].id)))
    assert fields(caught.value) == {"lot_ids"}


async def test_the_public_does_not_see_a_lots_secrets(catalog):
    terms = catalog.english_terms(reserve=50_000)
    _, lots = await catalog.published_sale(terms=terms)

    public = await catalog(get_lot, catalog.PUBLIC, lots[0].id)
    seller = await catalog(get_lot, catalog.SELLER, lots[0].id)
    service = await catalog(get_lot, catalog.ROOM_SERVICE, lots[0].id)

    assert (public.lot.terms.params.reserve, public.lot.terms.seed, public.has_reserve) == (None, 0, True)
    assert (seller.lot.terms.params.reserve, seller.lot.terms.seed) == (50_000, lots[0].terms.seed)
    assert service.secrets_shown
    assert lots[0].terms.params.reserve == 50_000  # hiding copies; the stored lot keeps its reserve


@pytest.mark.parametrize(
    ("rule", "winning_option", "field", "message"),
    [
        (LuckyWinningRule.FIXED, 2, "lot.lucky.winning_rule", "fixed is retired: the room draws the winning option"),
        (LuckyWinningRule.SEEDED, 0, "lot.lucky.winning_rule", "seeded is retired"),
        (LuckyWinningRule.DRAWN, 2, "lot.lucky.winning_option", "a seller may not choose it"),
    ],
)
async def test_a_seller_cannot_choose_a_lucky_lots_winning_option(catalog, rule, winning_option, field, message):
    sale = await catalog.sale()
    product = await catalog.product()
    spec = LotSpec(product.id, catalog.lucky_terms(rule, winning_option))
    with pytest.raises(InvalidArgument) as caught:
        await catalog(add_lot, catalog.SELLER, AddLot(sale.id, spec))
    [violation] = caught.value.violations
    assert (violation.field, message in violation.description) == (field, True)


async def test_a_lucky_lot_is_stored_without_a_winning_option_the_room_draws_it(catalog):
    _, lots = await catalog.published_sale(terms=catalog.lucky_terms())
    seller = await catalog(get_lot, catalog.SELLER, lots[0].id)
    assert seller.lot.terms.params.winning_rule is LuckyWinningRule.DRAWN
    assert seller.lot.terms.params.winning_option == 0


async def test_draft_lots_are_not_found_by_outsiders(catalog):
    sale = await catalog.sale()
    lots = await catalog.lot(sale)
    with pytest.raises(NotFound):
        await catalog(get_lot, catalog.bidder(1), lots[0].id)


async def test_lots_are_listed_in_running_order_and_filtered(catalog):
    sale, _ = await catalog.published_sale(quantity=2)
    other = await catalog.sale()
    await catalog.lot(other, terms=catalog.dutch_terms())

    public = await catalog(list_lots, catalog.PUBLIC, ListLots(sale_id=sale.id))
    dutch = await catalog(list_lots, catalog.SELLER, ListLots(format=Format.DUTCH))
    scheduled = await catalog(list_lots, catalog.ADMIN, ListLots(states=frozenset({State.SCHEDULED}), page_size=1))
    more = await catalog(list_lots, catalog.ADMIN, ListLots(page_size=1, page_token=scheduled.next_page_token))

    assert [v.lot.room_index for v in public.items] == [0, 1]
    assert [v.lot.terms.format for v in dutch.items] == [Format.DUTCH]
    assert (scheduled.total_size, scheduled.items[0].lot.room_index, more.items[0].lot.room_index) == (2, 0, 1)


def test_increments_come_from_explicit_tiers_or_a_named_preset_not_both():
    assert resolve_increments([[0, 100], [1_000, 200]], "", "lot.english").step_at(1_500) == 200
    assert resolve_increments([], "flat_100", "lot.english").step_at(7) == 100
    with pytest.raises(InvalidArgument) as both:
        resolve_increments([[0, 100]], "flat_100", "lot.english")
    with pytest.raises(InvalidArgument) as unknown:
        resolve_increments([], "lavish", "lot.english")
    with pytest.raises(InvalidArgument) as unordered:
        resolve_increments([[0, 100], [0, 200]], "", "lot.english")
    assert fields(both.value) == fields(unknown.value) == {"lot.english.increment_preset"}
    assert fields(unordered.value) == {"lot.english.increments[1].from_amount"}


def test_a_wire_amount_must_be_in_the_lots_currency():
    assert amount_in("EUR", 500, "", "lot.english.opening_bid") == 500
    assert amount_in("EUR", 500, "EUR", "lot.english.opening_bid") == 500
    with pytest.raises(InvalidArgument) as caught:
        amount_in("EUR", 500, "USD", "lot.english.opening_bid")
    assert fields(caught.value) == {"lot.english.opening_bid.currency"}
