"""Winner confirmation in every format: confirm, decline or time out, penalty, and the cascade."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from room_support import HOUR, Lot, dutch, english, lucky, names, reason, rounds

from gavel_core.formats import LotTerms
from room.domain import ConfirmWin, DeclineWin, PickOption, VendorAccept, engine_for, next_deadline_ms
from room.domain.events import (
    BiddingReopened,
    ConfirmationRequested,
    LotSold,
    LotUnsold,
    OfferLapsed,
    PenaltyAssessed,
    PriceDropped,
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


def test_a_dutch_default_resumes_the_descent_at_the_next_lower_price_for_a_full_tick() -> None:
    lot = Lot(dutch(confirm_ms=CONFIRM))  # 10,000 down by 1,000 a second to a 5,000 floor
    lot.open(0)
    lot.tick(2_000)  # 10,000 -> 8,000
    lot.bid("alice", 8_000, 2_500)
    events = lot.do(DeclineWin("alice"), 3_000)
    assert events == [
        OfferLapsed("lot-1", 3_000, "alice", 8_000, 1, "declined"),
        PenaltyAssessed("lot-1", 3_000, "alice", 8_000, "declined"),
        BiddingReopened("lot-1", 3_000, 7_000, 4_000, 3),  # never the defaulted 8,000 again
    ]
    assert (lot.price, lot.state.tick) == (7_000, 3)
    assert reason(lot.refused_bid("alice", 8_000, 3_500)) == "BIDDER_DEFAULTED"
    assert lot.tick(4_000) == [PriceDropped("lot-1", 4_000, 6_000, 4, 5_000)]  # the schedule goes on


def test_a_second_dutch_defaulter_is_not_penalised() -> None:
    lot = Lot(dutch(confirm_ms=CONFIRM))
    lot.open(0)
    lot.bid("alice", 10_000, 500)
    lot.do(DeclineWin("alice"), 600)  # the descent resumes at 9,000
    events = lot.bid("bob", 9_000, 700)
    assert events[1] == ProvisionalWinnerDeclared("lot-1", 700, "bob", 9_000, 2, "online", None, 0)
    lapsed = lot.tick(700 + CONFIRM)
    assert names(lapsed) == ["OfferLapsed", "BiddingReopened"]
    assert lapsed[0] == OfferLapsed("lot-1", 700 + CONFIRM, "bob", 9_000, 2, "timeout")
    assert lot.state.penalised == ["alice"]
    assert lot.price == 8_000


@pytest.mark.parametrize(
    ("terms", "ticks"),
    [
        (dutch(start=10_000, floor=5_000, step=1_000, confirm_ms=CONFIRM), 4),  # taken at 6,000: next is the floor
        (dutch(start=10_000, floor=5_500, step=1_000, confirm_ms=CONFIRM), 4),  # next, 5,000, is below the floor
        (dutch(start=10_000, floor=0, steps=(2_500, 2_500, 2_500, 2_500), confirm_ms=CONFIRM), 3),  # 2,500: next 0
    ],
)
def test_a_default_one_step_above_the_floor_ends_the_dutch_lot_unsold(terms: LotTerms, ticks: int) -> None:
    lot = Lot(terms)
    lot.open(0)
    lot.tick(ticks * 1_000)
    lot.bid("alice", 10_000, ticks * 1_000 + 1)
    events = lot.do(DeclineWin("alice"), ticks * 1_000 + 2)
    assert names(events) == ["OfferLapsed", "PenaltyAssessed", "LotUnsold"]
    assert events[-1] == LotUnsold("lot-1", ticks * 1_000 + 2, "FLOOR_REACHED")
    assert lot.of_type(LotSold) == []


def test_a_random_step_dutch_default_resumes_with_the_next_step_of_the_seeded_order() -> None:
    terms = dutch(start=10_000, floor=1_000, steps=(1_000, 1_000, 2_000, 2_000, 4_000), seed=3, confirm_ms=CONFIRM)
    order = engine_for(terms).steps  # type: ignore[attr-defined]
    lot = Lot(terms)
    lot.open(0)
    lot.tick(1_000)
    lot.bid("alice", 10_000, 1_001)
    [_, _, reopened] = lot.do(DeclineWin("alice"), 1_002)
    assert reopened == BiddingReopened("lot-1", 1_002, 10_000 - order[0] - order[1], 2_002, 2)


def test_a_lucky_winner_who_times_out_is_penalised_and_a_new_window_opens() -> None:
    lot = Lot(lucky(confirm_ms=CONFIRM))
    lot.open(0)
    option = lot.state.winning_option  # type: ignore[attr-defined]
    lot.do(PickOption("p1", "alice", option), 100)
    events = lot.tick(100 + CONFIRM)
    assert names(events) == ["OfferLapsed", "PenaltyAssessed", "LuckyWindowOpened"]
    assert lot.state.window == 2  # type: ignore[attr-defined]
    assert reason(lot.refused(PickOption("p2", "alice", option), 100 + CONFIRM + 1)) == "BIDDER_DEFAULTED"
    lot.do(PickOption("p3", "bob", option), 100 + CONFIRM + 2)
    assert names(lot.do(ConfirmWin("bob"), 100 + CONFIRM + 3)) == ["WinnerConfirmed", "LotSold", "LuckyDrawRevealed"]


def test_a_second_lucky_defaulter_is_not_penalised() -> None:
    lot = Lot(lucky(confirm_ms=CONFIRM))
    lot.open(0)
    option = lot.state.winning_option  # type: ignore[attr-defined]
    lot.do(PickOption("p1", "alice", option), 100)
    lot.do(DeclineWin("alice"), 200)
    events = lot.do(PickOption("p2", "bob", option), 300)
    assert events[1] == ProvisionalWinnerDeclared("lot-1", 300, "bob", 2_000, 2, "online", None, 0)
    assert names(lot.do(DeclineWin("bob"), 400)) == ["OfferLapsed", "LuckyWindowOpened"]
    assert lot.state.penalised == ["alice"]


def every_winner_defaults(lot: Lot, take: Callable[[Lot, int], object]) -> list[str]:
    """Let each provisional winner decline until the lot ends; who was penalised."""
    for n in range(10):
        if lot.state.phase.value in ("sold", "unsold"):
            break
        if lot.state.phase.value == "open":
            take(lot, n)
        pending = lot.state.pending
        if pending is not None:
            lot.do(DeclineWin(pending.bidder), lot.events[-1].at_ms + 1)
    return list(lot.state.penalised)


def _english_bids(lot: Lot, n: int) -> None:
    for at, (bidder, amount) in enumerate([("dave", 3_000), ("carol", 5_000), ("bob", 7_000), ("alice", 9_000)]):
        lot.bid(bidder, amount, 10 + at)
    lot.tick(HOUR)


def _dutch_take(lot: Lot, n: int) -> None:
    lot.bid(f"bidder-{n}", 10_000, lot.events[-1].at_ms + 1)


def _lucky_take(lot: Lot, n: int) -> None:
    lot.do(PickOption(f"p{n}", f"bidder-{n}", lot.state.winning_option), lot.events[-1].at_ms + 1)  # type: ignore[attr-defined]


def _rounds_bids(lot: Lot, n: int) -> None:
    lot.bid("alice", 1_000, 1)
    lot.bid("bob", 1_100, 2)
    lot.bid("carol", 1_200, 3)
    lot.tick(10_000)


@pytest.mark.parametrize(
    ("terms", "take", "first"),
    [
        (english(confirm_ms=CONFIRM), _english_bids, "alice"),
        (rounds(count=1, confirm_ms=CONFIRM), _rounds_bids, "carol"),
        (dutch(start=10_000, floor=0, confirm_ms=CONFIRM), _dutch_take, "bidder-0"),
        (lucky(confirm_ms=CONFIRM, extra={"lucky_max_windows": "5"}), _lucky_take, "bidder-0"),
    ],
    ids=["english", "rounds", "dutch", "lucky"],
)
def test_in_every_format_only_the_first_provisional_winner_is_penalised(
    terms: LotTerms, take: Callable[[Lot, int], object], first: str
) -> None:
    lot = Lot(terms)
    lot.open(0)
    assert every_winner_defaults(lot, take) == [first]
    assert len(lot.of_type(OfferLapsed)) > 1
    assert len(lot.of_type(PenaltyAssessed)) == 1


def test_after_the_vendor_waives_the_reserve_the_cascade_offers_bids_below_it() -> None:
    lot = Lot(english(confirm_ms=CONFIRM, reserve=8_000, extra={"below_reserve": "offer_vendor"}))
    lot.open(0)
    lot.bid("bob", 3_000, 1)
    lot.bid("alice", 5_000, 2)
    lot.tick(HOUR)
    lot.do(VendorAccept("seller-1"), HOUR + 1)
    events = lot.do(DeclineWin("alice"), HOUR + 2)
    assert events[2] == ProvisionalWinnerDeclared("lot-1", HOUR + 2, "bob", 3_000, 2, "online", None, 0)
