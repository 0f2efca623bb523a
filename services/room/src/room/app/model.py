"""What the room service adds around the engines: lot identity, the service's own events, the
batches a lot's log is made of, and the answers commands get.

A lot's log is a sequence of batches, one per accepted command, numbered 1, 2, 3, ... per lot
(`lot_sequence`). The first batch holds `LotConfigured` (the lot's terms and seller), so replaying
a log needs nothing else. Engine events (`room.domain.events`) and the two service events below
share one list per batch, in the order they happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gavel_core.formats import LotTerms
from room.domain import Event


@dataclass(frozen=True, slots=True)
class LotInfo:
    """Who sells a lot and where it sits: fixed when the lot is configured."""

    lot_id: str
    sale_id: str
    seller_id: str
    group_id: str = ""
    room_index: int = 0
    room_count: int = 1
    product_id: str = ""
    registration_required: bool = False  # bidders need an approved registration for the sale

    @property
    def multi_room(self) -> bool:
        """A product sold in several rooms at once: bidders bid only in the room they are seated in."""
        return self.room_count > 1


@dataclass(frozen=True, slots=True)
class PublishedLot:
    """What the catalog said it published (and started, or withdrew): the only source of a lot's
    terms. `source` is the catalog's Lot message as it sent it (kept byte for byte)."""

    info: LotInfo
    terms: LotTerms
    source: bytes = b""


@dataclass(frozen=True, slots=True)
class LotConfigured:
    """The lot's first event: its identity and terms (secrets included), and for a lucky lot the
    room's own `draw_secret` (random bytes the winning option comes from; never published)."""

    lot_id: str
    at_ms: int
    info: LotInfo
    terms: LotTerms
    draw_secret: bytes = b""
    # The catalog's published lot as it sent it, kept byte for byte in the log (not part of equality:
    # a lot replayed from its log equals the one configured).
    source: bytes = field(default=b"", compare=False)


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """The lot was stopped before it ended (a sale admin's Withdraw, or the catalog withdrew it or
    cancelled its sale before it started: `by` = "catalog"); a LotUnsold(WITHDRAWN) follows."""

    lot_id: str
    at_ms: int
    by: str
    reason: str


@dataclass(frozen=True, slots=True)
class ClosingSoon:
    """The room's notice that a timed lot closes at `deadline_ms` (stamped `at_ms` = deadline - N)."""

    lot_id: str
    at_ms: int
    deadline_ms: int


RoomEvent = Event | LotConfigured | ClosingSoon | Withdrawn


@dataclass(frozen=True, slots=True)
class LotSummary:
    """The public state after a batch: what consumers read without running the engine."""

    phase: str
    price: int
    leader: str | None
    deadline_ms: int | None


@dataclass(frozen=True, slots=True)
class Batch:
    """One accepted command and everything it caused: one message on the lot's subject."""

    lot_id: str
    lot_sequence: int
    command_id: str
    command: str
    actor_id: str
    fingerprint: str
    decided_at_ms: int
    events: tuple[RoomEvent, ...]
    after: LotSummary
    currency: str  # of every amount in the batch (the lot's)


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """A batch as the log holds it: with its stream sequence and its encoded form (re-announced
    as it is to watchers after a failover)."""

    batch: Batch
    stream_sequence: int
    encoded: bytes


@dataclass(frozen=True, slots=True)
class Receipt:
    """The answer to an accepted command, kept per command id so a retry gets it again.

    `price`/`leader` are the standing price and leader right after the batch; the optional fields
    belong to particular commands (a lucky pick's `correct`, a floor bid's bidder, amount, jumps).
    """

    lot_sequence: int
    fingerprint: str
    currency: str
    price: int
    leader: str | None
    correct: bool | None = None
    bidder: str | None = None
    amount: int | None = None
    jumps: int | None = None


@dataclass(frozen=True, slots=True)
class LotView:
    """A lot as anyone may see it (GetLotState): no secrets."""

    lot_id: str
    sale_id: str
    currency: str
    format: str
    close: str
    phase: str
    lot_sequence: int
    price: int
    leader: str | None
    deadline_ms: int | None
    asking: int | None
    min_bid: int | None
    round: int
    options: tuple[str, ...]
    buyer: str | None
    hammer_price: int | None
    unsold_reason: str | None
    room_index: int
    room_count: int
