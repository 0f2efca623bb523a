"""Winner confirmation in every format: confirm, decline or time out, penalty, and the cascade."""

from __future__ import annotations

from room_support import HOUR, Lot, dutch, english, lucky, names, reason, rounds

from room.domain import ConfirmWin, DeclineWin, PickOption, VendorAccept, next_deadline_ms
from room.domain.events import (
    ConfirmationRequested,
    LotSold,
    LotUnsold,
    OfferLapsed,
    PenaltyAssessed,
    ProvisionalWinnerDeclared,
)

CONFIRM = 60_000


def closed_english(reserve: int | None = None) -> Lot:
    """alice 9,000 / bob 7,000 / carol 5,000 / dave 3,000: alice wins at 7,100 pending confirmation."""
    lot = Lot(english(confirm_ms=CONFIRM, reserve=reserve))
    lot.open(0)
    for at, (bidder, amount) in enumerate([("dave", 3_000), ("carol", 5_000), ("bob", 7_000), ("alice", 9_000)]):
        lot.bid(bidder, amount, 10 + at)
    events = lot.tick(HOUR)
    assert events == [
        ProvisionalWinnerDeclared("lot-1", HOUR, "alice", 7_100, 1, "online", None, 0),
        ConfirmationRequested("lot-1", HOUR, "alice", 7_100, 1, HOUR + CONFIRM),
    ]
    return lot


def test_a_lot_without_confirmation_is_sold_at_the_close() -> None:
    lot = Lot(english())
    lot.open(0)
    lot.bid("alice", 5_000, 1)
    assert names(lot.tick(HOUR)) == ["LotSold"]


def test_the_provisional_winner_who_confirms_buys_the_lot() -> None:
    lot = closed_english()
    assert next_deadline_ms(lot.state) == HOUR + CONFIRM
    assert names(lot.do(ConfirmWin("alice"), HOUR + 5)) == ["WinnerConfirmed", "LotSold"]
    assert lot.state.phase.value == "sold"
    assert lot.state.penalised == []


def test_only_the_bidder_offered_the_lot_may_confirm_it() -> None:
    lot = closed_english()
    assert reason(lot.refused(ConfirmWin("bob"), HOUR + 5)) == "NOT_OFFERED_TO_BIDDER"


def test_confirming_when_nothing_is_pending_is_refused() -> None:
    lot = Lot(english())
    lot.open(0)
    assert reason(lot.refused(ConfirmWin("alice"), 5)) == "NO_PENDING_OFFER"


def test_a_timeout_penalises_the_winner_and_offers_the_next_highest_bidder_their_own_bid() -> None:
    lot = closed_english()
    at = HOUR + CONFIRM
    assert lot.tick(at) == [
        OfferLapsed("lot-1", at, "alice", 7_100, 1, "timeout"),
        PenaltyAssessed("lot-1", at, "alice", 7_100, "timeout"),
        ProvisionalWinnerDeclared("lot-1", at, "bob", 7_000, 2, "online", None, 0),
        ConfirmationRequested("lot-1", at, "bob", 7_000, 2, at + CONFIRM),
    ]


def test_later_offerees_who_decline_are_not_penalised_and_the_cascade_goes_on() -> None:
    lot = closed_english()
    lot.do(DeclineWin("alice"), HOUR + 1)
    events = lot.do(DeclineWin("bob"), HOUR + 2)
    assert names(events) == ["OfferLapsed", "ProvisionalWinnerDeclared", "ConfirmationRequested"]
    assert events[1] == ProvisionalWinnerDeclared("lot-1", HOUR + 2, "carol", 5_000, 3, "online", None, 0)
    assert names(lot.do(ConfirmWin("carol"), HOUR + 3)) == ["WinnerConfirmed", "LotSold"]
    assert lot.state.penalised == ["alice"]
    assert lot.of_type(LotSold)[0].hammer_price == 5_000


