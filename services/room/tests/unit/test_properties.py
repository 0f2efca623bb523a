"""Properties of every format over random command sequences (hypothesis).

For each format: English prices never fall and never pass the leader's maximum, Dutch prices
never rise and no Dutch price is offered twice (not even after a default) nor at the floor, a
round's bids are at or above the previous round's highest (beat it by an increment with the
parameter), a lot is sold at most once, the buyer never pays more than they bid, only the first
provisional winner is ever penalised, a lucky lot's draws are revealed exactly when it closes and
each reveal opens the commitment its window was published with, `decide` never changes the state
(checked on every command by the harness), replaying the emitted events rebuilds the same state
and hash, and shifting every time by a constant shifts the events and changes nothing else (no
wall clock inside).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from room_support import DRAW_SECRET, HOUR, Lot, crier, dutch, english, lucky, rounds, shifted, soft

from gavel_core.errors import GavelError
from gavel_core.formats import DutchParams, EnglishParams, LotTerms, LuckyWinningRule, SoftCloseMode
from room.domain import (
    BuyNow,
    CallGoingOnce,
    CallGoingTwice,
    Command,
    ConfirmWin,
    CrierState,
    DeclineWin,
    EnglishState,
    FloorBid,
    Hammer,
    PassLot,
    Pause,
    PickOption,
    PlaceBid,
    Reopen,
    Resume,
    RoundsState,
    SetAsking,
    SetIncrement,
    Tick,
    UndoLastBid,
    VendorAccept,
    VendorDecline,
    next_deadline_ms,
    state_hash,
)
from room.domain.draws import verify
from room.domain.events import (
    BidAccepted,
    BiddingReopened,
    BidUndone,
    BuyNowTaken,
    Event,
    FloorBidAccepted,
    LotOpened,
    LotSold,
    LotUnsold,
    LuckyDrawRevealed,
    LuckyWindowOpened,
    OptionPicked,
    PenaltyAssessed,
    PriceDropped,
    ProvisionalWinnerDeclared,
    RoundEnded,
)

PROPERTY_SETTINGS = settings(max_examples=120, deadline=None)
BIDDERS = st.sampled_from(["alice", "bob", "carol", "dave"])
Action = tuple[str, ...] | tuple[Any, ...]

COMMON = [
    st.tuples(st.just("tick")),
    st.tuples(st.just("confirm"), BIDDERS),
    st.tuples(st.just("decline"), BIDDERS),
    st.tuples(st.just("pause")),
    st.tuples(st.just("resume")),
]
ENGLISH_ACTIONS = st.one_of(
    st.tuples(st.just("bid"), BIDDERS, st.integers(500, 12_000)),
    st.tuples(st.just("bid"), BIDDERS, st.integers(500, 12_000)),
    st.tuples(st.just("buy_now"), BIDDERS),
    st.tuples(st.just("vendor_accept")),
    st.tuples(st.just("vendor_decline")),
    *COMMON,
)
CRIER_ACTIONS = st.one_of(
    st.tuples(st.just("bid"), BIDDERS, st.integers(500, 12_000)),
    st.tuples(st.just("paddle"), BIDDERS, st.integers(0, 1_000), st.integers(0, 3_000)),
    st.tuples(st.sampled_from(["once", "twice", "hammer", "pass", "reopen", "undo"])),
    st.tuples(st.just("asking"), st.integers(500, 12_000)),
    st.tuples(st.just("increment"), st.none() | st.integers(1, 500)),
    *COMMON,
)
# Round-limited lots also see bids at exactly the standing amounts, where ties happen.
ROUNDS_ACTIONS = st.one_of(
    st.tuples(st.just("bid"), BIDDERS, st.integers(500, 12_000)),
    st.tuples(st.just("bid"), BIDDERS, st.sampled_from([1_000, 1_500, 2_000, 3_000])),
    *COMMON,
)
DUTCH_ACTIONS = st.one_of(st.tuples(st.just("bid"), BIDDERS, st.integers(4_000, 11_000)), *COMMON)
LUCKY_ACTIONS = st.one_of(st.tuples(st.just("pick"), BIDDERS, st.integers(0, 3)), *COMMON)


def command(action: Action, n: int) -> Command:
    kind = action[0]
    builders: dict[str, Callable[[], Command]] = {
        "bid": lambda: PlaceBid(f"b{n}", action[1], action[2]),
        "paddle": lambda: FloorBid(f"b{n}", action[1], f"P{n % 7}", "dev", action[2], action[3]),
        "buy_now": lambda: BuyNow(f"b{n}", action[1]),
        "pick": lambda: PickOption(f"b{n}", action[1], action[2]),
        "tick": Tick,
        "confirm": lambda: ConfirmWin(action[1]),
        "decline": lambda: DeclineWin(action[1]),
        "vendor_accept": lambda: VendorAccept("seller"),
        "vendor_decline": lambda: VendorDecline("seller"),
        "pause": lambda: Pause("admin"),
        "resume": lambda: Resume("admin"),
        "once": lambda: CallGoingOnce("crier"),
        "twice": lambda: CallGoingTwice("crier"),
        "hammer": lambda: Hammer("crier"),
        "pass": lambda: PassLot("crier"),
        "reopen": lambda: Reopen("crier"),
        "undo": lambda: UndoLastBid("crier"),
        "asking": lambda: SetAsking("crier", action[1]),
        "increment": lambda: SetIncrement("crier", action[1]),
    }
    return builders[kind]()


def drive(terms: LotTerms, steps: list[tuple[int, Action]], base: int = 0, secret: bytes = DRAW_SECRET) -> Lot:
    """Open at `base`, run the steps (each `dt` after the last), then let every deadline run out."""
    lot = Lot(terms, draw_secret=secret)
    lot.open(base)
    now = base
    previous_price = lot.price
    for n, (dt, action) in enumerate(steps):
        now += dt
        try:
            events = lot.do(command(action, n), now)
        except GavelError:
            continue
        check_step(lot, events, previous_price)
        check_repeats_refused(lot, now)
        previous_price = lot.price
    while (deadline := next_deadline_ms(lot.state)) is not None:
        events = lot.tick(deadline)
        check_step(lot, events, previous_price)
        previous_price = lot.price
    check_lot(lot)
    return lot


def check_step(lot: Lot, events: list[Event], previous_price: int) -> None:
    state = lot.state
    if isinstance(state, EnglishState) and state.leader is not None and state.phase.value == "open":
        assert lot.price >= previous_price
        assert state.price <= state.leader_max
    if isinstance(state, CrierState):
        if not any(isinstance(event, BidUndone) for event in events) and state.phase.value == "open":
            assert lot.price >= previous_price
        assert state.price == (state.bids[-1].amount if state.bids else 0)
    if state.terms.format.value == "dutch" and state.phase.value == "open":
        assert lot.price <= previous_price
    if isinstance(state, RoundsState):
        check_next_round_takes_the_previous_highest(lot, events)


def check_next_round_takes_the_previous_highest(lot: Lot, events: list[Event]) -> None:
    """When a round hands over to the next, a newcomer's bid of exactly the previous round's highest
    is taken (the specification's "이상"), unless the lot asks for an increment more."""
    state = lot.state
    assert isinstance(state, RoundsState)
    ended = [event for event in events if isinstance(event, RoundEnded)]
    if not ended or ended[-1].next_deadline_ms is None or ended[-1].highest is None or state.phase.value != "open":
        return
    if state.round_high:
        return  # the new round already has bids (a command decided after the deadline)
    highest, at = ended[-1].highest, ended[-1].at_ms
    params = state.terms.params
    assert isinstance(params, EnglishParams)
    probe = PlaceBid("probe", "newcomer", highest)
    if params.rounds_beat_by_increment:
        with pytest.raises(GavelError):
            lot.engine.decide(state, probe, at)
    else:
        assert type(lot.engine.decide(state, probe, at)[0]) is BidAccepted


def check_repeats_refused(lot: Lot, now: int) -> None:
    """Proxy lots keep no bid ids: the price rules alone must refuse a repeat of any accepted bid."""
    if isinstance(lot.state, EnglishState) and lot.state.phase.value == "open":
        for event in lot.of_type(BidAccepted):
            with pytest.raises(GavelError):
                lot.engine.decide(lot.state, PlaceBid(event.bid_id, event.bidder, event.amount), now)


def bid_amounts(lot: Lot, bidder: str) -> list[int]:
    amounts = []
    for event in lot.events:
        if isinstance(event, BidAccepted | FloorBidAccepted) and event.bidder == bidder:
            amounts.append(event.amount)
        elif isinstance(event, BuyNowTaken) and event.bidder == bidder:
            amounts.append(event.price)
        elif isinstance(event, OptionPicked) and event.bidder == bidder and event.correct:
            amounts.append(lot.state.price)
    return amounts


def check_lot(lot: Lot) -> None:
    sales = lot.of_type(LotSold)
    assert len(sales) <= 1
    if sales:
        [sale] = sales
        assert lot.state.phase.value == "sold"
        assert sale.hammer_price <= max(bid_amounts(lot, sale.buyer))
        assert [event for event in lot.events if not isinstance(event, LuckyDrawRevealed)][-1] is sale
    else:
        assert lot.state.phase.value != "sold"
    check_penalties(lot)
    format_checks = {"dutch": check_dutch_descent, "lucky": check_lucky_draws}
    params = lot.state.terms.params
    if isinstance(params, EnglishParams) and params.close.value == "rounds":
        check_rounds(lot, params.rounds_beat_by_increment)
    format_checks.get(lot.state.terms.format.value, lambda lot: None)(lot)
    replayed = lot.replayed()
    assert replayed == lot.state
    assert state_hash(replayed) == state_hash(lot.state)


def check_penalties(lot: Lot) -> None:
    """Provisional winners are numbered 1, 2, 3, ... across the lot; only number 1 is ever penalised."""
    winners = lot.of_type(ProvisionalWinnerDeclared)
    assert [winner.attempt for winner in winners] == list(range(1, len(winners) + 1))
    penalties = lot.of_type(PenaltyAssessed)
    assert len(penalties) <= 1
    if penalties:
        assert penalties[0].bidder == winners[0].bidder


def check_dutch_descent(lot: Lot) -> None:
    """Every price the clock presents (the start, each drop, each resumption after a default) is
    lower than the one before and above the floor: the defaulted price is never offered again."""
    params = lot.state.terms.params
    assert isinstance(params, DutchParams)
    offered = [
        getattr(event, "asking", None) or getattr(event, "price", None)
        for event in lot.events
        if isinstance(event, LotOpened | PriceDropped | BiddingReopened)
    ]
    assert all(a > b for a, b in itertools.pairwise(offered))
    assert all(price is not None and price > params.floor_price for price in offered)


def check_rounds(lot: Lot, beat_by_increment: bool) -> None:
    """A round's bids are at or above the previous round's highest (beating it by an increment with
    the parameter), and never below the round's own highest so far."""
    engine = lot.engine
    floor, high = 0, 0
    for event in lot.events:
        if isinstance(event, RoundEnded) and event.highest is not None:
            assert event.highest >= floor
            floor = event.highest + (engine.step(event.highest) if beat_by_increment else 0)  # type: ignore[attr-defined]
            high = 0
        elif isinstance(event, BidAccepted):
            assert event.amount >= max(floor, high)
            high = max(high, event.amount)


def check_lucky_draws(lot: Lot) -> None:
    """Nothing is revealed while the lot runs; once it closes every draw is, right after the close,
    and each reveal opens the commitment (and is the option) its windows were published with."""
    reveals = lot.of_type(LuckyDrawRevealed)
    closed = [n for n, event in enumerate(lot.events) if isinstance(event, LotSold | LotUnsold)]
    if not closed:
        assert reveals == []
        return
    assert lot.events[closed[0] + 1 :] == reveals
    by_draw = {reveal.draw: reveal for reveal in reveals}
    per_window = lot.state.terms.params.winning_rule is LuckyWinningRule.DRAWN_PER_WINDOW  # type: ignore[union-attr]
    for window in lot.of_type(LuckyWindowOpened):
        reveal = by_draw[window.window if per_window else 1]
        assert (reveal.option, reveal.commitment) == (window.winning_option, window.commitment)
        assert verify(lot.state.lot_id, reveal.draw, reveal.option, reveal.nonce, window.commitment)
    assert len(by_draw) == (len(lot.of_type(LuckyWindowOpened)) if per_window else 1)


def check_time_shift(terms: LotTerms, steps: list[tuple[int, Action]], shift: int, secret: bytes = DRAW_SECRET) -> None:
    first = drive(terms, steps, secret=secret)
    later = drive(terms, steps, base=shift, secret=secret)
    assert [shifted(event, shift) for event in first.events] == later.events


def steps_of(actions: st.SearchStrategy[Action], max_dt: int) -> st.SearchStrategy[list[tuple[int, Action]]]:
    return st.lists(st.tuples(st.integers(0, max_dt), actions), max_size=30)


SHIFTS = st.integers(1, 10**12)


@st.composite
def english_terms(draw: st.DrawFn) -> LotTerms:
    reserve = draw(st.none() | st.integers(1_000, 9_000))
    buy_now = draw(st.none() | st.integers(max(reserve or 0, 1_000), 15_000))
    extra = {"below_reserve": "offer_vendor", "vendor_decision_ms": "5000"} if draw(st.booleans()) else {}
    common: dict[str, Any] = {
        "reserve": reserve,
        "buy_now": buy_now,
        "confirm_ms": draw(st.sampled_from([0, 5_000])),
        "extra": extra,
    }
    if draw(st.booleans()):
        mode = draw(st.sampled_from(list(SoftCloseMode)))
        return soft(window_ms=10_000, mode=mode, cap_ms=draw(st.sampled_from([0, 15_000])), vendor_may_accept=True,
                    duration_ms=60_000, **common)  # fmt: skip
    return english(duration_ms=60_000, **common)


@PROPERTY_SETTINGS
@given(terms=english_terms(), steps=steps_of(ENGLISH_ACTIONS, 6_000), shift=SHIFTS)
def test_english_lots_keep_their_invariants(terms: LotTerms, steps: list[tuple[int, Action]], shift: int) -> None:
    check_time_shift(terms, steps, shift)


@PROPERTY_SETTINGS
@given(
    count=st.integers(1, 4),
    reserve=st.none() | st.integers(1_000, 5_000),
    confirm_ms=st.sampled_from([0, 5_000]),
    beat=st.booleans(),
    steps=steps_of(ROUNDS_ACTIONS, 4_000),
    shift=SHIFTS,
)
def test_round_limited_lots_keep_their_invariants(
    count: int, reserve: int | None, confirm_ms: int, beat: bool, steps: list[tuple[int, Action]], shift: int
) -> None:
    terms = rounds(count=count, round_ms=10_000, reserve=reserve, confirm_ms=confirm_ms, rounds_beat_by_increment=beat)
    check_time_shift(terms, steps, shift)


@PROPERTY_SETTINGS
@given(
    grace_ms=st.sampled_from([0, 3_000]),
    reserve=st.none() | st.integers(1_000, 5_000),
    confirm_ms=st.sampled_from([0, 5_000]),
    steps=steps_of(CRIER_ACTIONS, 2_000),
    shift=SHIFTS,
)
def test_crier_lots_keep_their_invariants(
    grace_ms: int, reserve: int | None, confirm_ms: int, steps: list[tuple[int, Action]], shift: int
) -> None:
    check_time_shift(crier(grace_ms=grace_ms, reserve=reserve, confirm_ms=confirm_ms), steps, shift)


@st.composite
def seller_steps(draw: st.DrawFn) -> tuple[int, ...]:
    """A seller's step list adding up to the 10,000 start price: a few sizes, some repeated."""
    parts = draw(st.lists(st.sampled_from([500, 1_000, 2_500]) | st.integers(1, 3_000), min_size=1, max_size=10))
    steps: list[int] = []
    for part in parts:
        if sum(steps) + part >= 10_000:
            break
        steps.append(part)
    return (*steps, 10_000 - sum(steps)) if steps else (4_000, 6_000)


@PROPERTY_SETTINGS
@given(
    random_steps=st.sampled_from([0, 3, 9]),
    supplied=st.none() | seller_steps(),
    seed=st.integers(0, 2**62),
    confirm_ms=st.sampled_from([0, 2_500]),
    steps=steps_of(DUTCH_ACTIONS, 1_500),
    shift=SHIFTS,
)
def test_dutch_lots_keep_their_invariants(
    random_steps: int,
    supplied: tuple[int, ...] | None,
    seed: int,
    confirm_ms: int,
    steps: list[tuple[int, Action]],
    shift: int,
) -> None:
    if supplied is not None:
        terms = dutch(start=10_000, floor=4_000, steps=supplied, seed=seed, confirm_ms=confirm_ms)
    else:
        terms = dutch(start=10_000, floor=4_000, step=700, random_steps=random_steps, seed=seed, confirm_ms=confirm_ms)
    check_time_shift(terms, steps, shift)


@PROPERTY_SETTINGS
@given(
    rule=st.sampled_from([LuckyWinningRule.DRAWN, LuckyWinningRule.DRAWN_PER_WINDOW]),
    secret=st.binary(min_size=16, max_size=32),
    seed=st.integers(0, 2**62),
    confirm_ms=st.sampled_from([0, 2_500]),
    steps=steps_of(LUCKY_ACTIONS, 3_000),
    shift=SHIFTS,
)
def test_lucky_lots_keep_their_invariants(
    rule: LuckyWinningRule, secret: bytes, seed: int, confirm_ms: int, steps: list[tuple[int, Action]], shift: int
) -> None:
    terms = lucky(options=("a", "b", "c", "d"), rule=rule, seed=seed, confirm_ms=confirm_ms)
    check_time_shift(terms, steps, shift, secret)


def test_the_state_hash_is_stable_and_tracks_changes() -> None:
    lot = Lot(english())
    lot.open(0)
    lot.bid("alice", 5_000, 1)
    before = state_hash(lot.state)
    assert state_hash(lot.state.clone()) == before
    assert state_hash(lot.replayed()) == before
    lot.bid("bob", 6_000, 2)
    assert state_hash(lot.state) != before
    assert len(before) == 64


def test_hour_long_lots_close_once() -> None:
    lot = drive(english(duration_ms=HOUR), [(10, ("bid", "alice", 2_000))])
    assert len(lot.of_type(LotSold)) == 1
