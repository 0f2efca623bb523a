"""English lots end to end: closing, reserve, buy-now, soft close, vendor acceptance, eligibility, pause."""

from __future__ import annotations

import pytest
from room_support import HOUR, TABLE, Lot, english, names, reason, soft

from gavel_core.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from gavel_core.formats import Format, LotTerms, SoftCloseMode, TenderParams
from room.domain import (
    BidderStanding,
    BuyNow,
    OpenLot,
    Pause,
    PlaceBid,
    Resume,
    Tick,
    VendorAccept,
    VendorDecline,
    engine_for,
    next_deadline_ms,
)
from room.domain.events import BidAccepted, ClosingExtended, LotSold, LotUnsold, OfferedToVendor


def open_lot(**kwargs: object) -> Lot:
    lot = Lot(english(**kwargs))  # type: ignore[arg-type]
    lot.open(0)
    return lot


def test_hard_close_sells_to_the_leader_at_the_visible_price() -> None:
    lot = open_lot()
    lot.bid("alice", 5_000, 10)
    lot.bid("bob", 2_000, 20)
    assert lot.tick(HOUR) == [LotSold("lot-1", HOUR, "alice", 2_100, "online", None, 0)]


def test_a_lot_nobody_bid_on_closes_unsold() -> None:
    lot = open_lot()
    assert lot.tick(HOUR) == [LotUnsold("lot-1", HOUR, "NO_BIDS")]


def test_the_close_is_the_next_deadline_and_a_tick_before_it_does_nothing() -> None:
    lot = open_lot()
    assert next_deadline_ms(lot.state) == HOUR
    assert lot.tick(HOUR - 1) == []


def test_a_bid_after_the_close_is_refused_even_before_any_tick() -> None:
    lot = open_lot()
    lot.bid("alice", 5_000, 10)
    error = lot.refused_bid("bob", 9_000, HOUR)
    assert reason(error) == "LOT_CLOSED"
    assert names(lot.tick(HOUR + 5)) == ["LotSold"]


def test_a_refused_late_bid_leaves_the_state_as_it_was() -> None:
    lot = open_lot()
    lot.bid("alice", 5_000, 10)
    engine, state = lot.engine, lot.state
    with pytest.raises(FailedPrecondition):
        engine.decide(state, PlaceBid("late", "bob", 9_000), HOUR + 1)
    assert state.phase.value == "open"  # nothing was applied: the close is fired again by the next tick


def test_a_bid_before_the_lot_opens_is_refused() -> None:
    lot = Lot(english())
    assert reason(lot.refused_bid("alice", 5_000, 0)) == "LOT_NOT_OPEN"


def test_opening_a_lot_twice_is_refused() -> None:
    lot = open_lot()
    assert reason(lot.refused(OpenLot(), 5)) == "LOT_ALREADY_OPENED"


def test_only_a_crier_sets_an_opening_asking_price() -> None:
    lot = Lot(english())
    assert isinstance(lot.refused(OpenLot(asking=5_000), 0), InvalidArgument)


@pytest.mark.parametrize(
    ("standing", "error_type", "expected"),
    [
        (BidderStanding(banned=True), PermissionDenied, "BIDDER_BANNED"),
        (BidderStanding(seated=False), PermissionDenied, "NOT_SEATED"),
        (BidderStanding(is_seller=True), PermissionDenied, "OWN_LOT"),
        (BidderStanding(bid_limit_minor=4_999), FailedPrecondition, "OVER_BID_LIMIT"),
    ],
)
def test_an_ineligible_bidder_is_refused(standing: BidderStanding, error_type: type, expected: str) -> None:
    lot = open_lot()
    error = lot.refused(PlaceBid("b1", "alice", 5_000, standing), 10)
    assert isinstance(error, error_type)
    assert reason(error) == expected


def test_a_bid_within_the_bidder_limit_is_accepted() -> None:
    lot = open_lot()
    assert names(lot.do(PlaceBid("b1", "alice", 5_000, BidderStanding(bid_limit_minor=5_000)), 10)) == ["BidAccepted"]


@pytest.mark.parametrize("amount", [0, -5, 10**16])
def test_a_bid_amount_out_of_range_is_an_invalid_argument(amount: int) -> None:
    lot = open_lot()
    error = lot.refused(PlaceBid("b1", "alice", amount), 10)
    assert isinstance(error, InvalidArgument)
    assert [v.field for v in error.violations] == ["amount"]


def test_outbid_notices_can_name_the_previous_leader() -> None:
    lot = open_lot()
    lot.bid("alice", 2_000, 10)
    [event] = lot.bid("bob", 3_000, 20)
    assert isinstance(event, BidAccepted)
    assert (event.previous_leader, event.leader, event.price) == ("alice", "bob", 2_100)


