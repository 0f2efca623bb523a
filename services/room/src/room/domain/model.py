"""The state of a live lot, one shape per format, and the small value objects engines share.

State is *mutable on purpose*: `Engine.apply` is its only mutator and returns the same object, so
an accepted bid costs a few attribute stores instead of a copy of every bidder's maximum. `decide`
never mutates; code that needs the state before an event takes `state.clone()` first. Every
deadline a lot waits for lives in ONE field, `deadline_ms`, whose meaning follows `phase` (the
close of a timed lot, the end of a round, the next Dutch tick, the end of a lucky window, the end
of a crier's reopen grace, the confirmation or vendor-decision timeout); it survives a failover
because it is rebuilt from events like everything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Self

from gavel_core.formats import LotTerms


class Phase(StrEnum):
    SCHEDULED = "scheduled"  # created, not opened yet
    OPEN = "open"  # taking bids
    PAUSED = "paused"  # bids refused, the deadline frozen
    HAMMERED = "hammered"  # crier: hammer fell, reopen still possible until deadline_ms
    PASSED = "passed"  # crier: passed, reopen still possible until deadline_ms
    AWAITING_VENDOR = "awaiting_vendor"  # reserve not met, the vendor may still take the top bid
    AWAITING_CONFIRMATION = "awaiting_confirmation"  # provisional winner must confirm by deadline_ms
    SOLD = "sold"
    UNSOLD = "unsold"


class Source(StrEnum):
    ONLINE = "online"
    FLOOR = "floor"


class UnsoldReason(StrEnum):
    NO_BIDS = "NO_BIDS"
    RESERVE_NOT_MET = "RESERVE_NOT_MET"
    PASSED = "PASSED"
    FLOOR_REACHED = "FLOOR_REACHED"
    NO_WINNER = "NO_WINNER"  # lucky: every window ran out
    NOBODY_LEFT = "NOBODY_LEFT"  # confirmation cascade ran out of bidders


@dataclass(frozen=True, slots=True)
class BidderStanding:
    """What the room knows about the bidder when the command arrives (the domain looks nothing up).

    `seated`: registered in this room/sale; `is_seller`: the caller sells this lot;
    `bid_limit_minor`: the credit limit the sale granted, None for none.
    """

    banned: bool = False
    seated: bool = True
    is_seller: bool = False
    bid_limit_minor: int | None = None


GOOD_STANDING = BidderStanding()


@dataclass(frozen=True, slots=True)
class Award:
    """Who is offered (or bought) the lot at what price, and how the winning bid was placed."""

    bidder: str
    price: int
    source: str = Source.ONLINE.value
    paddle: str | None = None
    discount_bp: int = 0


@dataclass(frozen=True, slots=True)
class CrierBid:
    """One bid the crier took, kept so the crier can undo it and restore what it replaced."""

    bid_id: str
    bidder: str
    amount: int
    source: str
    paddle: str | None
    discount_bp: int
    asking_before: int


@dataclass(slots=True)
class LotState:
    """What every live lot has. `price`/`leader` are the visible standing price and its holder."""

    lot_id: str
    terms: LotTerms = field(repr=False, compare=False)
    phase: Phase = Phase.SCHEDULED
    deadline_ms: int | None = None
    paused_remaining_ms: int | None = None  # while PAUSED: what was left of deadline_ms
    price: int = 0
    leader: str | None = None
    bid_ids: set[str] = field(default_factory=set)  # accepted bid ids (proxy English: see english.py)
    pending: Award | None = None  # offered to the vendor or to a provisional winner
    attempt: int = 0  # how many provisional winners so far (1 = the lot's first: the only one penalised)
    reserve_waived: bool = False  # the vendor accepted a bid below the reserve
    defaulted: set[str] = field(default_factory=set)  # declined or timed out: may not win again
    penalised: list[str] = field(default_factory=list)
    result: Award | None = None  # SOLD: the sale
    unsold_reason: str | None = None

    def clone(self) -> Self:
        """A copy that shares nothing mutable with this state (for deciding ahead of a deadline)."""
        values: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict | set | list):
                value = type(value)(value)
            values[f.name] = value
        return type(self)(**values)


@dataclass(slots=True)
class BidBookState(LotState):
    """The English family's common part. `maxima` maps each bidder to their highest bid (their
    maximum, for proxy English): the confirmation cascade's list, which offers the first of equal
    amounts. Proxy and crier lots keep the order bidders first bid in (two bidders never hold the
    same amount there except the leader and one other on a tie, and the leader is offered first);
    round-limited lots, where equal bids are allowed, move a bidder to the end at each bid, so the
    first of equal amounts is the one bid earliest."""

    maxima: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class EnglishState(BidBookState):
    """Proxy English (hard or soft close). `leader_max` is the leader's secret maximum and
    `runner_up_max` the highest maximum among the other bidders (0: none)."""

    leader_max: int = 0
    runner_up_max: int = 0
    extension_ms: int = 0  # soft close: how far the close has moved so far


@dataclass(slots=True)
class RoundsState(BidBookState):
    round: int = 0
    round_floor: int = 0  # the lowest first bid of the current round
    round_high: int = 0  # 0: no bid yet this round
    round_leader: str | None = None
    prev_high: int = 0  # the previous round's highest bid (0: none)
    prev_leader: str | None = None


@dataclass(slots=True)
class CrierState(BidBookState):
    asking: int = 0
    increment: int | None = None  # the crier's override; None: the lot's increment table
    calls: int = 0  # 0 none, 1 going once, 2 going twice
    bids: list[CrierBid] = field(default_factory=list)  # the bids taken, for undo


@dataclass(slots=True)
class DutchState(LotState):
    tick: int = 0  # how many drops so far


@dataclass(slots=True)
class LuckyState(LotState):
    """`draw_secret` (hex) is the room's secret the winning option is derived from (`draws`):
    internal, like everything in the state; only the commitments and, at the close, the reveals
    are published."""

    window: int = 0
    winning_option: int = -1
    picked: set[str] = field(default_factory=set)  # bidders who picked in the current window
    draw_secret: str = ""
    revealed: bool = False
