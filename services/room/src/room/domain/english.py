"""English auctions with proxy bidding: hard close and soft close ("hanging bid").

Every bid is the bidder's maximum. The visible price is the lower of the leader's maximum and
(the highest maximum among the other bidders + the increment at that amount), never below the
opening bid and never decreasing; on equal maxima the earlier bid leads and the price is that
maximum. Hidden reserve (eBay's rule, so a proxy does not leave a willing bidder under it): once
the leader's maximum reaches the reserve the price rises to at least the reserve.

A non-leader must bid at least price + increment(price) (the opening bid before the first bid);
the leader may raise their own maximum, which moves the price only as far as the rule requires.

Duplicate bid ids: a proxy lot remembers no bid ids (keeping every id, or even each bidder's
latest, costs about a quarter of the bid path's time with a thousand lots: docs/benchmarks.md).
It does not need to: a repeat of any accepted bid is always refused by the price rules, because
a bidder's maximum only rises and a non-leader's maximum never exceeds the price, so the repeat
is never above what it would have to beat (BID_NOT_ABOVE_OWN_MAX for the leader, BID_TOO_LOW for
anyone else). A retry is answered with its first answer by the room's request-id store; the
engine only guarantees it is never counted twice. The other formats refuse a repeated id with
DUPLICATE_BID_ID.

The bid path is the hot path (see docs/benchmarks.md): it is written out by hand, does O(1) work,
allocates one event and never copies the state.
"""

from __future__ import annotations

from bisect import bisect_right
from functools import lru_cache
from typing import TypeVar

from gavel_core.errors import FailedPrecondition
from gavel_core.formats import EnglishClose, EnglishParams, LotTerms, SoftCloseMode
from gavel_core.increments import IncrementTable
from gavel_core.money import MAX_AMOUNT_MINOR
from room.domain.commands import BuyNow, Command, OpenLot, PlaceBid
from room.domain.engine import (
    Engine,
    applies,
    bid_too_low,
    check_bid,
    check_standing,
    decides,
    invalid_bid,
    refuse_not_open,
)
from room.domain.events import BidAccepted, BuyNowTaken, ClosingExtended, Event, LotOpened, LotUnsold
from room.domain.model import GOOD_STANDING, Award, BidBookState, EnglishState, Phase, UnsoldReason

B = TypeVar("B", bound=BidBookState)
_OPEN = Phase.OPEN  # enum member lookups cost ~0.1 us each on CPython 3.11: hoisted off the bid path


