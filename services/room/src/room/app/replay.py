"""Replaying lots offline: parse a JSON Lines file of lots and their commands, run each lot through
its engine, and report what it came to (the use case behind `gavel replay`; docs/replay.md).

Input lines (one JSON object per line; blank lines and lines starting with `#` are skipped):

    {"type":"lot","lot_id":"L1","format":"english","currency":"USD","opening_bid":9900,"reserve":null,
     "increments":[[0,5],[100,25]],"opens_at_ms":0,"closes_at_ms":259200000}
    {"type":"bid","lot_id":"L1","t_ms":1200,"bidder":"alice","max_amount":17500}

A lot line takes every `LotTerms` field and every parameter of its format (`room.domain.codec`),
plus `opens_at_ms` (default 0), `closes_at_ms` (HARD/SOFT English: sets `duration_ms`) and, for
a lucky lot, `draw_secret` (hex; default: derived from the lot id and seed - fine offline, where
nobody is kept from predicting the draw; the room draws it at random).
Command lines name their lot and `t_ms`; besides `bid` (with `paddle`, `device_id`, `force`,
`press_ms` it is a floor bid) there are `buy_now`, `pick` (`option`), `confirm`/`decline`
(`bidder`), `vendor_accept`/`vendor_decline`, `pause`/`resume`, `tick`, and `crier` with
`action` one of asking, increment (`amount`), going_once, going_twice, hammer, pass, reopen, undo.
`bid_id` is optional (default `<lot_id>#<line>`).

Every lot opens at `opens_at_ms`; its commands run in `t_ms` order (ties in file order); then time
runs on through every pending deadline (close, rounds, ticks, confirmation timeouts).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gavel_core.errors import FailedPrecondition, GavelError, InvalidArgument, PermissionDenied
from gavel_core.formats import EnglishClose, LotTerms
from room.domain import (
    AnyEngine,
    BuyNow,
    CallGoingOnce,
    CallGoingTwice,
    Command,
    ConfirmWin,
    DeclineWin,
    Event,
    FloorBid,
    Hammer,
    LotState,
    OpenLot,
    PassLot,
    Pause,
    PickOption,
    PlaceBid,
    Reopen,
    Resume,
    SetAsking,
    SetIncrement,
    Tick,
    UndoLastBid,
    VendorAccept,
    VendorDecline,
    engine_for,
    event_from_dict,
    event_to_dict,
    next_deadline_ms,
    state_hash,
    summarize,
    terms_from_dict,
    terms_to_dict,
)

BID_KINDS = frozenset({"bid", "buy_now", "pick"})
LOT_KEYS = ("type", "lot_id", "opens_at_ms", "closes_at_ms", "draw_secret")


class ReplayInputError(Exception):
    """A malformed input line: `line` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(slots=True)
class Action:
    kind: str
    t_ms: int
    line: int
    command: Command


@dataclass(slots=True)
class LotSpec:
    lot_id: str
    terms: LotTerms
    engine: AnyEngine
    opens_at_ms: int
    line: int
    draw_secret: bytes = b""
    actions: list[Action] = field(default_factory=list)


@dataclass(slots=True)
class LotRun:
    spec: LotSpec
    state: LotState
    events: list[Event]
    bids_accepted: int = 0
    bids_rejected: int = 0
    rejections: list[dict[str, Any]] = field(default_factory=list)

    def result(self, *, detail: bool = False) -> dict[str, Any]:
        summary = summarize(self.state)
        out: dict[str, Any] = {
            "lot_id": self.spec.lot_id,
            "outcome": summary["outcome"],
            "winner": summary["winner"],
            "price": summary["price"],
            "bids_accepted": self.bids_accepted,
            "bids_rejected": self.bids_rejected,
        }
        if detail:
            out["reason"] = summary["reason"]
            out["events"] = len(self.events)
            out["state_hash"] = state_hash(self.state)
            out["rejections"] = self.rejections
        return out


