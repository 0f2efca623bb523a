"""Dutch: the clock drops the price by fixed steps or by random steps (the seller's, or generated from
the seed) in an order drawn from the seed; the first taker wins; the floor ends the lot unsold."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from room_support import Lot, dutch, names, reason

from gavel_core.errors import InvalidArgument
from gavel_core.formats import DutchParams
from room.domain import engine_for, next_deadline_ms
from room.domain.events import Event, LotSold, LotUnsold, PriceDropped


def test_the_price_drops_one_fixed_step_per_tick() -> None:
    lot = Lot(dutch(start=10_000, floor=5_000, step=1_000, tick_ms=1_000))
    lot.open(0)
    assert lot.price == 10_000
    assert lot.tick(1_000) == [PriceDropped("lot-1", 1_000, 9_000, 1, 2_000)]
    assert [event.price for event in lot.tick(3_500)] == [8_000, 7_000]
    assert next_deadline_ms(lot.state) == 4_000


def test_the_first_taker_wins_at_the_current_price() -> None:
    lot = Lot(dutch())
    lot.open(0)
    lot.tick(2_000)
    events = lot.bid("alice", 9_500, 2_100)
    assert names(events) == ["BidAccepted", "LotSold"]
    assert events[-1] == LotSold("lot-1", 2_100, "alice", 8_000, "online", None, 0)
    assert reason(lot.refused_bid("bob", 9_000, 2_200)) == "LOT_CLOSED"


def test_a_taker_whose_maximum_is_below_the_price_is_refused() -> None:
    lot = Lot(dutch())
    lot.open(0)
    error = lot.refused_bid("alice", 9_999, 10)
    assert error.metadata == {"min_amount_minor": "10000"}  # type: ignore[attr-defined]


def test_a_bid_after_a_missed_tick_is_taken_at_the_price_of_that_moment() -> None:
    lot = Lot(dutch())
    lot.open(0)
    events = lot.bid("alice", 10_000, 2_500)
    assert names(events) == ["PriceDropped", "PriceDropped", "BidAccepted", "LotSold"]
    assert events[-1].hammer_price == 8_000


def test_reaching_the_floor_ends_the_lot_unsold() -> None:
    lot = Lot(dutch(start=10_000, floor=5_000, step=2_000))
    lot.open(0)
    events = lot.tick(10_000)
    assert [getattr(event, "price", None) for event in events] == [8_000, 6_000, None]
    assert events[-1] == LotUnsold("lot-1", 3_000, "FLOOR_REACHED")


def random_drops(seed: int, steps: int = 7) -> list[int]:
    lot = Lot(dutch(start=10_000, floor=5_000, random_steps=steps, seed=seed))
    lot.open(0)
    events = lot.tick(100_000)
    prices = [10_000] + [event.price for event in events if isinstance(event, PriceDropped)] + [5_000]
    assert events[-1] == LotUnsold("lot-1", steps * 1_000, "FLOOR_REACHED")
    return [a - b for a, b in itertools.pairwise(prices)]


def test_random_steps_split_the_whole_drop_into_positive_steps() -> None:
    drops = random_drops(seed=42)
    assert len(drops) == 7
    assert sum(drops) == 5_000
    assert all(drop > 0 for drop in drops)


def test_random_steps_are_reproducible_from_the_lot_seed() -> None:
    assert random_drops(seed=42) == random_drops(seed=42)
    assert random_drops(seed=42) != random_drops(seed=43)


@pytest.mark.parametrize("steps", [1, 5_000])
def test_random_steps_at_the_extremes_are_one_drop_or_all_single_units(steps: int) -> None:
    engine = engine_for(dutch(start=10_000, floor=5_000, random_steps=steps))
    assert set(engine.steps) == ({5_000} if steps == 1 else {1})  # type: ignore[attr-defined]


# -- the seller's random steps (the specification: the start price as a sum of steps) -----------------

SELLER_STEPS = (1_000, 1_000, 1_000, 2_000, 2_000, 3_000)  # adds up to the start price, 10,000


def supplied(seed: int, steps: tuple[int, ...] = SELLER_STEPS, floor: int = 0) -> tuple[list[int], list[Event]]:
    """The drops the clock shows until the floor, and the events."""
    lot = Lot(dutch(start=10_000, floor=floor, steps=steps, seed=seed))
    lot.open(0)
    events = lot.tick(100_000)
    prices = [10_000] + [event.price for event in events if isinstance(event, PriceDropped)]
    return [a - b for a, b in itertools.pairwise(prices)], events


def test_the_sellers_steps_are_each_taken_once_in_an_order_drawn_from_the_seed() -> None:
    engine = engine_for(dutch(start=10_000, floor=0, steps=SELLER_STEPS, seed=42))
    order = engine.steps  # type: ignore[attr-defined]
    assert sorted(order) == sorted(SELLER_STEPS)
    drops, events = supplied(seed=42)
    assert drops == list(order[:-1])  # the last step would reach 0, the floor: the lot ends there
    assert events[-1] == LotUnsold("lot-1", len(SELLER_STEPS) * 1_000, "FLOOR_REACHED")
    assert supplied(seed=42)[0] == drops
    assert len({tuple(supplied(seed)[0]) for seed in range(20)}) > 1


def test_the_order_of_the_sellers_list_plays_no_part_only_the_seed() -> None:
    assert supplied(seed=5, steps=SELLER_STEPS)[0] == supplied(seed=5, steps=SELLER_STEPS[::-1])[0]


@pytest.mark.parametrize("seed", range(8))
def test_the_descent_through_the_sellers_steps_stops_at_the_floor(seed: int) -> None:
    engine = engine_for(dutch(start=10_000, floor=4_000, steps=SELLER_STEPS, seed=seed))
    drops, events = supplied(seed, floor=4_000)
    shown = 10_000 - sum(drops)
    assert shown > 4_000  # every price shown is above the floor
    assert shown - engine.steps[len(drops)] <= 4_000  # type: ignore[attr-defined]  # the next one is not
    assert events[-1].reason == "FLOOR_REACHED"


@pytest.mark.parametrize(
    ("steps", "random_steps", "field", "message"),
    [
        ((1_000, 2_000, 3_000), 0, "lot.dutch.steps", "must add up to the start price 10000; they add up to 6000"),
        ((5_000, 5_001), 0, "lot.dutch.steps", "they add up to 10001"),
        ((10_000,), 0, "lot.dutch.steps", "give 2 to 1000 steps"),
        ((1,) * 10_000, 0, "lot.dutch.steps", "give 2 to 1000 steps"),
        ((5_000, 0, 5_000), 0, "lot.dutch.steps[1]", "positive"),
        ((5_000, 5_000), 3, "lot.dutch.random_steps", "either steps or random_steps"),
    ],
)
def test_a_step_list_that_does_not_compose_the_start_price_is_refused_with_the_field(
    steps: tuple[int, ...], random_steps: int, field: str, message: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        engine_for(dutch(start=10_000, floor=4_000, steps=steps, random_steps=random_steps))
    [violation] = caught.value.violations
    assert violation.field == field
    assert message in violation.description


def test_a_fixed_step_lot_takes_no_step_list() -> None:
    terms = dutch(step=1_000)
    assert isinstance(terms.params, DutchParams)
    with_steps = dataclasses.replace(terms, params=dataclasses.replace(terms.params, steps=(5_000, 5_000)))
    with pytest.raises(InvalidArgument) as caught:
        engine_for(with_steps)
    assert caught.value.violations[0].field == "lot.dutch.steps"