def test_when_nobody_is_left_the_lot_is_unsold() -> None:
    lot = closed_english()
    for bidder in ("alice", "bob", "carol"):
        lot.do(DeclineWin(bidder), HOUR + 1)
    assert lot.tick(HOUR + 1 + CONFIRM) == [
        OfferLapsed("lot-1", HOUR + 1 + CONFIRM, "dave", 3_000, 4, "timeout"),
        LotUnsold("lot-1", HOUR + 1 + CONFIRM, "NOBODY_LEFT"),
    ]
    assert lot.state.penalised == ["alice"]


def test_the_cascade_skips_bidders_below_the_reserve() -> None:
    lot = closed_english(reserve=6_000)
    events = lot.do(DeclineWin("alice"), HOUR + 1)
    assert events[2].bidder == "bob"
    assert names(lot.do(DeclineWin("bob"), HOUR + 2)) == ["OfferLapsed", "LotUnsold"]


def test_every_pending_timeout_fires_in_order_on_one_late_tick() -> None:
    lot = closed_english()
    events = lot.tick(HOUR + 10 * CONFIRM)
    assert [e.bidder for e in events if isinstance(e, OfferLapsed)] == ["alice", "bob", "carol", "dave"]
    assert names(events)[-1] == "LotUnsold"
    assert [e.at_ms for e in events if isinstance(e, OfferLapsed)] == [HOUR + n * CONFIRM for n in range(1, 5)]


def test_a_round_limited_lot_cascades_to_the_next_highest_bid() -> None:
    lot = Lot(rounds(count=1, confirm_ms=CONFIRM))
    lot.open(0)
    lot.bid("alice", 1_000, 1)
    lot.bid("bob", 1_100, 2)
    lot.tick(10_000)
    events = lot.do(DeclineWin("bob"), 10_001)
    assert events[2] == ProvisionalWinnerDeclared("lot-1", 10_001, "alice", 1_000, 2, "online", None, 0)


def test_a_dutch_winner_who_defaults_is_penalised_and_the_clock_runs_on() -> None:
    lot = Lot(dutch(confirm_ms=CONFIRM))
    lot.open(0)
    lot.tick(2_000)  # 10,000 -> 8,000
    lot.bid("alice", 8_000, 2_500)
    events = lot.do(DeclineWin("alice"), 3_000)
    assert names(events) == ["OfferLapsed", "PenaltyAssessed", "BiddingReopened"]
    assert lot.price == 8_000
    assert next_deadline_ms(lot.state) == 4_000
    assert reason(lot.refused_bid("alice", 8_000, 3_500)) == "BIDDER_DEFAULTED"
    lot.bid("bob", 9_000, 3_600)
    lot.do(DeclineWin("bob"), 3_700)
    assert lot.state.penalised == ["alice", "bob"]  # each Dutch winner won on their own: each is penalised


def test_a_lucky_winner_who_times_out_is_penalised_and_a_new_window_opens() -> None:
    lot = Lot(lucky(confirm_ms=CONFIRM, winning=1))
    lot.open(0)
    lot.do(PickOption("p1", "alice", 1), 100)
    events = lot.tick(100 + CONFIRM)
    assert names(events) == ["OfferLapsed", "PenaltyAssessed", "LuckyWindowOpened"]
    assert lot.state.window == 2
    assert reason(lot.refused(PickOption("p2", "alice", 1), 100 + CONFIRM + 1)) == "BIDDER_DEFAULTED"
    lot.do(PickOption("p3", "bob", 1), 100 + CONFIRM + 2)
    assert names(lot.do(ConfirmWin("bob"), 100 + CONFIRM + 3)) == ["WinnerConfirmed", "LotSold"]


def test_after_the_vendor_waives_the_reserve_the_cascade_offers_bids_below_it() -> None:
    lot = Lot(english(confirm_ms=CONFIRM, reserve=8_000, extra={"below_reserve": "offer_vendor"}))
    lot.open(0)
    lot.bid("bob", 3_000, 1)
    lot.bid("alice", 5_000, 2)
    lot.tick(HOUR)
    lot.do(VendorAccept("seller-1"), HOUR + 1)
    events = lot.do(DeclineWin("alice"), HOUR + 2)
    assert events[2] == ProvisionalWinnerDeclared("lot-1", HOUR + 2, "bob", 3_000, 2, "online", None, 0)
