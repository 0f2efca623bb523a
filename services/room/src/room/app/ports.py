"""What the room's use cases need from the outside world (adapters implement these)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from room.app.model import Batch, LotInfo, PublishedLot, StoredBatch


class Clock(Protocol):
    def __call__(self) -> int:
        """Wall-clock milliseconds since the epoch: the `now_ms` every decision is made at."""
        ...


class SecretSource(Protocol):
    def __call__(self) -> bytes:
        """Fresh random bytes no one can predict (for a lucky lot's draw; `secrets` in production)."""
        ...


class WrongLastSequence(Exception):
    """The lot's subject moved on since this replica read it: another owner appended. The
    in-memory lot is stale and must be rebuilt from the log."""


class AppendUnconfirmed(Exception):
    """The append may or may not have been stored (timeout, connection lost): rebuild and look."""


@dataclass(frozen=True, slots=True)
class Appended:
    stream_sequence: int
    encoded: bytes


class EventLog(Protocol):
    """The lots' event log (JetStream subject gavel.room.lot.<lot_id>)."""

    async def append(self, batch: Batch, expected_stream_sequence: int) -> Appended:
        """Store the batch iff the lot's last stored batch has `expected_stream_sequence` (0: none).

        Raises WrongLastSequence when another writer got there first and AppendUnconfirmed when the
        outcome is unknown.
        """
        ...

    async def read(self, lot_id: str, after_stream_sequence: int = 0) -> list[StoredBatch]:
        """The lot's batches after a stream sequence, in order (all of them from 0)."""
        ...


class Announcer(Protocol):
    """Tells watchers (on every replica) about a batch once it is stored."""

    async def announce(self, lot_id: str, stream_sequence: int, encoded: bytes, sale_id: str = "") -> None: ...


class ActiveLots(Protocol):
    """The index of lots that may have a pending deadline, per partition: a new owner loads them so
    their timers keep running after a failover (lots that are merely scheduled load on first touch)."""

    async def mark(self, partition: int, lot_id: str) -> None: ...

    async def unmark(self, partition: int, lot_id: str) -> None: ...

    async def list(self, partition: int) -> list[str]: ...


class TermsSource(Protocol):
    """The fallback when a lot's log is still empty: the catalog's own answer (to the room's service
    identity) that the lot is published *and started*, with its published terms. None: the catalog
    has not started such a lot (unknown, a draft, only scheduled, or no live format) — the room does
    not run it. Never a read of a draft."""

    async def started(self, lot_id: str) -> PublishedLot | None: ...


class Registrations(Protocol):
    async def approved(self, sale_id: str, bidder_id: str) -> bool:
        """Whether the bidder holds an approved registration for the sale (fail closed: False when
        it cannot be told)."""
        ...


class Staff(Protocol):
    async def holds(self, sale_id: str, subject: str, role: str) -> bool:
        """Whether `subject` holds staff `role` (crier, clerk, sale_admin) in the sale."""
        ...


class Seating(Protocol):
    async def is_seated(self, lot: LotInfo, bidder_id: str) -> bool:
        """Whether the bidder is seated in this lot (room) of a multi-room product."""
        ...


class PaddleRegistry(Protocol):
    async def bidder_for(self, sale_id: str, paddle: str) -> str | None:
        """The bidder holding the paddle in the sale, if it is registered."""
        ...


class Subscription(Protocol):
    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One batch of one lot as watchers get it: `payload` is the public message (adapter-defined)."""

    lot_sequence: int
    stream_sequence: int
    payload: object
    final: bool = False  # the batch ended the lot (nothing follows it)


class LiveFeedSource(Protocol):
    """Batches as their owners announce them (at most once, in order per lot) and, to fill gaps and
    serve late joiners, the log itself."""

    async def subscribe(self, lot_id: str, deliver: Callable[[FeedItem], None]) -> Subscription: ...

    async def history(self, lot_id: str, after_stream_sequence: int) -> Sequence[FeedItem]: ...

    async def tails(self, lot_ids: Sequence[str]) -> dict[str, int]:
        """The stream sequence of each lot's last stored batch (lots with none are left out), in as
        few requests as the log allows: the periodic check that no last announcement was lost."""
        ...

    def on_loss(self, listener: Callable[[str | None], None]) -> None:
        """Call `listener(lot_id)` when a lot's announcements may have been dropped, or
        `listener(None)` when any may have (e.g. after a reconnect)."""
        ...