def _json_lines(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReplayInputError(number, f"not valid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(data, dict):
            raise ReplayInputError(number, "each line must be a JSON object")
        yield number, data


def _get(data: dict[str, Any], key: str, kind: type, line: int, default: Any = ...) -> Any:
    if key not in data:
        if default is ...:
            raise ReplayInputError(line, f"missing {key!r}")
        return default
    value = data[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ReplayInputError(line, f"{key!r} must be an integer")
    if kind is str and not isinstance(value, str):
        raise ReplayInputError(line, f"{key!r} must be a string")
    return value


def _describe(error: InvalidArgument) -> str:
    return "; ".join(f"{v.field}: {v.description}" for v in error.violations)


def offline_draw_secret(lot_id: str, seed: int) -> bytes:
    """The draw secret of a replayed lot that names none: reproducible, so predictable - offline only."""
    return hashlib.sha256(f"gavel replay offline draw:{lot_id}:{seed}".encode()).digest()


def _draw_secret(data: dict[str, Any], line: int, lot_id: str, terms: LotTerms, engine: AnyEngine) -> bytes:
    if not engine.needs_draw_secret:
        return b""
    given = _get(data, "draw_secret", str, line, None)
    if given is None:
        return offline_draw_secret(lot_id, terms.seed)
    try:
        secret = bytes.fromhex(given)
    except ValueError:
        secret = b""
    if len(secret) < 16:
        raise ReplayInputError(line, "'draw_secret' must be at least 16 bytes in hex")
    return secret


def parse_lot(data: dict[str, Any], line: int, *, recorded: bool = False) -> LotSpec:
    """A lot line; `recorded`: from an event log, so retired rules are accepted (they replay)."""
    lot_id = _get(data, "lot_id", str, line)
    if not lot_id:
        raise ReplayInputError(line, "'lot_id' must not be empty")
    opens_at = _get(data, "opens_at_ms", int, line, 0)
    closes_at = _get(data, "closes_at_ms", int, line, None)
    spec = {key: value for key, value in data.items() if key not in LOT_KEYS}
    spec.setdefault("format", "english")
    close = spec.get("close", EnglishClose.HARD.value)
    if spec["format"] == "english" and close in ("hard", "soft") and "duration_ms" not in spec:
        if closes_at is None:
            raise ReplayInputError(line, "an English lot with a hard or soft close needs 'closes_at_ms'")
        spec["duration_ms"] = closes_at - opens_at
    try:
        terms = terms_from_dict(spec)
        engine = engine_for(terms, recorded=recorded)
    except InvalidArgument as exc:
        raise ReplayInputError(line, f"invalid lot {lot_id!r}: {_describe(exc)}") from None
    except FailedPrecondition as exc:
        raise ReplayInputError(line, f"invalid lot {lot_id!r}: {exc.message}") from None
    return LotSpec(lot_id, terms, engine, opens_at, line, _draw_secret(data, line, lot_id, terms, engine))


def _bid_id(data: dict[str, Any], line: int, lot_id: str) -> str:
    value: str = _get(data, "bid_id", str, line, f"{lot_id}#{line}")
    return value


CRIER_ACTIONS: dict[str, Callable[[str, dict[str, Any], int], Command]] = {
    "asking": lambda by, d, line: SetAsking(by, _get(d, "amount", int, line)),
    "increment": lambda by, d, line: SetIncrement(by, _get(d, "amount", int, line, None)),
    "going_once": lambda by, d, line: CallGoingOnce(by),
    "going_twice": lambda by, d, line: CallGoingTwice(by),
    "hammer": lambda by, d, line: Hammer(by),
    "pass": lambda by, d, line: PassLot(by),
    "reopen": lambda by, d, line: Reopen(by),
    "undo": lambda by, d, line: UndoLastBid(by),
}


def parse_command(kind: str, data: dict[str, Any], line: int, lot_id: str) -> Command:
    """The domain command a replay line stands for."""
    if kind == "bid":
        bidder = _get(data, "bidder", str, line)
        if "paddle" in data:
            paddle = _get(data, "paddle", str, line)
            return FloorBid(
                _bid_id(data, line, lot_id),
                bidder,
                paddle,
                _get(data, "device_id", str, line, paddle),
                _get(data, "force", int, line, 0),
                _get(data, "press_ms", int, line, 0),
            )
        return PlaceBid(_bid_id(data, line, lot_id), bidder, _get(data, "max_amount", int, line))
    if kind == "buy_now":
        return BuyNow(_bid_id(data, line, lot_id), _get(data, "bidder", str, line))
    if kind == "pick":
        return PickOption(_bid_id(data, line, lot_id), _get(data, "bidder", str, line), _get(data, "option", int, line))
    if kind == "confirm":
        return ConfirmWin(_get(data, "bidder", str, line))
    if kind == "decline":
        return DeclineWin(_get(data, "bidder", str, line))
    if kind == "vendor_accept":
        return VendorAccept(_get(data, "by", str, line, "vendor"))
    if kind == "vendor_decline":
        return VendorDecline(_get(data, "by", str, line, "vendor"))
    if kind == "pause":
        return Pause(_get(data, "by", str, line, "admin"))
    if kind == "resume":
        return Resume(_get(data, "by", str, line, "admin"))
    if kind == "tick":
        return Tick()
    if kind == "crier":
        action = _get(data, "action", str, line)
        build = CRIER_ACTIONS.get(action)
        if build is None:
            raise ReplayInputError(line, f"unknown crier action {action!r}; one of {sorted(CRIER_ACTIONS)}")
        return build(_get(data, "by", str, line, "crier"), data, line)
    raise ReplayInputError(line, f"unknown line type {kind!r}")


def parse(lines: Iterable[str]) -> list[LotSpec]:
    """Every lot of an input file with its commands, in file order; ReplayInputError on bad input."""
    lots: dict[str, LotSpec] = {}
    for line, data in _json_lines(lines):
        kind = data.get("type")
        if not isinstance(kind, str):
            raise ReplayInputError(line, "missing 'type'")
        if kind == "lot":
            spec = parse_lot(data, line)
            if spec.lot_id in lots:
                raise ReplayInputError(
                    line, f"lot {spec.lot_id!r} is declared twice (first on line {lots[spec.lot_id].line})"
                )
            lots[spec.lot_id] = spec
            continue
        lot_id = _get(data, "lot_id", str, line)
        owner = lots.get(lot_id)
        if owner is None:
            raise ReplayInputError(line, f"lot {lot_id!r} is not declared on an earlier line")
        t_ms = _get(data, "t_ms", int, line)
        owner.actions.append(Action(kind, t_ms, line, parse_command(kind, data, line, lot_id)))
    return list(lots.values())


def _rejection(action: Action, error: GavelError) -> dict[str, Any]:
    entry: dict[str, Any] = {"line": action.line, "error": type(error).__name__, "message": error.message}
    if isinstance(error, FailedPrecondition):
        entry["reason"] = error.reason
        entry.update(error.metadata)
    elif isinstance(error, PermissionDenied):
        entry["reason"] = error.reason
    return entry


def run_lot(spec: LotSpec) -> LotRun:
    """Open the lot, run its commands in time order (ties in file order), then every pending deadline."""
    engine = spec.engine
    state = engine.initial_state(spec.lot_id, spec.draw_secret)
    run = LotRun(spec, state, [])
    opening = Action("open", spec.opens_at_ms, spec.line, OpenLot("crier" if engine.takes_asking else "system"))
    # Stable sort: file order among equal times, and the opening before the commands at its time.
    for action in sorted([opening, *spec.actions], key=lambda action: action.t_ms):
        try:
            events = engine.decide(state, action.command, action.t_ms)
        except GavelError as exc:
            if action.kind in BID_KINDS:
                run.bids_rejected += 1
            run.rejections.append(_rejection(action, exc))
            continue
        if action.kind in BID_KINDS:
            run.bids_accepted += 1
        for event in events:
            engine.apply(state, event)
        run.events.extend(events)
    while (deadline := next_deadline_ms(state)) is not None:
        events = engine.decide(state, Tick(), deadline)
        for event in events:
            engine.apply(state, event)
        run.events.extend(events)
    return run


def replay(lines: Iterable[str], *, detail: bool = False) -> list[dict[str, Any]]:
    return [run_lot(spec).result(detail=detail) for spec in parse(lines)]


# -- recorded event logs --------------------------------------------------------------------------


def lot_line(spec: LotSpec) -> dict[str, Any]:
    """The lot as an event log declares it: terms in full, and the draw secret (the log is internal)."""
    line = {"type": "lot", "lot_id": spec.lot_id, **terms_to_dict(spec.terms)}
    if spec.draw_secret:
        line["draw_secret"] = spec.draw_secret.hex()
    return line


def event_log_lines(runs: Iterable[LotRun]) -> Iterator[str]:
    """A replayable event log: each lot's definition, then its events, as JSON Lines."""
    for run in runs:
        yield json.dumps(lot_line(run.spec), separators=(",", ":"))
        for event in run.events:
            yield json.dumps(event_to_dict(event), separators=(",", ":"))


def replay_events(lines: Iterable[str]) -> list[dict[str, Any]]:
    """Rebuild each lot of an event log from its events alone; its summary, event count and state hash."""
    lots: dict[str, tuple[LotSpec, list[Event]]] = {}
    for line, data in _json_lines(lines):
        if data.get("type") == "lot":
            spec = parse_lot(data, line, recorded=True)
            if spec.lot_id in lots:
                raise ReplayInputError(line, f"lot {spec.lot_id!r} is declared twice")
            lots[spec.lot_id] = (spec, [])
            continue
        try:
            event = event_from_dict(data)
        except InvalidArgument as exc:
            raise ReplayInputError(line, f"bad event: {_describe(exc)}") from None
        entry = lots.get(event.lot_id)
        if entry is None:
            raise ReplayInputError(line, f"lot {event.lot_id!r} is not declared on an earlier line")
        entry[1].append(event)
    results = []
    for spec, events in lots.values():
        try:
            state = spec.engine.replay(spec.lot_id, events, spec.draw_secret)
        except (KeyError, AttributeError, AssertionError, TypeError) as exc:
            raise ReplayInputError(spec.line, f"the events of lot {spec.lot_id!r} do not replay: {exc!r}") from None
        summary = summarize(state)
        results.append(
            {
                "lot_id": spec.lot_id,
                "outcome": summary["outcome"],
                "winner": summary["winner"],
                "price": summary["price"],
                "reason": summary["reason"],
                "phase": state.phase.value,
                "events": len(events),
                "state_hash": state_hash(state),
            }
        )
    return results
