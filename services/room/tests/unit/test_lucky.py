"""Lucky pick: the first to pick the winning option in a window wins at the fixed price."""

from __future__ import annotations

import pytest
from room_support import Lot, lucky, names, reason

from gavel_core.errors import InvalidArgument
from room.domain import PickOption, engine_for
from room.domain.events import LotSold, LotUnsold, LuckyWindowOpened, OptionPicked


def open_lucky(**kwargs: object) -> Lot:
    lot = Lot(lucky(**kwargs))  # type: ignore[arg-type]
    lot.open(0)
    return lot


def test_opening_starts_the_first_window() -> None:
    lot = open_lucky()
    assert lot.events[-1] == LuckyWindowOpened("lot-1", 0, 1, 1, 10_000)


def test_the_first_to_pick_the_winning_option_wins_at_the_fixed_price() -> None:
    lot = open_lucky(winning=1)
    assert lot.do(PickOption("p1", "alice", 0), 10) == [OptionPicked("lot-1", 10, "p1", "alice", 0, False)]
    events = lot.do(PickOption("p2", "bob", 1), 20)
    assert events[-1] == LotSold("lot-1", 20, "bob", 2_000, "online", None, 0)
    assert reason(lot.refused(PickOption("p3", "carol", 1), 30)) == "LOT_CLOSED"


def test_each_bidder_picks_once_per_window() -> None:
    lot = open_lucky(winning=1)
    lot.do(PickOption("p1", "alice", 0), 10)
    assert reason(lot.refused(PickOption("p2", "alice", 1), 20)) == "ALREADY_PICKED"


def test_a_window_without_a_winner_opens_a_new_one_where_everyone_may_pick_again() -> None:
    lot = open_lucky(winning=2)
    lot.do(PickOption("p1", "alice", 0), 10)
    assert lot.tick(10_000) == [LuckyWindowOpened("lot-1", 10_000, 2, 2, 20_000)]
    assert names(lot.do(PickOption("p2", "alice", 2), 10_001))[-1] == "LotSold"


def test_after_the_last_window_the_lot_is_unsold() -> None:
    lot = open_lucky(extra={"lucky_max_windows": "2"})
    events = lot.tick(50_000)
    assert names(events) == ["LuckyWindowOpened", "LotUnsold"]
    assert events[-1] == LotUnsold("lot-1", 20_000, "NO_WINNER")


def test_a_seeded_winning_option_is_reproducible_and_may_differ_per_window() -> None:
    def windows(seed: int) -> list[int]:
        lot = open_lucky(
            winning=None, seed=seed, options=tuple(f"o{n}" for n in range(10)), extra={"lucky_max_windows": "20"}
        )
        lot.tick(10**6)
        return [event.winning_option for event in lot.of_type(LuckyWindowOpened)]

    first = windows(7)
    assert first == windows(7)
    assert len(first) == 20
    assert all(0 <= option < 10 for option in first)
    assert len(set(first)) > 1
    assert first != windows(8)


def test_an_option_out_of_range_is_an_invalid_argument() -> None:
    lot = open_lucky()
    assert isinstance(lot.refused(PickOption("p1", "alice", 3), 10), InvalidArgument)


def test_the_window_bound_must_be_at_least_one() -> None:
    with pytest.raises(InvalidArgument) as caught:
        engine_for(lucky(extra={"lucky_max_windows": "0"}))
    assert caught.value.violations[0].field == "lot.extra.lucky_max_windows"
