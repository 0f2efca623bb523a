"""Dutch (descending) auction: the price falls on a clock and the first bidder to take it wins.

At open the price is `start_price`; every `tick_ms` it drops: FIXED by `step` (the price after k
ticks is start - k*step), RANDOM by the next of a list of steps, presented in an order drawn from
the lot's seed. The list is the seller's (`steps`, a multiset adding up to the start price, as the
specification composes "경매시작가를 복수의 호가의 합으로") or, with `random_steps`, the drop from
start to floor split into that many steps from the seed. Reaching the floor ends the lot unsold.
A `PlaceBid` whose `max_amount` is at least the current price takes the lot at the current price.
If a winner defaults on confirmation the descent resumes on the lot's schedule: the next lower
price at once, for a full tick; if that is the floor the lot ends unsold.
"""

from __future__ import annotations

from gavel_core.errors import FieldViolation, InvalidArgument
from gavel_core.formats import DutchParams, DutchStepMode, LotTerms
from room.domain.commands import OpenLot, PlaceBid
from room.domain.engine import Engine, applies, bid_too_low, check_bid, decides, refuse_not_open, require_amount
from room.domain.events import BidAccepted, BiddingReopened, Event, LotOpened, LotUnsold, PriceDropped
from room.domain.model import Award, DutchState, Phase, UnsoldReason
from room.domain.prng import DUTCH_ORDER_SALT, DUTCH_STEPS_SALT, random_composition, shuffled

MAX_RANDOM_STEPS = 1_000_000  # the steps are drawn once per engine; keep that bounded


class DutchEngine(Engine[DutchState]):
    __slots__ = ("params", "steps")
    state_type = DutchState

    def __init__(self, terms: LotTerms) -> None:
        super().__init__(terms)
        params = terms.params
        assert isinstance(params, DutchParams)
        self.params = params
        self.steps: tuple[int, ...] = ()
        if params.step_mode is DutchStepMode.RANDOM and params.steps:
            # A multiset: the order given plays no part, only the seed's.
            self.steps = shuffled(sorted(params.steps), terms.seed ^ DUTCH_ORDER_SALT)
        elif params.step_mode is DutchStepMode.RANDOM:
            if params.random_steps > MAX_RANDOM_STEPS:
                raise InvalidArgument(
                    [FieldViolation("lot.dutch.random_steps", f"at most {MAX_RANDOM_STEPS} random steps")]
                )
            drop = params.start_price - params.floor_price
            self.steps = random_composition(drop, params.random_steps, terms.seed ^ DUTCH_STEPS_SALT)

    def price_after(self, state: DutchState, tick: int) -> int:
        """The price once the clock has dropped `tick` times (one more than `state.tick`); at or
        below the floor means the descent is over (the steps always reach it: they add up to the
        start price, or to the drop from start to floor)."""
        steps = self.steps
        if steps:
            return state.price - steps[tick - 1] if tick <= len(steps) else self.params.floor_price
        return self.params.start_price - tick * self.params.step

    def _next_count(self, state: DutchState, at: int) -> PriceDropped | LotUnsold:
        tick = state.tick + 1
        price = self.price_after(state, tick)
        if price <= self.params.floor_price:
            return LotUnsold(state.lot_id, at, UnsoldReason.FLOOR_REACHED.value)
        return PriceDropped(state.lot_id, at, price, tick, at + self.params.tick_ms)

    def _open(self, state: DutchState, command: OpenLot, now: int) -> list[Event]:
        p = self.params
        return [LotOpened(state.lot_id, now, command.by, self.terms.format.value, p.start_price, now + p.tick_ms)]

    def _on_opened(self, state: DutchState, event: LotOpened) -> None:
        state.price = event.asking

    def _on_deadline(self, state: DutchState, at: int) -> list[Event]:
        return [self._next_count(state, at)]

    @decides(PlaceBid)
    def _decide_take(self, state: DutchState, command: PlaceBid, now: int) -> list[Event]:
        if state.phase is not Phase.OPEN:
            raise refuse_not_open(state)
        price = state.price
        check_bid(state, command.bid_id, command.bidder, price, command.standing)
        if require_amount(command.max_amount, "max_amount") < price:
            raise bid_too_low(price)
        taken = BidAccepted(
            state.lot_id, now, command.bid_id, command.bidder, command.max_amount, price, command.bidder, None
        )
        return [taken, *self._conclude(state, now, Award(command.bidder, price), UnsoldReason.NO_BIDS)]

    def _after_lapse(self, state: DutchState, at: int, lapsed: Award) -> list[Event]:
        """The specification returns to the descending step after a default: the next count
        presents the next lower price, and if that is the floor the auction ends with no winner.
        The defaulted price is never offered again (a later taker would pay what the defaulter
        refused). The next count starts now, with a full tick: the confirmation outlasts the tick
        it was taken in, and the specification sets "the next bidding time" at this point."""
        following = self._next_count(state, at)
        if isinstance(following, LotUnsold):
            return [following]
        return [BiddingReopened(state.lot_id, at, following.price, following.next_deadline_ms, following.tick)]

    @applies(BidAccepted)
    def _apply_taken(self, state: DutchState, event: BidAccepted) -> None:
        state.bid_ids.add(event.bid_id)
        state.leader = event.bidder
        state.deadline_ms = None

    @applies(PriceDropped)
    def _apply_dropped(self, state: DutchState, event: PriceDropped) -> None:
        state.price = event.price
        state.tick = event.tick
        state.deadline_ms = event.next_deadline_ms

    @applies(BiddingReopened)
    def _apply_reopened(self, state: DutchState, event: BiddingReopened) -> None:
        state.phase = Phase.OPEN
        state.price = event.price
        if event.tick is not None:  # None: a log from before the descent resumed (same price, same tick)
            state.tick = event.tick
        state.leader = None
        state.deadline_ms = event.deadline_ms
