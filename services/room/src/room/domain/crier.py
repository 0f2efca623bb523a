"""Crier-driven live English (`EnglishClose.CRIER`): a person runs the lot from the rostrum.

The crier opens the lot (optionally at their own asking price), sets the asking price and the
increment live, calls going once / going twice, hammers (sold to the standing bid) or passes
(unsold), may reopen within `reopen_grace_ms` of a hammer or pass, and may undo the last bid.
Every crier action is an event naming the crier (`by`) and the time (`at_ms`).

Bids are taken *at the asking price*, one source sequence for everyone: an online bid takes the
asking price if it is at most the bidder's `max_amount`; a floor paddle press takes the asking
price plus (jumps - 1) further increments, where the paddle policy maps the press's force and
duration to a jump and/or a discount (basis points, recorded on the bid and on the sale). The
standing bidder cannot bid against themselves. A hammer becomes final once the grace runs out
(`Tick`), and only then is the lot sold, so a reopen never takes back a sale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from gavel_core.errors import FailedPrecondition, FieldViolation, InvalidArgument
from gavel_core.formats import LotTerms
from room.domain.commands import (
    CallGoingOnce,
    CallGoingTwice,
    FloorBid,
    Hammer,
    OpenLot,
    PassLot,
    PlaceBid,
    Reopen,
    SetAsking,
    SetIncrement,
    UndoLastBid,
)
from room.domain.engine import applies, bid_too_low, check_bid, decides, refuse_not_open, require_amount
from room.domain.english import EnglishFamilyEngine
from room.domain.events import (
    AskingSet,
    BidAccepted,
    BidUndone,
    Event,
    FloorBidAccepted,
    GoingOnce,
    GoingTwice,
    Hammered,
    IncrementSet,
    LotOpened,
    LotUnsold,
    Passed,
    Reopened,
)
from room.domain.model import Award, CrierBid, CrierState, Phase, Source, UnsoldReason

MAX_JUMPS = 10
MAX_FORCE = 1000


@dataclass(frozen=True, slots=True)
class PaddleRule:
    """A press at least this hard AND at least this long bids `jumps` increments and earns `discount_bp`."""

    min_force: int = 0
    min_press_ms: int = 0
    jumps: int = 1
    discount_bp: int = 0


@dataclass(frozen=True, slots=True)
class PaddlePolicy:
    """Ordered rules; the first that matches a press decides it, no match is a plain one-increment bid."""

    rules: tuple[PaddleRule, ...] = ()

    def classify(self, force: int, press_ms: int) -> tuple[int, int]:
        """(jumps, discount_bp) for a press."""
        for rule in self.rules:
            if force >= rule.min_force and press_ms >= rule.min_press_ms:
                return rule.jumps, rule.discount_bp
        return 1, 0

    @classmethod
    def from_json(cls, text: str, field_path: str = "lot.extra.paddle_policy") -> PaddlePolicy:
        """Parse `[{"min_force": 800, "jumps": 3}, {"min_press_ms": 1500, "discount_bp": 200}, ...]`."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgument([FieldViolation(field_path, f"not JSON: {exc.msg}")]) from None
        if not isinstance(raw, list):
            raise InvalidArgument([FieldViolation(field_path, "must be a JSON list of rules")])
        limits = {"min_force": MAX_FORCE, "min_press_ms": 600_000, "jumps": MAX_JUMPS, "discount_bp": 10_000}
        rules = []
        violations = []
        for index, item in enumerate(raw):
            path = f"{field_path}[{index}]"
            if not isinstance(item, dict) or not set(item) <= set(limits):
                violations.append(FieldViolation(path, f"a rule is an object with keys among {sorted(limits)}"))
                continue
            for key, value in item.items():
                low = 1 if key == "jumps" else 0
                if type(value) is not int or not low <= value <= limits[key]:
                    violations.append(FieldViolation(f"{path}.{key}", f"must be an integer in {low}..{limits[key]}"))
            rules.append(item)
        if violations:
            raise InvalidArgument(violations)
        return cls(tuple(PaddleRule(**rule) for rule in rules))


# A hard press (80 % of the device's range) bids three increments, a long one (1.5 s) two.
DEFAULT_PADDLE_POLICY = PaddlePolicy((PaddleRule(min_force=800, jumps=3), PaddleRule(min_press_ms=1500, jumps=2)))