def test_hidden_reserve_not_met_leaves_the_lot_unsold() -> None:
    lot = open_lot(reserve=8_000)
    lot.bid("alice", 5_000, 10)
    assert lot.tick(HOUR) == [LotUnsold("lot-1", HOUR, "RESERVE_NOT_MET")]


def test_hidden_reserve_met_sells_at_least_at_the_reserve() -> None:
    lot = open_lot(reserve=8_000)
    lot.bid("alice", 9_000, 10)
    assert lot.tick(HOUR) == [LotSold("lot-1", HOUR, "alice", 8_000, "online", None, 0)]


def vendor_lot() -> Lot:
    lot = open_lot(reserve=8_000, extra={"below_reserve": "offer_vendor", "vendor_decision_ms": "60000"})
    lot.bid("alice", 5_000, 10)
    lot.bid("bob", 6_000, 20)
    [offer] = lot.tick(HOUR)
    assert offer == OfferedToVendor("lot-1", HOUR, "bob", 5_100, "online", None, 0, HOUR + 60_000)
    return lot


def test_reserve_not_met_can_be_offered_to_the_vendor_who_accepts() -> None:
    lot = vendor_lot()
    assert names(lot.do(VendorAccept("seller-1"), HOUR + 5)) == ["VendorAccepted", "LotSold"]
    assert lot.state.result is not None
    assert (lot.state.result.bidder, lot.state.result.price) == ("bob", 5_100)


def test_the_vendor_may_decline_the_offer_below_reserve() -> None:
    lot = vendor_lot()
    assert names(lot.do(VendorDecline("seller-1"), HOUR + 5)) == ["VendorDeclined", "LotUnsold"]
    assert lot.state.unsold_reason == "RESERVE_NOT_MET"


def test_an_unanswered_vendor_offer_lapses_unsold() -> None:
    lot = vendor_lot()
    assert lot.tick(HOUR + 60_000) == [LotUnsold("lot-1", HOUR + 60_000, "RESERVE_NOT_MET")]


def test_buy_now_before_the_first_bid_ends_the_lot() -> None:
    lot = open_lot(buy_now=20_000)
    assert names(lot.do(BuyNow("b1", "zoe"), 10)) == ["BuyNowTaken", "LotSold"]
    assert lot.state.result is not None
    assert (lot.state.result.bidder, lot.state.result.price) == ("zoe", 20_000)
    assert next_deadline_ms(lot.state) is None
    assert reason(lot.refused_bid("alice", 30_000, 20)) == "LOT_CLOSED"


def test_buy_now_is_withdrawn_at_the_first_bid() -> None:
    lot = open_lot(buy_now=20_000)
    lot.bid("alice", 2_000, 5)
    assert reason(lot.refused(BuyNow("b1", "zoe"), 10)) == "BUY_NOW_UNAVAILABLE"


def test_buy_now_needs_a_buy_now_price() -> None:
    lot = open_lot()
    assert reason(lot.refused(BuyNow("b1", "zoe"), 10)) == "BUY_NOW_UNAVAILABLE"


def test_the_opening_call_is_derived_from_the_reserve_and_rounded_down_to_the_increment() -> None:
    lot = Lot(english(opening_bid=100, increments=TABLE, reserve=10_010, opening_call_reserve_bp=5_000))
    [opened] = lot.open(0)
    assert opened.asking == 5_000  # 5,005 rounded down to the 25 step
    assert reason(lot.refused_bid("alice", 4_999, 1)) == "BID_TOO_LOW"
    assert lot.bid("alice", 5_000, 2)[0].price == 5_000


def test_a_paused_lot_refuses_bids_and_its_close_moves_by_the_pause() -> None:
    lot = open_lot()
    lot.bid("alice", 2_000, 10)
    lot.do(Pause("admin"), 1_000)
    assert next_deadline_ms(lot.state) is None
    assert reason(lot.refused_bid("bob", 3_000, 2_000)) == "LOT_PAUSED"
    assert lot.tick(HOUR + 10_000) == []
    lot.do(Resume("admin"), 11_000)
    assert next_deadline_ms(lot.state) == HOUR + 10_000
    lot.bid("bob", 3_000, HOUR + 5_000)
    assert names(lot.tick(HOUR + 10_000)) == ["LotSold"]


def test_resuming_a_lot_that_is_not_paused_is_refused() -> None:
    lot = open_lot()
    assert reason(lot.refused(Resume("admin"), 5)) == "LOT_NOT_PAUSED"


# -- soft close -----------------------------------------------------------------------------------