@lru_cache(maxsize=1024)
def split_tiers(table: IncrementTable) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The table's tier starts and steps, for a plain bisect on ints (IncrementTable.step_at's answer,
    faster). Cached, so the many lots that share a table share these tuples and they stay in cache."""
    return tuple(start for start, _ in table.tiers), tuple(step for _, step in table.tiers)


def effective_opening(params: EnglishParams) -> int:
    """The lowest first bid: the opening bid, or the opening call derived from the reserve
    (`opening_call_reserve_bp` of it, rounded down to the increment there) if that is higher."""
    opening = params.opening_bid
    if params.opening_call_reserve_bp and params.reserve is not None:
        call = params.increments.round_down(params.reserve * params.opening_call_reserve_bp // 10_000)
        opening = max(opening, call)
    return opening


class EnglishFamilyEngine(Engine[B]):
    """What every English variant shares: the increment table, the opening, the reserve, buy-now
    and the confirmation cascade down the bidders' maxima."""

    __slots__ = ("buy_now", "opening", "params", "tier_starts", "tier_steps")

    def __init__(self, terms: LotTerms) -> None:
        super().__init__(terms)
        params = terms.params
        assert isinstance(params, EnglishParams)
        self.params = params
        self.tier_starts, self.tier_steps = split_tiers(params.increments)
        self.opening = effective_opening(params)
        self.reserve = params.reserve
        self.buy_now = params.buy_now

    def step(self, amount: int) -> int:
        """The increment at `amount` (`IncrementTable.step_at`)."""
        return self.tier_steps[bisect_right(self.tier_starts, amount) - 1]

    def _after_lapse(self, state: B, at: int, lapsed: Award) -> list[Event]:
        """Offer the lot to the next-highest bidder at their own highest bid (a second-chance offer).

        Bidders who already defaulted are skipped, and so is anyone whose bid is under the reserve
        (unless the vendor has already accepted a bid below it).
        """
        excluded = state.defaulted | {lapsed.bidder}
        reserve = 0 if state.reserve_waived else self.reserve or 0
        best: tuple[str, int] | None = None
        for bidder, amount in state.maxima.items():  # the first of equal amounts wins: dict order
            if bidder not in excluded and amount >= reserve and (best is None or amount > best[1]):
                best = (bidder, amount)
        if best is None:
            return [LotUnsold(state.lot_id, at, UnsoldReason.NOBODY_LEFT.value)]
        return self._offer(state, at, self._award_for(state, *best), state.attempt + 1)

    def _award_for(self, state: B, bidder: str, amount: int) -> Award:
        return Award(bidder, amount)

    @decides(BuyNow)
    def _decide_buy_now(self, state: B, command: BuyNow, now: int) -> list[Event]:
        if state.phase is not Phase.OPEN:
            raise refuse_not_open(state)
        price = self.buy_now
        if price is None:
            raise FailedPrecondition("BUY_NOW_UNAVAILABLE", "this lot has no buy-now price")
        if state.leader is not None:
            raise FailedPrecondition("BUY_NOW_UNAVAILABLE", "buy-now is withdrawn once bidding starts")
        check_bid(state, command.bid_id, command.bidder, price, command.standing)
        taken = BuyNowTaken(state.lot_id, now, command.bid_id, command.bidder, price)
        return [taken, *self._conclude(state, now, Award(command.bidder, price), UnsoldReason.NO_BIDS)]

    @applies(BuyNowTaken)
    def _apply_buy_now(self, state: B, event: BuyNowTaken) -> None:
        state.bid_ids.add(event.bid_id)
        state.price = event.price
        state.leader = event.bidder
        state.deadline_ms = None