class CrierEngine(EnglishFamilyEngine[CrierState]):
    __slots__ = ("grace_ms", "policy")
    state_type = CrierState
    takes_asking = True

    def __init__(self, terms: LotTerms) -> None:
        super().__init__(terms)
        raw_policy = terms.extra.get("paddle_policy")
        self.policy = DEFAULT_PADDLE_POLICY if raw_policy is None else PaddlePolicy.from_json(raw_policy)
        self.grace_ms = self.params.reopen_grace_ms

    def increment(self, state: CrierState, amount: int) -> int:
        return state.increment if state.increment is not None else self.step(amount)

    # -- opening and closing ----------------------------------------------------------------------

    def _open(self, state: CrierState, command: OpenLot, now: int) -> list[Event]:
        asking = self.opening if command.asking is None else command.asking
        return [LotOpened(state.lot_id, now, command.by, self.terms.format.value, asking, None)]

    def _on_opened(self, state: CrierState, event: LotOpened) -> None:
        state.asking = event.asking

    def _on_deadline(self, state: CrierState, at: int) -> list[Event]:
        """The reopen grace ran out: the hammer or the pass is final."""
        if state.phase is Phase.PASSED:
            return [LotUnsold(state.lot_id, at, UnsoldReason.PASSED.value)]
        return self._conclude(state, at, self._standing_award(state), UnsoldReason.NO_BIDS)

    def _standing_award(self, state: CrierState) -> Award | None:
        if not state.bids:
            return None
        top = state.bids[-1]
        return Award(top.bidder, top.amount, top.source, top.paddle, top.discount_bp)

    def _award_for(self, state: CrierState, bidder: str, amount: int) -> Award:
        for bid in reversed(state.bids):
            if bid.bidder == bidder and bid.amount == amount:
                return Award(bidder, amount, bid.source, bid.paddle, bid.discount_bp)
        return Award(bidder, amount)

    # -- bids -------------------------------------------------------------------------------------

    def _check_bidder(self, state: CrierState, bidder: str) -> None:
        self._require_open(state)
        if bidder == state.leader:
            raise FailedPrecondition("ALREADY_LEADING", "the bidder already holds the standing bid")

    @decides(PlaceBid)
    def _decide_online_bid(self, state: CrierState, command: PlaceBid, now: int) -> list[Event]:
        self._check_bidder(state, command.bidder)
        asking = state.asking
        check_bid(state, command.bid_id, command.bidder, asking, command.standing)
        if require_amount(command.max_amount, "max_amount") < asking:
            raise bid_too_low(asking)
        return [
            BidAccepted(state.lot_id, now, command.bid_id, command.bidder, asking, asking, command.bidder, state.leader)
        ]

    @decides(FloorBid)
    def _decide_floor_bid(self, state: CrierState, command: FloorBid, now: int) -> list[Event]:
        self._check_bidder(state, command.bidder)
        if not command.paddle or not command.device_id:
            raise InvalidArgument([FieldViolation("paddle", "a floor bid names its paddle and device")])
        if (
            type(command.force) is not int
            or type(command.press_ms) is not int
            or command.force < 0
            or command.press_ms < 0
        ):
            raise InvalidArgument([FieldViolation("force", "force and press_ms are non-negative integers")])
        jumps, discount_bp = self.policy.classify(command.force, command.press_ms)
        amount = state.asking
        for _ in range(jumps - 1):
            amount += self.increment(state, amount)
        check_bid(state, command.bid_id, command.bidder, amount, command.standing)
        return [
            FloorBidAccepted(
                state.lot_id,
                now,
                command.bid_id,
                command.bidder,
                command.paddle,
                command.device_id,
                command.force,
                command.press_ms,
                jumps,
                discount_bp,
                amount,
                state.leader,
            )
        ]

    def _take(self, state: CrierState, bid: CrierBid) -> None:
        state.bids.append(bid)
        state.maxima[bid.bidder] = bid.amount
        state.price = bid.amount
        state.leader = bid.bidder
        state.asking = bid.amount + self.increment(state, bid.amount)
        state.calls = 0
        state.bid_ids.add(bid.bid_id)

    @applies(BidAccepted)
    def _apply_online_bid(self, state: CrierState, event: BidAccepted) -> None:
        record = CrierBid(event.bid_id, event.bidder, event.amount, Source.ONLINE.value, None, 0, state.asking)
        self._take(state, record)

    @applies(FloorBidAccepted)
    def _apply_floor_bid(self, state: CrierState, event: FloorBidAccepted) -> None:
        record = CrierBid(
            event.bid_id,
            event.bidder,
            event.amount,
            Source.FLOOR.value,
            event.paddle,
            event.discount_bp,
            state.asking,
        )
        self._take(state, record)

    # -- the crier's actions ----------------------------------------------------------------------

    def _require_open(self, state: CrierState) -> None:
        if state.phase is not Phase.OPEN:
            raise refuse_not_open(state)

    def _require_standing_bid(self, state: CrierState) -> None:
        self._require_open(state)
        if not state.bids:
            raise FailedPrecondition("NO_STANDING_BID", "there is no standing bid")

    @decides(SetAsking)
    def _decide_set_asking(self, state: CrierState, command: SetAsking, now: int) -> list[Event]:
        self._require_open(state)
        amount = require_amount(command.amount, "amount")
        if state.bids and amount <= state.price:
            raise FailedPrecondition(
                "ASKING_TOO_LOW",
                "the asking price must be above the standing bid",
                {"min_amount_minor": str(state.price + 1)},
            )
        return [AskingSet(state.lot_id, now, command.by, amount)]

    @decides(SetIncrement)
    def _decide_set_increment(self, state: CrierState, command: SetIncrement, now: int) -> list[Event]:
        self._require_open(state)
        if command.amount is not None:
            require_amount(command.amount, "amount")
        asking = state.asking
        if state.bids:
            asking = state.price + (command.amount if command.amount is not None else self.step(state.price))
        return [IncrementSet(state.lot_id, now, command.by, command.amount, asking)]

    @decides(CallGoingOnce)
    def _decide_going_once(self, state: CrierState, command: CallGoingOnce, now: int) -> list[Event]:
        self._require_standing_bid(state)
        if state.calls != 0:
            raise FailedPrecondition("CALL_OUT_OF_ORDER", "going once has already been called")
        return [GoingOnce(state.lot_id, now, command.by)]

    @decides(CallGoingTwice)
    def _decide_going_twice(self, state: CrierState, command: CallGoingTwice, now: int) -> list[Event]:
        self._require_standing_bid(state)
        if state.calls != 1:
            raise FailedPrecondition("CALL_OUT_OF_ORDER", "going twice follows going once")
        return [GoingTwice(state.lot_id, now, command.by)]

    @decides(Hammer)
    def _decide_hammer(self, state: CrierState, command: Hammer, now: int) -> list[Event]:
        self._require_standing_bid(state)
        grace_end = now + self.grace_ms if self.grace_ms else None
        assert state.leader is not None
        hammered = Hammered(state.lot_id, now, command.by, state.leader, state.price, grace_end)
        if grace_end is not None:
            return [hammered]
        return [hammered, *self._conclude(state, now, self._standing_award(state), UnsoldReason.NO_BIDS)]

    @decides(PassLot)
    def _decide_pass(self, state: CrierState, command: PassLot, now: int) -> list[Event]:
        self._require_open(state)
        grace_end = now + self.grace_ms if self.grace_ms else None
        passed = Passed(state.lot_id, now, command.by, grace_end)
        if grace_end is not None:
            return [passed]
        return [passed, LotUnsold(state.lot_id, now, UnsoldReason.PASSED.value)]

    @decides(Reopen)
    def _decide_reopen(self, state: CrierState, command: Reopen, now: int) -> list[Event]:
        if state.phase not in (Phase.HAMMERED, Phase.PASSED):
            raise FailedPrecondition(
                "REOPEN_NOT_ALLOWED",
                "only a hammer or a pass within the reopen grace can be taken back",
                {"phase": state.phase.value},
            )
        return [Reopened(state.lot_id, now, command.by)]

    @decides(UndoLastBid)
    def _decide_undo(self, state: CrierState, command: UndoLastBid, now: int) -> list[Event]:
        self._require_standing_bid(state)
        undone = state.bids[-1]
        before = state.bids[-2] if len(state.bids) > 1 else None
        return [
            BidUndone(
                state.lot_id,
                now,
                command.by,
                undone.bid_id,
                undone.bidder,
                undone.amount,
                before.amount if before is not None else 0,
                before.bidder if before is not None else None,
                undone.asking_before,
            )
        ]

    @applies(AskingSet)
    def _apply_asking(self, state: CrierState, event: AskingSet) -> None:
        state.asking = event.asking

    @applies(IncrementSet)
    def _apply_increment(self, state: CrierState, event: IncrementSet) -> None:
        state.increment = event.increment
        state.asking = event.asking

    @applies(GoingOnce)
    def _apply_going_once(self, state: CrierState, event: GoingOnce) -> None:
        state.calls = 1

    @applies(GoingTwice)
    def _apply_going_twice(self, state: CrierState, event: GoingTwice) -> None:
        state.calls = 2

    @applies(Hammered)
    def _apply_hammered(self, state: CrierState, event: Hammered) -> None:
        state.phase = Phase.HAMMERED
        state.deadline_ms = event.deadline_ms

    @applies(Passed)
    def _apply_passed(self, state: CrierState, event: Passed) -> None:
        state.phase = Phase.PASSED
        state.deadline_ms = event.deadline_ms

    @applies(Reopened)
    def _apply_reopened(self, state: CrierState, event: Reopened) -> None:
        state.phase = Phase.OPEN
        state.deadline_ms = None
        state.calls = 0

    @applies(BidUndone)
    def _apply_undone(self, state: CrierState, event: BidUndone) -> None:
        undone = state.bids.pop()
        state.price = event.price
        state.leader = event.leader
        state.asking = event.asking
        state.calls = 0
        remaining = [bid.amount for bid in state.bids if bid.bidder == undone.bidder]
        if remaining:
            state.maxima[undone.bidder] = remaining[-1]  # amounts only rise: their latest bid is their highest
        else:
            del state.maxima[undone.bidder]