SOFT_CASES = [
    # mode, cap, bid time, expected new close (None: no extension)
    (SoftCloseMode.RESET, 0, HOUR - 30_000, HOUR + 30_000),
    (SoftCloseMode.EXTEND, 0, HOUR - 30_000, HOUR + 60_000),
    (SoftCloseMode.RESET, 0, HOUR - 60_000, None),  # exactly one window before: not late
    (SoftCloseMode.RESET, 10_000, HOUR - 1_000, HOUR + 10_000),
    (SoftCloseMode.EXTEND, 10_000, HOUR - 30_000, HOUR + 10_000),
]


@pytest.mark.parametrize(("mode", "cap", "at", "new_close"), SOFT_CASES)
def test_a_late_bid_moves_the_soft_close(mode: SoftCloseMode, cap: int, at: int, new_close: int | None) -> None:
    lot = Lot(soft(window_ms=60_000, mode=mode, cap_ms=cap))
    lot.open(0)
    events = lot.bid("alice", 2_000, at)
    extended = [event for event in events if isinstance(event, ClosingExtended)]
    if new_close is None:
        assert extended == []
        assert next_deadline_ms(lot.state) == HOUR
    else:
        assert extended == [ClosingExtended("lot-1", at, new_close, new_close - HOUR)]
        assert next_deadline_ms(lot.state) == new_close


def test_the_soft_close_cap_bounds_the_total_extension() -> None:
    lot = Lot(soft(window_ms=60_000, mode=SoftCloseMode.EXTEND, cap_ms=90_000))
    lot.open(0)
    lot.bid("alice", 2_000, HOUR - 10_000)  # -> HOUR + 60s
    lot.bid("bob", 5_000, HOUR + 50_000)  # -> HOUR + 90s (capped, not +120s)
    assert next_deadline_ms(lot.state) == HOUR + 90_000
    assert not [e for e in lot.bid("carol", 9_000, HOUR + 89_000) if isinstance(e, ClosingExtended)]
    assert reason(lot.refused_bid("dave", 20_000, HOUR + 90_000)) == "LOT_CLOSED"
    assert lot.state.result is None
    assert names(lot.tick(HOUR + 90_000)) == ["LotSold"]


def test_the_vendor_may_accept_the_standing_bid_during_the_extension() -> None:
    lot = Lot(soft(window_ms=60_000, vendor_may_accept=True, reserve=50_000))
    lot.open(0)
    lot.bid("alice", 2_000, 10)
    assert reason(lot.refused(VendorAccept("seller-1"), 20)) == "VENDOR_CANNOT_ACCEPT"
    lot.bid("bob", 3_000, HOUR - 1_000)
    events = lot.do(VendorAccept("seller-1"), HOUR + 1_000)
    assert names(events) == ["VendorAccepted", "LotSold"]
    assert events[-1] == LotSold("lot-1", HOUR + 1_000, "bob", 2_100, "online", None, 0)


def test_tender_formats_are_not_run_by_the_room() -> None:
    tender = LotTerms(currency="USD", format=Format.TENDER_OPEN, params=TenderParams(start_price=100))
    with pytest.raises(FailedPrecondition) as caught:
        engine_for(tender)
    assert caught.value.reason == "FORMAT_NOT_LIVE"


def test_invalid_terms_are_refused_with_every_bad_field() -> None:
    with pytest.raises(InvalidArgument) as caught:
        engine_for(english(opening_bid=0, duration_ms=0))
    assert {v.field for v in caught.value.violations} == {"lot.english.opening_bid", "lot.english.duration_ms"}


def test_a_tick_on_a_closed_lot_does_nothing() -> None:
    lot = open_lot()
    lot.tick(HOUR)
    assert lot.do(Tick(), HOUR * 5) == []


def test_a_repeated_bid_is_never_accepted_twice_the_price_rules_refuse_it() -> None:
    lot = open_lot()
    lot.bid("alice", 2_000, 10, bid_id="a-1")
    lot.bid("alice", 5_000, 20, bid_id="a-2")
    lot.bid("bob", 3_000, 30, bid_id="b-1")
    lot.bid("bob", 9_000, 40, bid_id="b-2")
    assert reason(lot.refused_bid("alice", 2_000, 50, bid_id="a-1")) == "BID_TOO_LOW"
    assert reason(lot.refused_bid("alice", 5_000, 55, bid_id="a-2")) == "BID_TOO_LOW"
    assert reason(lot.refused_bid("bob", 3_000, 60, bid_id="b-1")) == "BID_NOT_ABOVE_OWN_MAX"
    assert reason(lot.refused_bid("bob", 9_000, 70, bid_id="b-2")) == "BID_NOT_ABOVE_OWN_MAX"
