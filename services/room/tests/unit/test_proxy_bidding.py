"""Proxy bidding, run against two implementations through ONE test base (exchange-core's OrderBookBaseTest).

`ReferenceBook` is the obviously-correct model: it keeps every accepted bid and recomputes the
price from the whole list each time. `EngineBook` drives the real `EnglishEngine`. Every table
test below runs on both; the property test feeds both the same random bids and compares them.
"""

from __future__ import annotations

from typing import Protocol

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from room_support import TABLE, Lot, english

from gavel_core.errors import FailedPrecondition
from gavel_core.increments import IncrementTable
from room.domain import EnglishState

OPENING = 9_900


class Book(Protocol):
    price: int
    leader: str | None

    def place(self, bidder: str, amount: int) -> None: ...


class ReferenceBook:
    """Recomputes everything from the full list of accepted bids (quadratic, and plainly the rule)."""

    def __init__(self, opening: int, table: IncrementTable, reserve: int | None = None) -> None:
        self.opening, self.table, self.reserve = opening, table, reserve
        self.bids: list[tuple[str, int]] = []

    @staticmethod
    def _standings(bids: list[tuple[str, int]]) -> list[tuple[int, int, str]]:
        """(maximum, index of the bid that set it, bidder), best first: higher maximum, then earlier."""
        best: dict[str, tuple[int, int]] = {}
        for index, (bidder, amount) in enumerate(bids):
            if bidder not in best or amount > best[bidder][0]:
                best[bidder] = (amount, index)
        return sorted(
            ((amount, index, bidder) for bidder, (amount, index) in best.items()), key=lambda s: (-s[0], s[1])
        )

    def _formula(self, bids: list[tuple[str, int]]) -> int:
        standings = self._standings(bids)
        leader_max = standings[0][0]
        price = self.opening
        if len(standings) > 1:
            runner_up = standings[1][0]
            price = max(price, min(leader_max, runner_up + self.table.step_at(runner_up)))
        if self.reserve is not None and leader_max >= self.reserve:
            price = max(price, self.reserve)
        return price

    @property
    def price(self) -> int:
        return max((self._formula(self.bids[: n + 1]) for n in range(len(self.bids))), default=0)

    @property
    def leader(self) -> str | None:
        return self._standings(self.bids)[0][2] if self.bids else None

    def place(self, bidder: str, amount: int) -> None:
        if self.bids and bidder == self.leader:
            own = self._standings(self.bids)[0][0]
            if amount <= own:
                raise FailedPrecondition("BID_NOT_ABOVE_OWN_MAX", "raise only", {"min_amount_minor": str(own + 1)})
        else:
            minimum = self.price + self.table.step_at(self.price) if self.bids else self.opening
            if amount < minimum:
                raise FailedPrecondition("BID_TOO_LOW", "too low", {"min_amount_minor": str(minimum)})
        self.bids.append((bidder, amount))


class EngineBook:
    def __init__(self, opening: int, table: IncrementTable, reserve: int | None = None) -> None:
        self.lot = Lot(english(opening_bid=opening, increments=table, reserve=reserve, duration_ms=10**9))
        self.lot.open(0)
        self.now = 0

    @property
    def price(self) -> int:
        return self.lot.price

    @property
    def leader(self) -> str | None:
        return self.lot.leader

    def place(self, bidder: str, amount: int) -> None:
        self.now += 1
        self.lot.bid(bidder, amount, self.now)
        state = self.lot.state
        assert isinstance(state, EnglishState)
        assert state.price <= state.leader_max


@pytest.fixture(params=[EngineBook, ReferenceBook], ids=["engine", "reference"], scope="module")
def book_type(request: pytest.FixtureRequest) -> type[Book]:
    book: type[Book] = request.param
    return book


def new_book(book_type: type[Book], reserve: int | None = None, table: IncrementTable = TABLE) -> Book:
    return book_type(OPENING, table, reserve)  # type: ignore[call-arg]


def refusal(book: Book, bidder: str, amount: int) -> FailedPrecondition:
    with pytest.raises(FailedPrecondition) as caught:
        book.place(bidder, amount)
    return caught.value


def test_first_bid_sets_the_price_to_the_opening_bid(book_type: type[Book]) -> None:
    book = new_book(book_type)
    book.place("alice", 17_500)
    assert (book.price, book.leader) == (OPENING, "alice")


def test_first_bid_below_the_opening_bid_is_rejected_with_the_minimum(book_type: type[Book]) -> None:
    error = refusal(new_book(book_type), "alice", OPENING - 1)
    assert error.reason == "BID_TOO_LOW"
    assert error.metadata == {"min_amount_minor": str(OPENING)}