class EnglishEngine(EnglishFamilyEngine[EnglishState]):
    """Proxy English, closing hard at the deadline or softly (late bids extend it, up to a cap)."""

    __slots__ = ("cap", "reset", "soft", "window")
    state_type = EnglishState

    def __init__(self, terms: LotTerms) -> None:
        super().__init__(terms)
        params = self.params
        self.soft = params.close is EnglishClose.SOFT
        self.window = params.soft_close_window_ms
        self.reset = params.soft_close_mode is SoftCloseMode.RESET
        self.cap = params.soft_close_max_extension_ms

    def _open(self, state: EnglishState, command: OpenLot, now: int) -> list[Event]:
        deadline = now + self.params.duration_ms
        return [LotOpened(state.lot_id, now, command.by, self.terms.format.value, self.opening, deadline)]

    def _on_deadline(self, state: EnglishState, at: int) -> list[Event]:
        award = None if state.leader is None else Award(state.leader, state.price)
        return self._conclude(state, at, award, UnsoldReason.NO_BIDS)

    def _vendor_acceptable(self, state: EnglishState) -> Award | None:
        if self.params.vendor_may_accept and state.extension_ms > 0 and state.leader is not None:
            return Award(state.leader, state.price)
        return None

    def decide(self, state: EnglishState, command: Command, now_ms: int) -> list[Event]:
        """A bid on an open lot before its close is decided inline here (the hot path: no dispatch);
        everything else, including a bid that arrives after a due deadline, goes through `Engine.decide`."""
        deadline = state.deadline_ms
        if type(command) is not PlaceBid or state.phase is not _OPEN or deadline is None or deadline <= now_ms:
            return super().decide(state, command, now_ms)
        bid_id = command.bid_id
        bidder = command.bidder
        amount = command.max_amount
        if type(amount) is not int or not 0 < amount <= MAX_AMOUNT_MINOR or not bid_id or not bidder:
            raise invalid_bid(bid_id, bidder, amount)
        if command.standing is not GOOD_STANDING:
            check_standing(command.standing, amount)
        leader = state.leader
        reserve = self.reserve
        steps, starts = self.tier_steps, self.tier_starts
        if leader is None:
            price = self.opening
            if amount < price:
                raise bid_too_low(price)
            if reserve is not None and amount >= reserve > price:
                price = reserve
            event = BidAccepted(state.lot_id, now_ms, bid_id, bidder, amount, price, bidder, None)
        elif bidder == leader:
            leader_max = state.leader_max
            if amount <= leader_max:
                raise FailedPrecondition(
                    "BID_NOT_ABOVE_OWN_MAX",
                    "the leader may only raise their maximum",
                    {"min_amount_minor": str(leader_max + 1)},
                )
            price = state.price
            runner_up = state.runner_up_max
            if runner_up:
                candidate = runner_up + steps[bisect_right(starts, runner_up) - 1]
                if candidate > amount:
                    candidate = amount
                if candidate > price:
                    price = candidate
            if reserve is not None and amount >= reserve > price:
                price = reserve
            event = BidAccepted(state.lot_id, now_ms, bid_id, bidder, amount, price, leader, leader)
        else:
            price = state.price
            minimum = price + steps[bisect_right(starts, price) - 1]
            if amount < minimum:
                raise bid_too_low(minimum)
            leader_max = state.leader_max
            if amount > leader_max:  # the bidder takes the lead
                candidate = leader_max + steps[bisect_right(starts, leader_max) - 1]
                if candidate > amount:
                    candidate = amount
                if reserve is not None and amount >= reserve > candidate:
                    candidate = reserve
                new_leader = bidder
            else:  # the leader's proxy answers; equal maxima: the earlier bid keeps the lead
                candidate = amount + steps[bisect_right(starts, amount) - 1]
                if candidate > leader_max:
                    candidate = leader_max
                new_leader = leader
            if candidate > price:
                price = candidate
            event = BidAccepted(state.lot_id, now_ms, bid_id, bidder, amount, price, new_leader, leader)
        if self.soft and deadline - now_ms < self.window:
            extended = self._extension(state, now_ms, deadline)
            if extended is not None:
                return [event, extended]
        return [event]

    @decides(PlaceBid)
    def _decide_bid_when_not_open(self, state: EnglishState, command: PlaceBid, now: int) -> list[Event]:
        """Reached only when `decide` did not take the inline path: the lot is not open."""
        if state.phase is Phase.OPEN:  # open without a close: not a state a proxy lot can reach
            raise AssertionError("an open proxy English lot always has a close deadline")
        raise refuse_not_open(state)

    def _extension(self, state: EnglishState, now: int, deadline: int) -> ClosingExtended | None:
        """Soft close: RESET moves the close to now + window, EXTEND adds the window; both stop at the cap."""
        original = deadline - state.extension_ms
        target = now + self.window if self.reset else deadline + self.window
        if self.cap:
            target = min(target, original + self.cap)
        if target <= deadline:
            return None
        return ClosingExtended(state.lot_id, now, target, target - original)

    def apply(self, state: EnglishState, event: Event) -> EnglishState:
        """A BidAccepted is applied inline here (the hot path); other events through the dispatch table."""
        if type(event) is not BidAccepted:
            self._appliers[type(event)](self, state, event)
            return state
        bidder = event.bidder
        leader = event.leader
        if leader != state.leader:  # a new leader: the old leader's maximum is now the runner-up's
            state.runner_up_max = state.leader_max
            state.leader_max = event.amount
            state.leader = leader
        elif bidder == leader:
            state.leader_max = event.amount
        else:
            state.runner_up_max = event.amount
        state.price = event.price
        state.maxima[bidder] = event.amount
        return state

    @applies(BidAccepted)
    def _apply_bid(self, state: EnglishState, event: BidAccepted) -> None:
        self.apply(state, event)

    @applies(ClosingExtended)
    def _apply_extended(self, state: EnglishState, event: ClosingExtended) -> None:
        state.deadline_ms = event.deadline_ms
        state.extension_ms = event.extension_ms
