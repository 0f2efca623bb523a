"""Round-limited English: R timed rounds; from the second on a bid must be at or above the previous
round's highest ("이전 비딩단계의 최고 제시가 이상"), and of equal bids the earlier leads."""

from __future__ import annotations

import pytest
from room_support import Lot, english, names, reason, rounds

from gavel_core.errors import InvalidArgument
from room.domain import DeclineWin, engine_for, next_deadline_ms
from room.domain.events import BidAccepted, LotSold, LotUnsold, ProvisionalWinnerDeclared, RoundEnded

ROUND = 10_000


def open_rounds(count: int = 3, **kwargs: object) -> Lot:
    lot = Lot(rounds(count=count, round_ms=ROUND, **kwargs))  # type: ignore[arg-type]
    lot.open(0)
    return lot


def test_a_first_round_without_bids_ends_the_auction_unsold() -> None:
    lot = open_rounds()
    assert lot.tick(ROUND) == [RoundEnded("lot-1", ROUND, 1, None, None, None), LotUnsold("lot-1", ROUND, "NO_BIDS")]


def test_a_later_round_without_bids_sells_to_the_previous_round_highest() -> None:
    lot = open_rounds()
    lot.bid("alice", 1_000, 1)
    lot.bid("bob", 1_500, 2)
    assert lot.tick(ROUND) == [RoundEnded("lot-1", ROUND, 1, 1_500, "bob", 2 * ROUND)]
    assert lot.tick(2 * ROUND) == [
        RoundEnded("lot-1", 2 * ROUND, 2, None, None, None),
        LotSold("lot-1", 2 * ROUND, "bob", 1_500, "online", None, 0),
    ]


def test_after_the_last_round_its_highest_bid_wins() -> None:
    lot = open_rounds(count=2)
    lot.bid("alice", 1_000, 1)
    lot.tick(ROUND)
    lot.bid("carol", 1_100, ROUND + 1)
    lot.bid("alice", 1_300, ROUND + 2)
    events = lot.tick(2 * ROUND)
    assert events[-1] == LotSold("lot-1", 2 * ROUND, "alice", 1_300, "online", None, 0)
    assert next_deadline_ms(lot.state) is None


def test_round_one_bids_start_at_the_opening_bid() -> None:
    lot = open_rounds()
    error = lot.refused_bid("alice", 999, 1)
    assert error.metadata == {"min_amount_minor": "1000"}  # type: ignore[attr-defined]


def test_a_later_round_accepts_a_bid_at_exactly_the_previous_round_highest() -> None:
    lot = open_rounds(count=2)
    lot.bid("alice", 1_500, 1)
    lot.tick(ROUND)
    error = lot.refused_bid("bob", 1_499, ROUND + 1)
    assert error.metadata == {"min_amount_minor": "1500"}  # type: ignore[attr-defined]
    assert lot.bid("bob", 1_500, ROUND + 2) == [
        BidAccepted("lot-1", ROUND + 2, "bid-3", "bob", 1_500, 1_500, "bob", "alice")
    ]
    # the round's only bid: bob holds round 2, the last, so he wins (not alice's earlier round-1 bid)
    assert lot.tick(2 * ROUND) == [
        RoundEnded("lot-1", 2 * ROUND, 2, 1_500, "bob", None),
        LotSold("lot-1", 2 * ROUND, "bob", 1_500, "online", None, 0),
    ]


def test_a_tie_at_exactly_the_previous_round_highest_goes_to_the_earlier_bid_of_the_round() -> None:
    lot = open_rounds(count=2, confirm_ms=60_000)
    lot.bid("alice", 1_500, 1)
    lot.tick(ROUND)
    lot.bid("bob", 1_500, ROUND + 1)
    tie = lot.bid("carol", 1_500, ROUND + 2)
    assert tie == [BidAccepted("lot-1", ROUND + 2, "bid-3", "carol", 1_500, 1_500, "bob", "bob")]  # bob keeps it
    assert reason(lot.refused_bid("dave", 1_499, ROUND + 3)) == "BID_TOO_LOW"  # never below the round's highest
    events = lot.tick(2 * ROUND)
    assert events[-2] == ProvisionalWinnerDeclared("lot-1", 2 * ROUND, "bob", 1_500, 1, "online", None, 0)
    # bob defaults: of the equal bids left the earliest is alice's (round 1), then carol's
    assert lot.do(DeclineWin("bob"), 2 * ROUND + 1)[-2].bidder == "alice"
    assert lot.do(DeclineWin("alice"), 2 * ROUND + 2)[-2].bidder == "carol"


def test_within_a_round_a_higher_bid_leads_an_equal_one_does_not_and_the_leader_cannot_outbid_themselves() -> None:
    lot = open_rounds()
    lot.bid("alice", 1_000, 1)
    assert reason(lot.refused_bid("bob", 999, 2)) == "BID_TOO_LOW"
    assert reason(lot.refused_bid("alice", 5_000, 3)) == "ALREADY_LEADING"
    lot.bid("bob", 1_000, 4)
    assert (lot.price, lot.leader) == (1_000, "alice")
    lot.bid("bob", 1_001, 5)  # no increment needed: at or above is the rule
    assert (lot.price, lot.leader) == (1_001, "bob")


def test_with_the_increment_parameter_a_later_round_must_beat_the_previous_highest_by_an_increment() -> None:
    lot = open_rounds(rounds_beat_by_increment=True)
    lot.bid("alice", 1_500, 1)
    lot.tick(ROUND)
    assert reason(lot.refused_bid("bob", 1_500, ROUND + 1)) == "BID_TOO_LOW"  # equal is not enough
    error = lot.refused_bid("bob", 1_599, ROUND + 2)
    assert error.metadata == {"min_amount_minor": "1600"}  # type: ignore[attr-defined]
    assert names(lot.bid("bob", 1_600, ROUND + 3)) == ["BidAccepted"]
    assert reason(lot.refused_bid("carol", 1_650, ROUND + 4)) == "BID_TOO_LOW"  # and within the round, too
    lot.bid("carol", 1_700, ROUND + 5)
    assert (lot.price, lot.leader) == (1_700, "carol")


def test_the_increment_parameter_belongs_to_round_limited_lots_only() -> None:
    with pytest.raises(InvalidArgument) as caught:
        engine_for(english(rounds_beat_by_increment=True))
    assert caught.value.violations[0].field == "lot.english.rounds_beat_by_increment"


def test_a_repeated_bid_id_is_refused_as_a_duplicate() -> None:
    lot = open_rounds()
    lot.bid("alice", 1_000, 1, bid_id="same")
    error = lot.refused_bid("alice", 5_000, 2, bid_id="same")
    assert reason(error) == "DUPLICATE_BID_ID"
    assert error.metadata == {"bid_id": "same"}  # type: ignore[attr-defined]


def test_the_reserve_applies_to_the_winning_round_bid() -> None:
    lot = open_rounds(count=1, reserve=2_000)
    lot.bid("alice", 1_500, 1)
    assert lot.tick(ROUND)[-1] == LotUnsold("lot-1", ROUND, "RESERVE_NOT_MET")


def test_one_late_tick_runs_every_round_that_ended() -> None:
    lot = open_rounds(count=3)
    lot.bid("alice", 1_000, 1)
    events = lot.tick(10 * ROUND)
    assert names(events) == ["RoundEnded", "RoundEnded", "LotSold"]
    assert [event.at_ms for event in events] == [ROUND, 2 * ROUND, 2 * ROUND]
