"""Crier-driven live English: the crier's calls, reopen and undo, floor paddles and their policy."""

from __future__ import annotations

import pytest
from room_support import Lot, crier, names, reason

from gavel_core.errors import InvalidArgument
from room.domain import (
    CallGoingOnce,
    CallGoingTwice,
    FloorBid,
    Hammer,
    PassLot,
    Pause,
    PlaceBid,
    Reopen,
    Resume,
    SetAsking,
    SetIncrement,
    UndoLastBid,
    engine_for,
    next_deadline_ms,
)
from room.domain.events import BidUndone, FloorBidAccepted, Hammered, LotOpened, LotSold


def open_crier(grace_ms: int = 0, **kwargs: object) -> Lot:
    lot = Lot(crier(grace_ms=grace_ms, **kwargs))  # type: ignore[arg-type]
    lot.open(0, by="crier-7")
    return lot


def paddle(lot: Lot, bidder: str, at: int, force: int = 300, press_ms: int = 200, paddle_no: str = "P12") -> list:
    return lot.do(FloorBid(f"f{at}", bidder, paddle_no, "dev-1", force, press_ms), at)


def test_the_crier_opens_the_lot_at_the_opening_bid_or_their_own_asking_price() -> None:
    assert open_crier().events == [LotOpened("lot-1", 0, "crier-7", "english", 1_000, None)]
    lot = Lot(crier())
    lot.open(0, by="crier-7", asking=700)
    assert lot.state.asking == 700
    assert next_deadline_ms(lot.state) is None


def test_an_online_bid_takes_the_asking_price_and_the_next_asking_is_one_increment_up() -> None:
    lot = open_crier()
    [event] = lot.bid("alice", 5_000, 10)
    assert (event.amount, event.price, event.leader) == (1_000, 1_000, "alice")
    assert lot.state.asking == 1_100


def test_an_online_bid_whose_maximum_is_below_the_asking_price_is_refused() -> None:
    lot = open_crier()
    lot.bid("alice", 1_000, 10)
    error = lot.refused_bid("bob", 1_050, 20)
    assert reason(error) == "BID_TOO_LOW"
    assert error.metadata == {"min_amount_minor": "1100"}  # type: ignore[attr-defined]


def test_the_standing_bidder_cannot_bid_against_themselves() -> None:
    lot = open_crier()
    lot.bid("alice", 1_000, 10)
    assert reason(lot.refused_bid("alice", 2_000, 20)) == "ALREADY_LEADING"


def test_calls_go_once_then_twice_and_a_new_bid_resets_them() -> None:
    lot = open_crier()
    assert reason(lot.refused(CallGoingOnce("crier-7"), 5)) == "NO_STANDING_BID"
    lot.bid("alice", 1_000, 10)
    assert reason(lot.refused(CallGoingTwice("crier-7"), 11)) == "CALL_OUT_OF_ORDER"
    lot.do(CallGoingOnce("crier-7"), 12)
    lot.do(CallGoingTwice("crier-7"), 13)
    lot.bid("bob", 1_100, 14)
    assert lot.state.calls == 0
    assert names(lot.do(CallGoingOnce("crier-7"), 15)) == ["GoingOnce"]


def test_the_hammer_sells_at_once_without_a_reopen_grace() -> None:
    lot = open_crier()
    lot.bid("alice", 1_000, 10)
    events = lot.do(Hammer("crier-7"), 20)
    assert events == [
        Hammered("lot-1", 20, "crier-7", "alice", 1_000, None),
        LotSold("lot-1", 20, "alice", 1_000, "online", None, 0),
    ]
    assert reason(lot.refused(Reopen("crier-7"), 21)) == "REOPEN_NOT_ALLOWED"


def test_the_hammer_is_final_only_when_the_reopen_grace_runs_out() -> None:
    lot = open_crier(grace_ms=5_000)
    lot.bid("alice", 1_000, 10)
    assert names(lot.do(Hammer("crier-7"), 20)) == ["Hammered"]
    assert next_deadline_ms(lot.state) == 5_020
    assert reason(lot.refused_bid("bob", 1_100, 30)) == "LOT_CLOSED"
    assert names(lot.tick(5_020)) == ["LotSold"]
    assert reason(lot.refused(Reopen("crier-7"), 5_021)) == "REOPEN_NOT_ALLOWED"


