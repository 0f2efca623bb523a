"""What callers ask a lot to do. Time is never in a command: it is `decide`'s `now_ms` argument.

Eligibility comes in the command (`standing`), already resolved by the room service. Bid ids are
client-generated; a repeat of an accepted one is refused with `DUPLICATE_BID_ID` (so the service
can answer it from its stored first answer) - except an older repeat on a proxy English lot, which
the price rules refuse instead (see `room.domain.english`). Actors (`by`) are recorded in the events they
cause; whether they hold the role is checked at the edge, not here.
"""

from __future__ import annotations

from dataclasses import dataclass

from room.domain.fastinit import fast_init
from room.domain.model import GOOD_STANDING, BidderStanding


@dataclass(frozen=True, slots=True)
class Command:
    """Marker base of every command."""


@dataclass(frozen=True, slots=True)
class OpenLot(Command):
    """Start bidding (the sale schedule, or the crier for a crier lot); `asking` overrides the opening call."""

    by: str = "system"
    asking: int | None = None


@dataclass(frozen=True, slots=True)
class PlaceBid(Command):
    """An online bid. English: the bidder's maximum (proxy). Rounds: the bid. Crier: take the asking
    price if it is at most `max_amount`. Dutch: take the current price if it is at most `max_amount`."""

    bid_id: str
    bidder: str
    max_amount: int
    standing: BidderStanding = GOOD_STANDING


@dataclass(frozen=True, slots=True)
class FloorBid(Command):
    """A floor paddle press, resolved by the room to the registered bidder holding the paddle."""

    bid_id: str
    bidder: str
    paddle: str
    device_id: str
    force: int  # the device's reading, 0..1000 of its full scale
    press_ms: int
    standing: BidderStanding = GOOD_STANDING


@dataclass(frozen=True, slots=True)
class BuyNow(Command):
    bid_id: str
    bidder: str
    standing: BidderStanding = GOOD_STANDING


@dataclass(frozen=True, slots=True)
class PickOption(Command):
    """Lucky: pick one of the lot's options by index."""

    bid_id: str
    bidder: str
    option: int
    standing: BidderStanding = GOOD_STANDING


@dataclass(frozen=True, slots=True)
class Tick(Command):
    """Fire every deadline due at `now_ms` (round end, close, Dutch tick, window end, timeouts)."""


@dataclass(frozen=True, slots=True)
class ConfirmWin(Command):
    bidder: str


@dataclass(frozen=True, slots=True)
class DeclineWin(Command):
    bidder: str


@dataclass(frozen=True, slots=True)
class VendorAccept(Command):
    """The vendor takes the standing bid: during a soft-close extension, or below the reserve when offered."""

    by: str


@dataclass(frozen=True, slots=True)
class VendorDecline(Command):
    by: str


@dataclass(frozen=True, slots=True)
class Pause(Command):
    by: str


@dataclass(frozen=True, slots=True)
class Resume(Command):
    by: str


@dataclass(frozen=True, slots=True)
class SetAsking(Command):
    by: str
    amount: int


@dataclass(frozen=True, slots=True)
class SetIncrement(Command):
    """The crier's live increment; None returns to the lot's increment table."""

    by: str
    amount: int | None


@dataclass(frozen=True, slots=True)
class CallGoingOnce(Command):
    by: str


@dataclass(frozen=True, slots=True)
class CallGoingTwice(Command):
    by: str


@dataclass(frozen=True, slots=True)
class Hammer(Command):
    by: str


@dataclass(frozen=True, slots=True)
class PassLot(Command):
    by: str


@dataclass(frozen=True, slots=True)
class Reopen(Command):
    """Take back a hammer or a pass within the lot's `reopen_grace_ms`."""

    by: str


@dataclass(frozen=True, slots=True)
class UndoLastBid(Command):
    by: str


ALL_COMMANDS: tuple[type[Command], ...] = (
    OpenLot,
    PlaceBid,
    FloorBid,
    BuyNow,
    PickOption,
    Tick,
    ConfirmWin,
    DeclineWin,
    VendorAccept,
    VendorDecline,
    Pause,
    Resume,
    SetAsking,
    SetIncrement,
    CallGoingOnce,
    CallGoingTwice,
    Hammer,
    PassLot,
    Reopen,
    UndoLastBid,
)

for _command_type in ALL_COMMANDS:
    fast_init(_command_type)
