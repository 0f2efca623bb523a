"""The one interface every live format implements, and the mechanics they all share.

    events = engine.decide(state, command, now_ms)   # pure: raises a typed rejection or returns facts
    for event in events:
        engine.apply(state, event)                   # the only mutator; returns the state
    state_hash(state)                                # sha256 of a canonical encoding
    next_deadline_ms(state)                          # when the room must send Tick()

Written once here: deadlines kept in state and fired by `Tick` (or by any later command: a due
deadline is fired first, so a bid that arrives after the close without an intervening tick sees
the closed lot), the confirmation cascade, pause/resume, the vendor's decisions, eligibility and
duplicate-bid checks, and the conclusion of a lot (reserve, vendor offer, provisional winner,
sale). Formats add their own commands, events and what happens at their deadline.

Deadline events are stamped with the deadline itself, not the tick's arrival, and a lot's
behaviour depends on times only through differences, so outcomes do not depend on timer jitter
or on the wall clock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import fields
from enum import Enum
from typing import Any, ClassVar, Generic, TypeVar

from gavel_core.errors import FailedPrecondition, FieldViolation, InvalidArgument, PermissionDenied
from gavel_core.formats import LotTerms
from gavel_core.money import MAX_AMOUNT_MINOR
from room.domain.commands import (
    Command,
    ConfirmWin,
    DeclineWin,
    OpenLot,
    Pause,
    Resume,
    Tick,
    VendorAccept,
    VendorDecline,
)
from room.domain.events import (
    ConfirmationRequested,
    Event,
    LotOpened,
    LotPaused,
    LotResumed,
    LotSold,
    LotUnsold,
    OfferedToVendor,
    OfferLapsed,
    PenaltyAssessed,
    ProvisionalWinnerDeclared,
    VendorAccepted,
    VendorDeclined,
    WinnerConfirmed,
)
from room.domain.model import Award, BidderStanding, LotState, Phase, UnsoldReason

S = TypeVar("S", bound=LotState)
F = TypeVar("F", bound=Callable[..., Any])
Decider = Callable[[Any, Any, Any, int], list[Event]]
Applier = Callable[[Any, Any, Any], None]

_HANDLES: dict[object, tuple[str, tuple[type, ...]]] = {}


def decides(*command_types: type[Command]) -> Callable[[F], F]:
    """Mark an engine method as the decider of these commands (collected per engine class)."""

    def mark(method: F) -> F:
        _HANDLES[method] = ("decide", command_types)
        return method

    return mark


def applies(*event_types: type[Event]) -> Callable[[F], F]:
    """Mark an engine method as the applier of these events (collected per engine class)."""

    def mark(method: F) -> F:
        _HANDLES[method] = ("apply", event_types)
        return method

    return mark


DEFAULT_VENDOR_DECISION_MS = 24 * 3600 * 1000


def refuse_not_open(state: LotState) -> FailedPrecondition:
    """The rejection for a bid (or crier call) on a lot that is not taking bids."""
    phase = state.phase
    meta = {"phase": phase.value}
    if phase is Phase.SCHEDULED:
        return FailedPrecondition("LOT_NOT_OPEN", "bidding on this lot has not opened yet", meta)
    if phase is Phase.PAUSED:
        return FailedPrecondition("LOT_PAUSED", "the lot is paused", meta)
    return FailedPrecondition("LOT_CLOSED", "bidding on this lot is closed", meta)


def bid_too_low(minimum: int) -> FailedPrecondition:
    return FailedPrecondition(
        "BID_TOO_LOW", f"the lowest acceptable bid is {minimum}", {"min_amount_minor": str(minimum)}
    )


def check_standing(standing: BidderStanding, amount: int) -> None:
    """Refuse a bidder the room says may not bid (banned, not seated, the seller) or bid this much."""
    if standing.banned:
        raise PermissionDenied("the bidder is banned from this sale", reason="BIDDER_BANNED")
    if not standing.seated:
        raise PermissionDenied("the bidder is not seated in this room", reason="NOT_SEATED")
    if standing.is_seller:
        raise PermissionDenied("a seller may not bid on their own lot", reason="OWN_LOT")
    limit = standing.bid_limit_minor
    if limit is not None and amount > limit:
        raise FailedPrecondition(
            "OVER_BID_LIMIT", f"the bid exceeds the bidder's limit of {limit}", {"bid_limit_minor": str(limit)}
        )


def check_bid(state: LotState, bid_id: str, bidder: str, amount: int, standing: BidderStanding) -> None:
    """The checks every bid-like command shares: well formed, not a repeat, an eligible bidder."""
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT_MINOR or not bid_id or not bidder:
        raise invalid_bid(bid_id, bidder, amount)
    if bid_id in state.bid_ids:
        raise duplicate_bid(bid_id)
    check_standing(standing, amount)
    if bidder in state.defaulted:
        raise FailedPrecondition("BIDDER_DEFAULTED", "the bidder defaulted on this lot and may not bid again")


def invalid_bid(bid_id: str, bidder: str, amount: object) -> InvalidArgument:
    violations = []
    if not bid_id:
        violations.append(FieldViolation("bid_id", "a bid needs a client-generated id"))
    if not bidder:
        violations.append(FieldViolation("bidder", "a bid needs a bidder"))
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT_MINOR:
        violations.append(
            FieldViolation("amount", f"must be a positive integer of minor units up to {MAX_AMOUNT_MINOR}")
        )
    return InvalidArgument(violations)


def duplicate_bid(bid_id: str) -> FailedPrecondition:
    return FailedPrecondition("DUPLICATE_BID_ID", f"bid {bid_id!r} was already accepted", {"bid_id": bid_id})


def require_amount(amount: object, field_path: str) -> int:
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT_MINOR:
        raise InvalidArgument([FieldViolation(field_path, "must be a positive integer of minor units")])
    return amount


class Engine(Generic[S]):
    """A live format's rules. Bound to one lot's terms; holds no per-lot state itself.

    `decide(state, command, now_ms)` returns the events the command causes, or raises a
    `GavelError` (FailedPrecondition with a reason code, InvalidArgument, PermissionDenied) and
    changes nothing. `apply(state, event)` folds one event into the state and returns it;
    replaying a lot's events onto `initial_state` reproduces the state and its `state_hash`.
    `now_ms` must not go backwards for a lot (the room's per-lot clock is monotonic; not checked).
    """

    __slots__ = ("confirm_ms", "offer_vendor_below_reserve", "reserve", "terms", "vendor_decision_ms")
    state_type: type[S]
    takes_asking = False  # whether OpenLot may set the opening asking price (crier lots)
    # Dispatch tables are per class, not per engine, so thousands of lots share them (and the cache).
    _deciders: ClassVar[dict[type[Command], Decider]] = {}
    _appliers: ClassVar[dict[type[Event], Applier]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._deciders, cls._appliers = {}, {}
        resolved: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):  # later classes override earlier ones, by name
            resolved.update(vars(klass))
        for method in resolved.values():
            mark = _HANDLES.get(method) if callable(method) else None
            if mark is not None:
                table: dict[Any, Any] = cls._deciders if mark[0] == "decide" else cls._appliers
                for handled in mark[1]:
                    table[handled] = method

    def __init__(self, terms: LotTerms) -> None:
        self.terms = terms
        self.confirm_ms = terms.confirmation_timeout_ms
        self.reserve: int | None = None
        extra = terms.extra
        below = extra.get("below_reserve", "unsold")
        if below not in ("unsold", "offer_vendor"):
            raise InvalidArgument([FieldViolation("lot.extra.below_reserve", "must be 'unsold' or 'offer_vendor'")])
        self.offer_vendor_below_reserve = below == "offer_vendor"
        self.vendor_decision_ms = extra_int(extra, "vendor_decision_ms", DEFAULT_VENDOR_DECISION_MS, minimum=1)

    # -- the interface --------------------------------------------------------------------------

    @property
    def needs_draw_secret(self) -> bool:
        """Whether the room must give `initial_state` a secret of its own (lucky lots: the option)."""
        return False

    def initial_state(self, lot_id: str, draw_secret: bytes = b"") -> S:
        """The lot before it opens. `draw_secret`: the room's random bytes for the draws the
        seller must not be able to predict (`needs_draw_secret`; ignored by other formats)."""
        if not lot_id:
            raise InvalidArgument([FieldViolation("lot_id", "a lot needs an id")])
        return self.state_type(lot_id=lot_id, terms=self.terms)

    def decide(self, state: S, command: Command, now_ms: int) -> list[Event]:
        deadline = state.deadline_ms
        if deadline is not None and deadline <= now_ms:
            fired, state = self._advance(state, now_ms)
            if type(command) is Tick:
                return fired
            return fired + self.decide(state, command, now_ms)
        handler = self._deciders.get(type(command))
        if handler is None:
            raise FailedPrecondition(
                "COMMAND_NOT_SUPPORTED", f"{type(command).__name__} does not apply to this lot's format"
            )
        return handler(self, state, command, now_ms)

    def apply(self, state: S, event: Event) -> S:
        self._appliers[type(event)](self, state, event)
        return state

    def replay(self, lot_id: str, events: Iterable[Event], draw_secret: bytes = b"") -> S:
        state = self.initial_state(lot_id, draw_secret)
        appliers = self._appliers
        for event in events:
            appliers[type(event)](self, state, event)
        return state

    # -- what each format provides ----------------------------------------------------------------

    def _open(self, state: S, command: OpenLot, now: int) -> list[Event]:
        raise NotImplementedError

    def _on_deadline(self, state: S, at: int) -> list[Event]:
        """The events of the format's own deadline (phase OPEN, HAMMERED or PASSED) due at `at`."""
        raise NotImplementedError

    def _after_lapse(self, state: S, at: int, lapsed: Award) -> list[Event]:
        """What follows when `lapsed` declined or missed the confirmation deadline."""
        raise NotImplementedError

    def _vendor_acceptable(self, state: S) -> Award | None:
        """The standing bid the vendor may take right now while bidding is open, if any."""
        return None

    def _on_opened(self, state: S, event: LotOpened) -> None:
        return None

    # -- shared mechanics -------------------------------------------------------------------------

    def _advance(self, state: S, now: int) -> tuple[list[Event], S]:
        """Fire every deadline due at `now`, in order, on a copy; returns the events and the copy."""
        events: list[Event] = []
        current = state
        deadline = current.deadline_ms
        while deadline is not None and deadline <= now:
            if current.phase is Phase.AWAITING_CONFIRMATION:
                fired = self._lapse(current, deadline, "timeout")
            elif current.phase is Phase.AWAITING_VENDOR:
                fired = [LotUnsold(current.lot_id, deadline, UnsoldReason.RESERVE_NOT_MET.value)]
            else:
                fired = self._on_deadline(current, deadline)
            if current is state:
                current = state.clone()
            for event in fired:
                self.apply(current, event)
            events.extend(fired)
            if current.deadline_ms is not None and current.deadline_ms <= deadline:
                raise AssertionError(f"deadline did not advance past {deadline}")
            deadline = current.deadline_ms
        return events, current

    def _conclude(
        self, state: S, at: int, award: Award | None, reason: UnsoldReason, *, honour_reserve: bool = True
    ) -> list[Event]:
        """Bidding is over: no winner, reserve not met (unsold or offered to the vendor), or an offer."""
        if award is None:
            return [LotUnsold(state.lot_id, at, reason.value)]
        reserve = self.reserve
        if honour_reserve and reserve is not None and award.price < reserve:
            if self.offer_vendor_below_reserve:
                decide_by = at + self.vendor_decision_ms
                return [
                    OfferedToVendor(
                        state.lot_id,
                        at,
                        award.bidder,
                        award.price,
                        award.source,
                        award.paddle,
                        award.discount_bp,
                        decide_by,
                    )
                ]
            return [LotUnsold(state.lot_id, at, UnsoldReason.RESERVE_NOT_MET.value)]
        return self._offer(state, at, award, state.attempt + 1)

    def _offer(self, state: S, at: int, award: Award, attempt: int) -> list[Event]:
        """Sell to `award` at once, or make it the provisional winner if the lot needs confirmation."""
        if self.confirm_ms <= 0:
            return [_sold(state.lot_id, at, award)]
        return [
            ProvisionalWinnerDeclared(
                state.lot_id, at, award.bidder, award.price, attempt, award.source, award.paddle, award.discount_bp
            ),
            ConfirmationRequested(state.lot_id, at, award.bidder, award.price, attempt, at + self.confirm_ms),
        ]

    def _lapse(self, state: S, at: int, reason: str) -> list[Event]:
        """A provisional winner declined or timed out. Only the lot's first provisional winner is
        penalised, in every format: the specification assesses the penalty "상기 낙찰자가 최초의
        낙찰자인 경우" (when the defaulter is the first winner). Attempts count provisional winners
        across the lot, so a Dutch taker after the clock resumed or a later lucky window's winner
        is attempt 2, 3, ... like an English runner-up."""
        lapsed = state.pending
        assert lapsed is not None
        events: list[Event] = [OfferLapsed(state.lot_id, at, lapsed.bidder, lapsed.price, state.attempt, reason)]
        if state.attempt == 1:
            events.append(PenaltyAssessed(state.lot_id, at, lapsed.bidder, lapsed.price, reason))
        events.extend(self._after_lapse(state, at, lapsed))
        return events

    def _pending_offer(self, state: S, bidder: str) -> Award:
        pending = state.pending
        if state.phase is not Phase.AWAITING_CONFIRMATION or pending is None:
            raise FailedPrecondition("NO_PENDING_OFFER", "the lot is not awaiting a confirmation")
        if pending.bidder != bidder:
            raise FailedPrecondition("NOT_OFFERED_TO_BIDDER", "the lot is not offered to this bidder")
        return pending

    @decides(Tick)
    def _decide_tick(self, state: S, command: Tick, now: int) -> list[Event]:
        return []  # nothing is due (due deadlines were fired by `decide`)

    @decides(OpenLot)
    def _decide_open(self, state: S, command: OpenLot, now: int) -> list[Event]:
        if state.phase is not Phase.SCHEDULED:
            raise FailedPrecondition(
                "LOT_ALREADY_OPENED", "the lot has already been opened", {"phase": state.phase.value}
            )
        if command.asking is not None:
            if not self.takes_asking:
                raise InvalidArgument([FieldViolation("asking", "only a crier sets the opening asking price")])
            require_amount(command.asking, "asking")
        return self._open(state, command, now)

    @decides(ConfirmWin)
    def _decide_confirm(self, state: S, command: ConfirmWin, now: int) -> list[Event]:
        award = self._pending_offer(state, command.bidder)
        return [WinnerConfirmed(state.lot_id, now, award.bidder, award.price), _sold(state.lot_id, now, award)]

    @decides(DeclineWin)
    def _decide_decline(self, state: S, command: DeclineWin, now: int) -> list[Event]:
        self._pending_offer(state, command.bidder)
        return self._lapse(state, now, "declined")

    @decides(VendorAccept)
    def _decide_vendor_accept(self, state: S, command: VendorAccept, now: int) -> list[Event]:
        if state.phase is Phase.AWAITING_VENDOR:
            award = state.pending
        elif state.phase is Phase.OPEN:
            award = self._vendor_acceptable(state)
        else:
            award = None
        if award is None:
            raise FailedPrecondition("VENDOR_CANNOT_ACCEPT", "there is no bid the vendor may accept now")
        accepted = VendorAccepted(state.lot_id, now, command.by, award.bidder, award.price)
        return [accepted, *self._offer(state, now, award, state.attempt + 1)]

    @decides(VendorDecline)
    def _decide_vendor_decline(self, state: S, command: VendorDecline, now: int) -> list[Event]:
        if state.phase is not Phase.AWAITING_VENDOR:
            raise FailedPrecondition("NO_VENDOR_OFFER", "nothing is waiting for the vendor's decision")
        return [
            VendorDeclined(state.lot_id, now, command.by),
            LotUnsold(state.lot_id, now, UnsoldReason.RESERVE_NOT_MET.value),
        ]

    @decides(Pause)
    def _decide_pause(self, state: S, command: Pause, now: int) -> list[Event]:
        if state.phase is not Phase.OPEN:
            raise refuse_not_open(state)
        remaining = None if state.deadline_ms is None else state.deadline_ms - now
        return [LotPaused(state.lot_id, now, command.by, remaining)]

    @decides(Resume)
    def _decide_resume(self, state: S, command: Resume, now: int) -> list[Event]:
        if state.phase is not Phase.PAUSED:
            raise FailedPrecondition("LOT_NOT_PAUSED", "the lot is not paused", {"phase": state.phase.value})
        remaining = state.paused_remaining_ms
        return [LotResumed(state.lot_id, now, command.by, None if remaining is None else now + remaining)]

    # -- shared appliers --------------------------------------------------------------------------

    @applies(LotOpened)
    def _apply_opened(self, state: S, event: LotOpened) -> None:
        state.phase = Phase.OPEN
        state.deadline_ms = event.deadline_ms
        self._on_opened(state, event)

    @applies(LotPaused)
    def _apply_paused(self, state: S, event: LotPaused) -> None:
        state.phase = Phase.PAUSED
        state.paused_remaining_ms = event.remaining_ms
        state.deadline_ms = None

    @applies(LotResumed)
    def _apply_resumed(self, state: S, event: LotResumed) -> None:
        state.phase = Phase.OPEN
        state.paused_remaining_ms = None
        state.deadline_ms = event.deadline_ms

    @applies(OfferedToVendor)
    def _apply_offered_to_vendor(self, state: S, event: OfferedToVendor) -> None:
        state.phase = Phase.AWAITING_VENDOR
        state.pending = Award(event.bidder, event.price, event.source, event.paddle, event.discount_bp)
        state.deadline_ms = event.deadline_ms

    @applies(ProvisionalWinnerDeclared)
    def _apply_provisional(self, state: S, event: ProvisionalWinnerDeclared) -> None:
        state.phase = Phase.AWAITING_CONFIRMATION
        state.pending = Award(event.bidder, event.price, event.source, event.paddle, event.discount_bp)
        state.attempt = event.attempt
        state.deadline_ms = None

    @applies(VendorDeclined)
    def _apply_vendor_declined(self, state: S, event: VendorDeclined) -> None:
        return None

    @applies(VendorAccepted)
    def _apply_vendor_accepted(self, state: S, event: VendorAccepted) -> None:
        state.reserve_waived = True
        state.deadline_ms = None

    @applies(WinnerConfirmed)
    def _apply_confirmed(self, state: S, event: WinnerConfirmed) -> None:
        state.deadline_ms = None

    @applies(ConfirmationRequested)
    def _apply_confirmation_requested(self, state: S, event: ConfirmationRequested) -> None:
        state.deadline_ms = event.deadline_ms

    @applies(OfferLapsed)
    def _apply_lapsed(self, state: S, event: OfferLapsed) -> None:
        state.defaulted.add(event.bidder)
        state.pending = None
        state.deadline_ms = None

    @applies(PenaltyAssessed)
    def _apply_penalty(self, state: S, event: PenaltyAssessed) -> None:
        state.penalised.append(event.bidder)

    @applies(LotSold)
    def _apply_sold(self, state: S, event: LotSold) -> None:
        state.phase = Phase.SOLD
        state.result = Award(event.buyer, event.hammer_price, event.source, event.paddle, event.discount_bp)
        state.pending = None
        state.deadline_ms = None

    @applies(LotUnsold)
    def _apply_unsold(self, state: S, event: LotUnsold) -> None:
        state.phase = Phase.UNSOLD
        state.unsold_reason = event.reason
        state.pending = None
        state.deadline_ms = None


def _sold(lot_id: str, at: int, award: Award) -> LotSold:
    return LotSold(lot_id, at, award.bidder, award.price, award.source, award.paddle, award.discount_bp)


def extra_int(extra: dict[str, str], key: str, default: int, *, minimum: int = 0) -> int:
    raw = extra.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise InvalidArgument([FieldViolation(f"lot.extra.{key}", f"must be an integer of at least {minimum}")])
    return value


# -- functions over any lot's state ---------------------------------------------------------------


def next_deadline_ms(state: LotState) -> int | None:
    """When the room must send `Tick()` next (None: nothing is scheduled, e.g. paused or closed)."""
    return state.deadline_ms


def _canonical(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, set | frozenset):
        return sorted(_canonical(v) for v in value)
    if isinstance(value, dict):
        return [[_canonical(k), _canonical(v)] for k, v in sorted(value.items())]
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return [_canonical(getattr(value, f.name)) for f in fields(value)]
    raise TypeError(f"cannot encode {type(value).__name__} canonically")


def canonical_state(state: LotState) -> dict[str, Any]:
    """The state as plain JSON-able data, in a stable form (the terms are identified by format only)."""
    encoded: dict[str, Any] = {"type": type(state).__name__, "format": state.terms.format.value}
    for f in fields(state):
        if f.name != "terms":
            encoded[f.name] = _canonical(getattr(state, f.name))
    return encoded


def state_hash(state: LotState) -> str:
    """sha256 (hex) of the canonical encoding: equal for equal states on any machine."""
    blob = json.dumps(canonical_state(state), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def summarize(state: LotState) -> dict[str, Any]:
    """What a lot came to: outcome (sold/unsold, else the phase), winner, price and reason."""
    result = state.result
    if state.phase is Phase.SOLD and result is not None:
        outcome, winner, price = "sold", result.bidder, result.price
    else:
        outcome, winner, price = state.phase.value, None, None
    return {
        "lot_id": state.lot_id,
        "outcome": outcome,
        "winner": winner,
        "price": price,
        "standing_price": state.price or None,
        "leader": state.leader,
        "reason": state.unsold_reason,
        "discount_bp": result.discount_bp if result is not None else None,
        "source": result.source if result is not None else None,
        "penalised": list(state.penalised),
    }