def test_the_crier_may_reopen_within_the_grace_and_take_more_bids() -> None:
    lot = open_crier(grace_ms=5_000)
    lot.bid("alice", 1_000, 10)
    lot.do(Hammer("crier-7"), 20)
    assert names(lot.do(Reopen("crier-7"), 3_000)) == ["Reopened"]
    lot.bid("bob", 1_100, 3_100)
    assert next_deadline_ms(lot.state) is None
    lot.do(Hammer("crier-7"), 4_000)
    assert lot.tick(9_000)[-1] == LotSold("lot-1", 9_000, "bob", 1_100, "online", None, 0)


def test_a_passed_lot_is_unsold() -> None:
    lot = open_crier()
    assert names(lot.do(PassLot("crier-7"), 10)) == ["Passed", "LotUnsold"]
    assert lot.state.unsold_reason == "PASSED"


def test_a_pass_can_be_taken_back_within_the_grace() -> None:
    lot = open_crier(grace_ms=1_000)
    lot.do(PassLot("crier-7"), 10)
    lot.do(Reopen("crier-7"), 500)
    lot.bid("alice", 1_000, 600)
    assert lot.leader == "alice"


def test_hammering_below_the_reserve_leaves_the_lot_unsold() -> None:
    lot = open_crier(reserve=5_000)
    lot.bid("alice", 1_000, 10)
    assert names(lot.do(Hammer("crier-7"), 20)) == ["Hammered", "LotUnsold"]
    assert lot.state.unsold_reason == "RESERVE_NOT_MET"


def test_undo_restores_the_bid_before_and_its_asking_price() -> None:
    lot = open_crier()
    lot.bid("alice", 1_000, 10)
    lot.do(SetAsking("crier-7", 1_500), 15)
    lot.bid("bob", 1_500, 20)
    events = lot.do(UndoLastBid("crier-7"), 30)
    assert events == [BidUndone("lot-1", 30, "crier-7", "bid-2", "bob", 1_500, 1_000, "alice", 1_500)]
    assert (lot.price, lot.leader, lot.state.asking) == (1_000, "alice", 1_500)
    assert "bob" not in lot.state.maxima  # type: ignore[attr-defined]


def test_undoing_the_only_bid_leaves_no_standing_bid() -> None:
    lot = open_crier()
    lot.bid("alice", 1_000, 10)
    lot.do(UndoLastBid("crier-7"), 20)
    assert (lot.price, lot.leader, lot.state.asking) == (0, None, 1_000)
    assert reason(lot.refused(UndoLastBid("crier-7"), 30)) == "NO_STANDING_BID"
    assert reason(lot.refused(Hammer("crier-7"), 31)) == "NO_STANDING_BID"


def test_an_undone_bid_id_cannot_be_reused() -> None:
    lot = open_crier()
    lot.bid("alice", 1_000, 10, bid_id="x")
    lot.do(UndoLastBid("crier-7"), 20)
    assert reason(lot.refused_bid("alice", 1_000, 30, bid_id="x")) == "DUPLICATE_BID_ID"


def test_the_crier_sets_the_asking_price_but_not_at_or_below_the_standing_bid() -> None:
    lot = open_crier()
    lot.do(SetAsking("crier-7", 600), 5)
    lot.bid("alice", 600, 10)
    error = lot.refused(SetAsking("crier-7", 600), 20)
    assert reason(error) == "ASKING_TOO_LOW"
    lot.do(SetAsking("crier-7", 2_000), 30)
    assert lot.state.asking == 2_000


def test_the_crier_changes_the_increment_live() -> None:
    lot = open_crier()
    lot.bid("alice", 1_000, 10)
    assert names(lot.do(SetIncrement("crier-7", 250), 20)) == ["IncrementSet"]
    assert lot.state.asking == 1_250
    lot.bid("bob", 1_250, 30)
    assert lot.state.asking == 1_500
    lot.do(SetIncrement("crier-7", None), 40)
    assert lot.state.asking == 1_350


