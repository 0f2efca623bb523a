"""What happened to a lot: the facts its engine appends to the lot's event stream.

These are the *internal* events (the ones replayed to rebuild a lot): `BidAccepted.amount` is the
bidder's secret maximum and `LuckyWindowOpened.winning_option` the secret answer, so whatever is
published to watchers is a projection that drops them. Every event carries `lot_id` and `at_ms`
(the time it took effect: for deadline events the deadline itself, not when the tick arrived, so
the log does not depend on timer jitter). Fields are primitives only (see `room.domain.codec`).
"""

from __future__ import annotations

from dataclasses import dataclass

from room.domain.fastinit import fast_init


@dataclass(frozen=True, slots=True)
class Event:
    lot_id: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class LotOpened(Event):
    by: str
    format: str
    asking: int  # the opening call / Dutch start / lucky price
    deadline_ms: int | None  # close, first tick or end of window; None for a crier lot


@dataclass(frozen=True, slots=True)
class BidAccepted(Event):
    """An online bid was taken. `amount` is what the bidder bid (their maximum for proxy English);
    `price` and `leader` are the standing price and its holder afterwards; `previous_leader` is who
    was outbid (None if nobody, or if the leader only raised their own maximum)."""

    bid_id: str
    bidder: str
    amount: int
    price: int
    leader: str
    previous_leader: str | None


@dataclass(frozen=True, slots=True)
class FloorBidAccepted(Event):
    """A floor paddle press became a bid of `jumps` increments over the asking price."""

    bid_id: str
    bidder: str
    paddle: str
    device_id: str
    force: int
    press_ms: int
    jumps: int
    discount_bp: int
    amount: int
    previous_leader: str | None


@dataclass(frozen=True, slots=True)
class ClosingExtended(Event):
    """Soft close: a late bid moved the close to `deadline_ms`; `extension_ms` is the total so far."""

    deadline_ms: int
    extension_ms: int


@dataclass(frozen=True, slots=True)
class BuyNowTaken(Event):
    bid_id: str
    bidder: str
    price: int


@dataclass(frozen=True, slots=True)
class RoundEnded(Event):
    """A timed round closed with `highest` by `leader` (None: no bid); `next_deadline_ms` is the end
    of the next round, None when the auction ends here."""

    round: int
    highest: int | None
    leader: str | None
    next_deadline_ms: int | None


@dataclass(frozen=True, slots=True)
class PriceDropped(Event):
    price: int
    tick: int
    next_deadline_ms: int


@dataclass(frozen=True, slots=True)
class BiddingReopened(Event):
    """Dutch: after a winner defaulted the descent resumes at `price`, the lot's `tick`-th price
    (the one after the defaulted price), for a full tick until `deadline_ms`. `tick` is None only
    in logs recorded before this rule, when the defaulted price was offered again."""

    price: int
    deadline_ms: int
    tick: int | None = None


@dataclass(frozen=True, slots=True)
class LuckyWindowOpened(Event):
    """`winning_option` is secret; `commitment` (public) binds the room to it (`room.domain.draws`).
    Empty for the retired rules, whose option the room did not draw."""

    window: int
    winning_option: int
    deadline_ms: int
    commitment: str = ""


@dataclass(frozen=True, slots=True)
class LuckyDrawRevealed(Event):
    """At a lucky lot's close: what the commitment of draw `draw` hid (public, for verification)."""

    draw: int
    option: int
    nonce: str
    commitment: str


@dataclass(frozen=True, slots=True)
class OptionPicked(Event):
    bid_id: str
    bidder: str
    option: int
    correct: bool


@dataclass(frozen=True, slots=True)
class OfferedToVendor(Event):
    """The reserve was not met: the vendor may take `bidder`'s `price` until `deadline_ms`."""

    bidder: str
    price: int
    source: str
    paddle: str | None
    discount_bp: int
    deadline_ms: int


@dataclass(frozen=True, slots=True)
class VendorAccepted(Event):
    by: str
    bidder: str
    price: int


@dataclass(frozen=True, slots=True)
class VendorDeclined(Event):
    by: str


@dataclass(frozen=True, slots=True)
class ProvisionalWinnerDeclared(Event):
    """`bidder` wins at `price` subject to confirmation; `attempt` 1 is the lot's first provisional
    winner (the only one penalised for defaulting), 2+ later ones (the English cascade, a Dutch
    taker after the clock resumed, a later lucky window's winner)."""

    bidder: str
    price: int
    attempt: int
    source: str
    paddle: str | None
    discount_bp: int


@dataclass(frozen=True, slots=True)
class ConfirmationRequested(Event):
    bidder: str
    price: int
    attempt: int
    deadline_ms: int


@dataclass(frozen=True, slots=True)
class WinnerConfirmed(Event):
    bidder: str
    price: int


@dataclass(frozen=True, slots=True)
class OfferLapsed(Event):
    bidder: str
    price: int
    attempt: int
    reason: str  # "declined" | "timeout"


@dataclass(frozen=True, slots=True)
class PenaltyAssessed(Event):
    bidder: str
    price: int
    reason: str


@dataclass(frozen=True, slots=True)
class LotSold(Event):
    buyer: str
    hammer_price: int
    source: str  # "online" | "floor"
    paddle: str | None
    discount_bp: int


@dataclass(frozen=True, slots=True)
class LotUnsold(Event):
    reason: str


@dataclass(frozen=True, slots=True)
class LotPaused(Event):
    by: str
    remaining_ms: int | None


@dataclass(frozen=True, slots=True)
class LotResumed(Event):
    by: str
    deadline_ms: int | None


@dataclass(frozen=True, slots=True)
class AskingSet(Event):
    by: str
    asking: int


@dataclass(frozen=True, slots=True)
class IncrementSet(Event):
    by: str
    increment: int | None
    asking: int


@dataclass(frozen=True, slots=True)
class GoingOnce(Event):
    by: str


@dataclass(frozen=True, slots=True)
class GoingTwice(Event):
    by: str


@dataclass(frozen=True, slots=True)
class Hammered(Event):
    by: str
    bidder: str
    price: int
    deadline_ms: int | None  # end of the reopen grace; None: final at once


@dataclass(frozen=True, slots=True)
class Passed(Event):
    by: str
    deadline_ms: int | None


@dataclass(frozen=True, slots=True)
class Reopened(Event):
    by: str


@dataclass(frozen=True, slots=True)
class BidUndone(Event):
    """The crier took back `bid_id`; `price`, `leader` and `asking` are what stands afterwards."""

    by: str
    bid_id: str
    bidder: str
    amount: int
    price: int
    leader: str | None
    asking: int


ALL_EVENTS: tuple[type[Event], ...] = (
    LotOpened,
    BidAccepted,
    FloorBidAccepted,
    ClosingExtended,
    BuyNowTaken,
    RoundEnded,
    PriceDropped,
    BiddingReopened,
    LuckyWindowOpened,
    OptionPicked,
    LuckyDrawRevealed,
    OfferedToVendor,
    VendorAccepted,
    VendorDeclined,
    ProvisionalWinnerDeclared,
    ConfirmationRequested,
    WinnerConfirmed,
    OfferLapsed,
    PenaltyAssessed,
    LotSold,
    LotUnsold,
    LotPaused,
    LotResumed,
    AskingSet,
    IncrementSet,
    GoingOnce,
    GoingTwice,
    Hammered,
    Passed,
    Reopened,
    BidUndone,
)

for _event_type in ALL_EVENTS:
    fast_init(_event_type)
