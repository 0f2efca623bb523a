"""Round-limited English (`EnglishClose.ROUNDS`): up to R timed rounds of open bidding.

Bids are plain amounts (no proxy) and the winner pays their own bid. The rules follow the
Korean real-time auction specification (docs/auction-formats.md):

- Round 1: a bid must be at least the opening bid ("경매시작가 이상").
- Round r > 1: at or above the previous round's highest ("이전 비딩단계의 최고 제시가 이상").
- Within a round a bid must be at or above the round's highest so far (the standing price never
  falls); a higher bid takes the lead, an equal one does not: the earlier of equal bids leads. The
  round's leader cannot bid against themselves.
- With `rounds_beat_by_increment` (off by default) every bid must instead beat the highest so far
  (the previous round's, then the round's) by an increment from the table at that amount.
- A round with no bid ends the auction: in round 1 unsold, later the previous round's highest
  wins. After round R the last round's highest wins. The reserve and the confirmation cascade
  apply as in every English lot; the cascade offers the earlier of equal bids first.
"""

from __future__ import annotations

from gavel_core.errors import FailedPrecondition
from gavel_core.formats import LotTerms
from room.domain.commands import OpenLot, PlaceBid
from room.domain.engine import applies, bid_too_low, check_bid, decides, refuse_not_open
from room.domain.english import EnglishFamilyEngine
from room.domain.events import BidAccepted, Event, LotOpened, RoundEnded
from room.domain.model import Award, Phase, RoundsState, UnsoldReason


class RoundsEngine(EnglishFamilyEngine[RoundsState]):
    __slots__ = ("beat_by_increment", "round_ms", "rounds")
    state_type = RoundsState

    def __init__(self, terms: LotTerms) -> None:
        super().__init__(terms)
        self.rounds = self.params.rounds
        self.round_ms = self.params.round_duration_ms
        self.beat_by_increment = self.params.rounds_beat_by_increment

    def _open(self, state: RoundsState, command: OpenLot, now: int) -> list[Event]:
        return [LotOpened(state.lot_id, now, command.by, self.terms.format.value, self.opening, now + self.round_ms)]

    def _on_opened(self, state: RoundsState, event: LotOpened) -> None:
        state.round = 1
        state.round_floor = event.asking

    def minimum_bid(self, state: RoundsState) -> int:
        """The lowest bid the round accepts now (from anyone but the round's leader)."""
        high = state.round_high
        if not high:
            return state.round_floor
        return high + self.step(high) if self.beat_by_increment else max(high, state.round_floor)

    @decides(PlaceBid)
    def _decide_bid(self, state: RoundsState, command: PlaceBid, now: int) -> list[Event]:
        if state.phase is not Phase.OPEN:
            raise refuse_not_open(state)
        amount = command.max_amount
        check_bid(state, command.bid_id, command.bidder, amount, command.standing)
        if command.bidder == state.round_leader:
            raise FailedPrecondition("ALREADY_LEADING", "the bidder already holds this round's highest bid")
        minimum = self.minimum_bid(state)
        if amount < minimum:
            raise bid_too_low(minimum)
        if state.round_leader is not None and amount <= state.round_high:  # equal: the earlier bid leads
            leader, price = state.round_leader, state.price
        else:
            leader, price = command.bidder, amount
        return [BidAccepted(state.lot_id, now, command.bid_id, command.bidder, amount, price, leader, state.leader)]

    def _on_deadline(self, state: RoundsState, at: int) -> list[Event]:
        high, leader, number = state.round_high, state.round_leader, state.round
        if not high or leader is None:
            ended = RoundEnded(state.lot_id, at, number, None, None, None)
            previous = None if state.prev_leader is None else Award(state.prev_leader, state.prev_high)
            return [ended, *self._conclude(state, at, previous, UnsoldReason.NO_BIDS)]
        if number >= self.rounds:
            ended = RoundEnded(state.lot_id, at, number, high, leader, None)
            return [ended, *self._conclude(state, at, Award(leader, high), UnsoldReason.NO_BIDS)]
        return [RoundEnded(state.lot_id, at, number, high, leader, at + self.round_ms)]

    @applies(BidAccepted)
    def _apply_bid(self, state: RoundsState, event: BidAccepted) -> None:
        if event.leader == event.bidder:
            state.round_high = event.amount
            state.round_leader = event.bidder
        state.price = event.price
        state.leader = event.leader
        maxima = state.maxima
        if maxima.get(event.bidder) != event.amount:  # a bidder's bids never fall: this one is higher
            maxima.pop(event.bidder, None)  # to the end: among equal bids the cascade offers the earliest
            maxima[event.bidder] = event.amount
        state.bid_ids.add(event.bid_id)

    @applies(RoundEnded)
    def _apply_round_ended(self, state: RoundsState, event: RoundEnded) -> None:
        state.deadline_ms = event.next_deadline_ms
        if event.next_deadline_ms is None or event.highest is None:
            return
        state.round += 1
        state.prev_high = event.highest
        state.prev_leader = event.leader
        state.round_floor = event.highest + self.step(event.highest) if self.beat_by_increment else event.highest
        state.round_high = 0
        state.round_leader = None
