"""Lucky-pick sale: bidders see the lot's options; the first to pick the winning one wins at the fixed price.

The winning option is FIXED (the seller's index) or SEEDED: drawn from the lot's seed for each
window (`prng.seeded_index(seed, salt, window)`), so every replay draws the same one. Each bidder
gets one pick per window. If a window runs out without a winner, or the winner defaults on
confirmation (penalised, and excluded from further picks), a new window opens - at most
`lucky_max_windows` windows in all (a `LotTerms.extra` key, default 3, 1..100); after the last one
the lot is unsold (`NO_WINNER`).
"""

from __future__ import annotations

from gavel_core.errors import FailedPrecondition, FieldViolation, InvalidArgument
from gavel_core.formats import LotTerms, LuckyParams, LuckyWinningRule
from room.domain.commands import OpenLot, PickOption
from room.domain.engine import Engine, applies, check_bid, decides, extra_int, refuse_not_open
from room.domain.events import Event, LotOpened, LotUnsold, LuckyWindowOpened, OptionPicked
from room.domain.model import Award, LuckyState, Phase, UnsoldReason
from room.domain.prng import LUCKY_OPTION_SALT, seeded_index

DEFAULT_MAX_WINDOWS = 3
MAX_WINDOWS = 100


class LuckyEngine(Engine[LuckyState]):
    __slots__ = ("max_windows", "params")
    state_type = LuckyState

    def __init__(self, terms: LotTerms) -> None:
        super().__init__(terms)
        params = terms.params
        assert isinstance(params, LuckyParams)
        self.params = params
        self.max_windows = extra_int(terms.extra, "lucky_max_windows", DEFAULT_MAX_WINDOWS, minimum=1)
        if self.max_windows > MAX_WINDOWS:
            raise InvalidArgument([FieldViolation("lot.extra.lucky_max_windows", f"at most {MAX_WINDOWS}")])

    def winning_option(self, window: int) -> int:
        if self.params.winning_rule is LuckyWinningRule.FIXED:
            return self.params.winning_option
        return seeded_index(self.terms.seed, LUCKY_OPTION_SALT, window, len(self.params.options))

    def _window(self, state: LuckyState, at: int, window: int) -> LuckyWindowOpened:
        return LuckyWindowOpened(state.lot_id, at, window, self.winning_option(window), at + self.params.window_ms)

    def _open(self, state: LuckyState, command: OpenLot, now: int) -> list[Event]:
        first = self._window(state, now, 1)
        return [
            LotOpened(state.lot_id, now, command.by, self.terms.format.value, self.params.price, first.deadline_ms),
            first,
        ]

    def _on_opened(self, state: LuckyState, event: LotOpened) -> None:
        state.price = event.asking

    def _next_window(self, state: LuckyState, at: int) -> list[Event]:
        if state.window >= self.max_windows:
            return [LotUnsold(state.lot_id, at, UnsoldReason.NO_WINNER.value)]
        return [self._window(state, at, state.window + 1)]

    def _on_deadline(self, state: LuckyState, at: int) -> list[Event]:
        return self._next_window(state, at)

    def _after_lapse(self, state: LuckyState, at: int, lapsed: Award) -> list[Event]:
        return self._next_window(state, at)

    @decides(PickOption)
    def _decide_pick(self, state: LuckyState, command: PickOption, now: int) -> list[Event]:
        if state.phase is not Phase.OPEN:
            raise refuse_not_open(state)
        check_bid(state, command.bid_id, command.bidder, self.params.price, command.standing)
        option = command.option
        if type(option) is not int or not 0 <= option < len(self.params.options):
            raise InvalidArgument(
                [FieldViolation("option", f"must index one of the {len(self.params.options)} options")]
            )
        if command.bidder in state.picked:
            raise FailedPrecondition("ALREADY_PICKED", "the bidder has already picked in this window")
        correct = option == state.winning_option
        picked = OptionPicked(state.lot_id, now, command.bid_id, command.bidder, option, correct)
        if not correct:
            return [picked]
        award = Award(command.bidder, self.params.price)
        return [picked, *self._conclude(state, now, award, UnsoldReason.NO_WINNER)]

    @applies(LuckyWindowOpened)
    def _apply_window(self, state: LuckyState, event: LuckyWindowOpened) -> None:
        state.phase = Phase.OPEN
        state.window = event.window
        state.winning_option = event.winning_option
        state.picked.clear()
        state.leader = None
        state.deadline_ms = event.deadline_ms

    @applies(OptionPicked)
    def _apply_pick(self, state: LuckyState, event: OptionPicked) -> None:
        state.bid_ids.add(event.bid_id)
        state.picked.add(event.bidder)
        if event.correct:
            state.leader = event.bidder
            state.deadline_ms = None
