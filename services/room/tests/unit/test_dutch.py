"""Dutch: the clock drops the price by fixed or seeded random steps; the first taker wins."""

from __future__ import annotations

import itertools

import pytest
from room_support import Lot, dutch, names, reason

from room.domain import engine_for, next_deadline_ms
from room.domain.events import LotSold, LotUnsold, PriceDropped


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