def test_lower_maximum_raises_the_price_to_it_plus_one_increment(book_type: type[Book]) -> None:
    book = new_book(book_type)
    book.place("alice", 17_500)
    book.place("bob", 12_000)
    assert (book.price, book.leader) == (12_025, "alice")


def test_bid_below_min_increment_is_rejected(book_type: type[Book]) -> None:
    book = new_book(book_type)
    book.place("alice", 17_500)
    book.place("bob", 12_000)
    error = refusal(book, "carol", 12_049)
    assert error.reason == "BID_TOO_LOW"
    assert error.metadata["min_amount_minor"] == "12050"


def test_higher_maximum_takes_the_lead_at_the_old_maximum_plus_one_increment(book_type: type[Book]) -> None:
    book = new_book(book_type)
    book.place("alice", 17_500)
    book.place("bob", 30_000)
    assert (book.price, book.leader) == (17_525, "bob")


def test_equal_maxima_keep_the_earlier_bidder_in_the_lead_at_that_maximum(book_type: type[Book]) -> None:
    book = new_book(book_type)
    book.place("alice", 17_500)
    book.place("bob", 17_500)
    assert (book.price, book.leader) == (17_500, "alice")


def test_price_is_capped_at_the_leader_maximum(book_type: type[Book]) -> None:
    book = new_book(book_type)
    book.place("alice", 17_510)
    book.place("bob", 17_500)
    assert (book.price, book.leader) == (17_510, "alice")


def test_leader_raising_their_maximum_does_not_move_the_price(book_type: type[Book]) -> None:
    book = new_book(book_type)
    book.place("alice", 17_500)
    book.place("bob", 12_000)
    book.place("alice", 40_000)
    assert (book.price, book.leader) == (12_025, "alice")


def test_leader_raising_after_a_tie_moves_the_price_only_as_far_as_needed(book_type: type[Book]) -> None:
    book = new_book(book_type)
    book.place("alice", 17_500)
    book.place("bob", 17_500)
    book.place("alice", 40_000)
    assert (book.price, book.leader) == (17_525, "alice")


def test_leader_may_not_lower_or_repeat_their_maximum(book_type: type[Book]) -> None:
    book = new_book(book_type)
    book.place("alice", 17_500)
    error = refusal(book, "alice", 17_500)
    assert error.reason == "BID_NOT_ABOVE_OWN_MAX"
    assert error.metadata["min_amount_minor"] == "17501"


def test_increment_is_taken_from_the_table_at_the_runner_up_amount(book_type: type[Book]) -> None:
    table = IncrementTable.of([[0, 5], [100, 25], [10_000, 100], [20_000, 500]])
    book = new_book(book_type, table=table)
    book.place("alice", 50_000)
    book.place("bob", 9_990)  # the step at 9,990 is 25
    assert book.price == 10_015
    book.place("bob", 19_999)  # the step at 19,999 is 100
    assert book.price == 20_099
    book.place("carol", 20_599)  # the step at 20,599 is 500
    assert book.price == 21_099


def test_reserve_reached_by_the_leader_maximum_lifts_the_price_to_the_reserve(book_type: type[Book]) -> None:
    book = new_book(book_type, reserve=15_000)
    book.place("alice", 12_000)
    assert book.price == OPENING
    book.place("alice", 16_000)
    assert book.price == 15_000
    book.place("bob", 15_500)
    assert (book.price, book.leader) == (15_525, "alice")


def test_the_example_from_the_replay_docs_sells_at_17750(book_type: type[Book]) -> None:
    book = new_book(book_type)
    book.place("alice", 17_500)
    refusal(book, "bob", 9_000)
    book.place("bob", 17_725)
    book.place("carol", 20_000)
    assert (book.price, book.leader) == (17_750, "carol")


def outcome(book: Book, bidder: str, amount: int) -> tuple[str, dict[str, str]] | None:
    """None if the bid was taken, else the refusal's reason and metadata."""
    try:
        book.place(bidder, amount)
    except FailedPrecondition as exc:
        return exc.reason, exc.metadata
    return None


bids = st.lists(
    st.tuples(st.sampled_from(["alice", "bob", "carol", "dave"]), st.integers(min_value=9_000, max_value=30_000)),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(bids=bids, reserve=st.none() | st.integers(min_value=9_900, max_value=25_000))
def test_engine_matches_the_reference_model_on_random_bids(bids: list[tuple[str, int]], reserve: int | None) -> None:
    engine, reference = EngineBook(OPENING, TABLE, reserve), ReferenceBook(OPENING, TABLE, reserve)
    for bidder, amount in bids:
        assert outcome(engine, bidder, amount) == outcome(reference, bidder, amount)
        assert (engine.price, engine.leader) == (reference.price, reference.leader)
