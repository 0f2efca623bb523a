"""Builders of lot terms and a small harness that decides and applies commands like the room does."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

import pytest

from gavel_core.errors import GavelError
from gavel_core.formats import (
    DutchParams,
    DutchStepMode,
    EnglishClose,
    EnglishParams,
    Format,
    LotTerms,
    LuckyParams,
    LuckyWinningRule,
    SoftCloseMode,
)
from gavel_core.increments import IncrementTable
from room.domain import (
    AnyEngine,
    Command,
    Event,
    LotState,
    OpenLot,
    PlaceBid,
    Tick,
    engine_for,
    state_hash,
)

TABLE = IncrementTable.of([[0, 5], [100, 25]])
FLAT_100 = IncrementTable.of([[0, 100]])
HOUR = 3_600_000


def terms(
    params: Any, fmt: Format, *, confirm_ms: int = 0, seed: int = 0, extra: dict[str, str] | None = None
) -> LotTerms:
    return LotTerms(
        currency="USD", format=fmt, params=params, confirmation_timeout_ms=confirm_ms, seed=seed, extra=extra or {}
    )


def english(
    opening_bid: int = 1_000, increments: IncrementTable = FLAT_100, duration_ms: int = HOUR, **kwargs: Any
) -> LotTerms:
    lot_kwargs = {k: kwargs.pop(k) for k in ("confirm_ms", "seed", "extra") if k in kwargs}
    params = EnglishParams(opening_bid=opening_bid, increments=increments, duration_ms=duration_ms, **kwargs)
    return terms(params, Format.ENGLISH, **lot_kwargs)


def soft(
    window_ms: int = 60_000, mode: SoftCloseMode = SoftCloseMode.RESET, cap_ms: int = 0, **kwargs: Any
) -> LotTerms:
    return english(
        close=EnglishClose.SOFT,
        soft_close_window_ms=window_ms,
        soft_close_mode=mode,
        soft_close_max_extension_ms=cap_ms,
        **kwargs,
    )


def rounds(count: int = 3, round_ms: int = 10_000, **kwargs: Any) -> LotTerms:
    return english(close=EnglishClose.ROUNDS, rounds=count, round_duration_ms=round_ms, duration_ms=0, **kwargs)


def crier(grace_ms: int = 0, policy: list[dict[str, int]] | None = None, **kwargs: Any) -> LotTerms:
    if policy is not None:
        kwargs["extra"] = {**kwargs.get("extra", {}), "paddle_policy": json.dumps(policy)}
    return english(close=EnglishClose.CRIER, reopen_grace_ms=grace_ms, duration_ms=0, **kwargs)


def dutch(
    start: int = 10_000,
    floor: int = 5_000,
    tick_ms: int = 1_000,
    step: int = 1_000,
    random_steps: int = 0,
    steps: tuple[int, ...] = (),
    **lot_kwargs: Any,
) -> LotTerms:
    random = bool(random_steps or steps)
    mode = DutchStepMode.RANDOM if random else DutchStepMode.FIXED
    params = DutchParams(start, floor, tick_ms, mode, 0 if random else step, random_steps, steps)
    return terms(params, Format.DUTCH, **lot_kwargs)


def lucky(
    options: tuple[str, ...] = ("red", "green", "blue"),
    price: int = 2_000,
    window_ms: int = 10_000,
    rule: LuckyWinningRule = LuckyWinningRule.DRAWN,
    winning_option: int = 0,
    **lot_kwargs: Any,
) -> LotTerms:
    params = LuckyParams(options, price, window_ms, rule, winning_option)
    return terms(params, Format.LUCKY, **lot_kwargs)


DRAW_SECRET = bytes(range(32))  # what the room would draw with `secrets` (lucky lots)


class Lot:
    """One lot driven through its engine: `do` decides and applies, keeping the event log.
    `recorded`: the terms come from a log (retired rules allowed), as when a room rebuilds a lot."""

    def __init__(
        self, lot_terms: LotTerms, lot_id: str = "lot-1", draw_secret: bytes = DRAW_SECRET, *, recorded: bool = False
    ) -> None:
        self.engine: AnyEngine = engine_for(lot_terms, recorded=recorded)
        self.draw_secret = draw_secret
        self.state: LotState = self.engine.initial_state(lot_id, draw_secret)
        self.events: list[Event] = []
        self._bids = 0

    def do(self, command: Command, at: int) -> list[Event]:
        before = state_hash(self.state)
        try:
            events = self.engine.decide(self.state, command, at)
        finally:
            assert state_hash(self.state) == before, "decide must not change the state"
        for event in events:
            self.engine.apply(self.state, event)
        self.events.extend(events)
        return events

    def open(self, at: int = 0, **kwargs: Any) -> list[Event]:
        return self.do(OpenLot(**kwargs), at)

    def bid(self, bidder: str, amount: int, at: int, bid_id: str | None = None) -> list[Event]:
        self._bids += 1
        return self.do(PlaceBid(bid_id or f"bid-{self._bids}", bidder, amount), at)

    def tick(self, at: int) -> list[Event]:
        return self.do(Tick(), at)

    def refused(self, command: Command, at: int) -> GavelError:
        with pytest.raises(GavelError) as caught:
            self.do(command, at)
        return caught.value

    def refused_bid(self, bidder: str, amount: int, at: int, bid_id: str | None = None) -> GavelError:
        self._bids += 1
        return self.refused(PlaceBid(bid_id or f"bid-{self._bids}", bidder, amount), at)

    def replayed(self) -> LotState:
        return self.engine.replay(self.state.lot_id, self.events, self.draw_secret)

    def of_type(self, event_type: type[Event]) -> list[Any]:
        return [event for event in self.events if type(event) is event_type]

    @property
    def price(self) -> int:
        return self.state.price

    @property
    def leader(self) -> str | None:
        return self.state.leader


def names(events: list[Event]) -> list[str]:
    return [type(event).__name__ for event in events]


def reason(error: GavelError) -> str:
    value: str = getattr(error, "reason", type(error).__name__)
    return value


def shifted(event: Event, by: int) -> Event:
    """The event with every absolute time moved by `by` (for the wall-clock independence checks)."""
    values = {}
    for f in fields(event):
        value = getattr(event, f.name)
        if f.name in ("at_ms", "deadline_ms", "next_deadline_ms") and value is not None:
            value += by
        values[f.name] = value
    return type(event)(**values)