def test_floor_and_online_bids_share_one_sequence() -> None:
    lot = open_crier()
    lot.bid("alice", 1_000, 10)
    paddle(lot, "bob", 11)
    lot.bid("carol", 1_200, 12)
    paddle(lot, "dave", 13)
    assert [(bid.bidder, bid.amount, bid.source) for bid in lot.state.bids] == [  # type: ignore[attr-defined]
        ("alice", 1_000, "online"),
        ("bob", 1_100, "floor"),
        ("carol", 1_200, "online"),
        ("dave", 1_300, "floor"),
    ]


@pytest.mark.parametrize(
    ("force", "press_ms", "jumps", "amount"),
    [
        (300, 200, 1, 1_100),  # an ordinary press takes the asking price
        (850, 200, 3, 1_300),  # a hard press bids three increments
        (300, 1_600, 2, 1_200),  # a long press bids two
    ],
)
def test_the_default_paddle_policy_maps_a_hard_or_long_press_to_an_increment_jump(
    force: int, press_ms: int, jumps: int, amount: int
) -> None:
    lot = open_crier()
    lot.bid("alice", 1_000, 10)
    [event] = paddle(lot, "bob", 20, force=force, press_ms=press_ms)
    assert isinstance(event, FloorBidAccepted)
    assert (event.jumps, event.amount, event.force, event.press_ms) == (jumps, amount, force, press_ms)


def test_a_paddle_policy_discount_is_recorded_on_the_winning_bid_and_the_sale() -> None:
    lot = open_crier(policy=[{"min_press_ms": 1_000, "discount_bp": 250}, {"min_force": 900, "jumps": 2}])
    [event] = paddle(lot, "bob", 20, press_ms=1_500, paddle_no="P44")
    assert (event.jumps, event.discount_bp, event.amount) == (1, 250, 1_000)
    sold = lot.do(Hammer("crier-7"), 30)[-1]
    assert sold == LotSold("lot-1", 30, "bob", 1_000, "floor", "P44", 250)


def test_a_bad_paddle_policy_is_refused_when_the_engine_is_built() -> None:
    with pytest.raises(InvalidArgument) as caught:
        engine_for(crier(policy=[{"min_force": 5_000, "jumps": 0}]))
    assert {v.field for v in caught.value.violations} == {
        "lot.extra.paddle_policy[0].min_force",
        "lot.extra.paddle_policy[0].jumps",
    }


def test_every_crier_action_is_an_event_naming_the_crier_and_the_time() -> None:
    lot = open_crier(grace_ms=1_000)
    lot.do(SetAsking("crier-7", 900), 1)
    lot.bid("alice", 900, 2)
    lot.do(SetIncrement("crier-7", 50), 3)
    lot.do(CallGoingOnce("crier-7"), 4)
    lot.do(CallGoingTwice("crier-7"), 5)
    lot.do(Pause("crier-7"), 6)
    lot.do(Resume("crier-7"), 7)
    lot.bid("bob", 950, 8)
    lot.do(UndoLastBid("crier-7"), 9)
    lot.do(Hammer("crier-7"), 10)
    lot.do(Reopen("crier-7"), 11)
    lot.do(PassLot("crier-7"), 12)
    audited = [event for event in lot.events if hasattr(event, "by")]
    assert names(audited) == [
        "LotOpened",
        "AskingSet",
        "IncrementSet",
        "GoingOnce",
        "GoingTwice",
        "LotPaused",
        "LotResumed",
        "BidUndone",
        "Hammered",
        "Reopened",
        "Passed",
    ]
    assert all(event.by == "crier-7" for event in audited)
    assert [event.at_ms for event in audited] == [0, 1, 3, 4, 5, 6, 7, 9, 10, 11, 12]


def test_a_paused_crier_lot_refuses_bids_and_calls() -> None:
    lot = open_crier()
    lot.bid("alice", 1_000, 10)
    lot.do(Pause("crier-7"), 20)
    assert reason(lot.refused_bid("bob", 2_000, 30)) == "LOT_PAUSED"
    assert reason(lot.refused(Hammer("crier-7"), 31)) == "LOT_PAUSED"
    lot.do(Resume("crier-7"), 40)
    assert names(lot.do(PlaceBid("b9", "bob", 2_000), 50)) == ["BidAccepted"]
