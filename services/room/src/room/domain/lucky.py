"""Lucky-pick sale: bidders see the lot's options; the first to pick the winning one wins at the fixed price.

The specification has the seller set only the price while the server sets the winning condition
("판매자가 경매등록시 상품의 가격만 설정하면, 경매서버에서 소정의 낙찰조건을 설정"), so the room draws the
winning option from a secret of its own (`room.domain.draws`; the seed does not enter: the seller
can read it) and proves it drew early: every window opens with a public commitment to the option,
and the lot's close reveals what each commitment hid (`LuckyDrawRevealed`).

DRAWN (the specification's S541: the condition is set once, before the first window) draws one
option for the lot; DRAWN_PER_WINDOW draws afresh for every window. The retired rules FIXED (the
seller's index) and SEEDED (from the seed) are only replayed from logs recorded with them, and
finish if they were already open; such a lot that has not opened yet never opens
(`WINNING_RULE_RETIRED`).

Each bidder gets one pick per window. If a window runs out without a winner, or the winner defaults
on confirmation (penalised only if they were the lot's first provisional winner, and excluded from
further picks), a new window opens - at most `lucky_max_windows` windows in all (a `LotTerms.extra`
key, default 3, 1..100); after the last one the lot is unsold (`NO_WINNER`).
"""

from __future__ import annotations

from gavel_core.errors import FailedPrecondition, FieldViolation, InvalidArgument
from gavel_core.formats import RETIRED_LUCKY_RULES, LotTerms, LuckyParams, LuckyWinningRule
from room.domain import draws
from room.domain.commands import Command, OpenLot, PickOption
from room.domain.engine import Engine, applies, check_bid, decides, extra_int, refuse_not_open
from room.domain.events import (
    Event,
    LotOpened,
    LotSold,
    LotUnsold,
    LuckyDrawRevealed,
    LuckyWindowOpened,
    OptionPicked,
)
from room.domain.model import Award, LuckyState, Phase, UnsoldReason
from room.domain.prng import LUCKY_OPTION_SALT, seeded_index

DEFAULT_MAX_WINDOWS = 3
MAX_WINDOWS = 100


class LuckyEngine(Engine[LuckyState]):
    __slots__ = ("max_windows", "params", "per_window", "retired")
    state_type = LuckyState

    def __init__(self, terms: LotTerms) -> None:
        super().__init__(terms)
        params = terms.params
        assert isinstance(params, LuckyParams)
        self.params = params
        self.max_windows = extra_int(terms.extra, "lucky_max_windows", DEFAULT_MAX_WINDOWS, minimum=1)
        if self.max_windows > MAX_WINDOWS:
            raise InvalidArgument([FieldViolation("lot.extra.lucky_max_windows", f"at most {MAX_WINDOWS}")])
        self.retired = params.winning_rule in RETIRED_LUCKY_RULES
        self.per_window = params.winning_rule is LuckyWinningRule.DRAWN_PER_WINDOW

    @property
    def needs_draw_secret(self) -> bool:
        return not self.retired

    def initial_state(self, lot_id: str, draw_secret: bytes = b"") -> LuckyState:
        state = super().initial_state(lot_id, draw_secret)
        if self.retired:
            return state
        if len(draw_secret) < draws.MIN_SECRET_BYTES:
            raise InvalidArgument(
                [
                    FieldViolation(
                        "draw_secret", f"a lucky lot needs the room's secret of at least {draws.MIN_SECRET_BYTES} bytes"
                    )
                ]
            )
        state.draw_secret = draw_secret.hex()
        return state

    def _draw_number(self, window: int) -> int:
        return window if self.per_window else 1

    def _window(self, state: LuckyState, at: int, window: int) -> LuckyWindowOpened:
        deadline = at + self.params.window_ms
        rule = self.params.winning_rule
        if rule is LuckyWinningRule.FIXED:
            return LuckyWindowOpened(state.lot_id, at, window, self.params.winning_option, deadline)
        count = len(self.params.options)
        if rule is LuckyWinningRule.SEEDED:
            return LuckyWindowOpened(
                state.lot_id, at, window, seeded_index(self.terms.seed, LUCKY_OPTION_SALT, window, count), deadline
            )
        draw = self._draw_number(window)
        option, nonce = draws.drawn_option(bytes.fromhex(state.draw_secret), state.lot_id, draw, count)
        return LuckyWindowOpened(
            state.lot_id, at, window, option, deadline, draws.commitment(state.lot_id, draw, option, nonce)
        )

    def _reveals(self, state: LuckyState, at: int, last_window: int) -> list[Event]:
        """What every commitment made so far hid: draw 1, or one draw per window opened."""
        secret = bytes.fromhex(state.draw_secret)
        count = len(self.params.options)
        revealed: list[Event] = []
        for draw in range(1, (last_window if self.per_window else min(last_window, 1)) + 1):
            option, nonce = draws.drawn_option(secret, state.lot_id, draw, count)
            committed = draws.commitment(state.lot_id, draw, option, nonce)
            revealed.append(LuckyDrawRevealed(state.lot_id, at, draw, option, nonce, committed))
        return revealed

    def decide(self, state: LuckyState, command: Command, now_ms: int) -> list[Event]:
        """Whatever closes the lot (a sale, the last window, the cascade running out) is followed by
        the reveals, in the same decision, so no log has a closed lucky lot with its draws hidden."""
        events = super().decide(state, command, now_ms)
        if self.retired or state.revealed:
            return events
        closed = next((e for e in events if type(e) is LotSold or type(e) is LotUnsold), None)
        if closed is None or any(type(e) is LuckyDrawRevealed for e in events):
            return events  # still running, or revealed already by the inner decision after a deadline
        last_window = max([state.window, *(e.window for e in events if type(e) is LuckyWindowOpened)])
        return [*events, *self._reveals(state, closed.at_ms, last_window)]

    def _open(self, state: LuckyState, command: OpenLot, now: int) -> list[Event]:
        if self.retired:  # configured before the room drew the option: it may finish, never start
            raise FailedPrecondition(
                "WINNING_RULE_RETIRED",
                f"the lot's winning option is {self.params.winning_rule.value} (retired: not drawn by the room);"
                " configure the lot again",
                {"winning_rule": self.params.winning_rule.value},
            )
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

    @applies(LuckyDrawRevealed)
    def _apply_revealed(self, state: LuckyState, event: LuckyDrawRevealed) -> None:
        state.revealed = True
