"""The keyed log's port: what it needs from a store (JetStream in production, memory in tests).

Appending: a group is a list of messages, one per partition, each to follow exactly the stream
sequence its writer last saw on the partition's subject. The store answers each message with
`Stored` (its stream sequence), `Fenced` (the subject moved on: another writer owns the
partition now) or `Retry` (not stored, or the outcome is unknown: send the very same message
again). A store must make a resend safe and conclusive: if the first attempt was stored after
all, the resend's answer is `Stored` with that first attempt's sequence (JetStream: the resend is
refused by the expected-sequence check or the dedupe window, and the store reads back what is at
the sequence after the expected one — ours, someone else's, or nothing yet).

Snapshots: the latest snapshot of each key and one checkpoint per partition, each written only if
its subject is still at the sequence the writer last saw (fenced like the log, so a stale owner
cannot hide a newer snapshot behind an older one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One partition's message of a group."""

    partition: int
    expected: int  # the partition subject's last stream sequence this message must follow (0: empty)
    msg_id: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Stored:
    sequence: int


@dataclass(frozen=True, slots=True)
class Fenced:
    """The partition subject has a message after `expected` that is not ours: another writer."""

    sequence: int


@dataclass(frozen=True, slots=True)
class Retry:
    reason: str


AppendOutcome = Stored | Fenced | Retry


@dataclass(frozen=True, slots=True)
class StoredMessage:
    sequence: int
    data: bytes


@dataclass(frozen=True, slots=True)
class SnapshotWrite:
    """A key's snapshot (`key` set) or the partition's checkpoint (`key` None), to be written iff
    its subject's last sequence is still `expected` (0: never written)."""

    key: str | None
    data: bytes
    expected: int


@dataclass(frozen=True, slots=True)
class SnapshotsWritten:
    """Each written key's subject sequence now, and the checkpoint's."""

    sequences: dict[str, int]
    checkpoint: int


class SnapshotConflict(Exception):
    """A snapshot subject was not where the writer expected (another writer wrote it, or an earlier
    write's outcome was unknown). `written`: the keys that were written anyway (earlier batches);
    `current`: the subjects' sequences as read now (key None: the checkpoint)."""

    def __init__(self, written: dict[str, int], current: dict[str | None, int]) -> None:
        super().__init__(f"snapshot subjects moved on: {sorted(str(k) for k in current)}")
        self.written = written
        self.current = current


@dataclass(frozen=True, slots=True)
class FoundSnapshot:
    """What a snapshot subject holds now: the snapshot (None: none) and the subject's sequence."""

    data: bytes | None
    sequence: int


@dataclass(slots=True)
class StoreStats:
    appends: int = 0
    messages: int = 0
    bytes: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


class LogStore(Protocol):
    # True: a partition is fenced by claiming it (`claim`), and a fenced partition is lost for
    # good (another writer claimed it); False: by the expected sequence of its own subject, and
    # a fenced partition is rebuilt and its commands decided again.
    fences_by_claim: bool

    async def claim(self, partition: int) -> None:
        """Make this store the partition's only writer (a no-op where subjects fence)."""
        ...

    async def append(self, messages: Sequence[Outgoing]) -> list[AppendOutcome]:
        """Append one group (one message per partition, at most one per partition); one outcome
        per message, in order. Never raises for a failed or unknown append: that is `Retry`."""
        ...

    async def read_partition(self, partition: int, after: int) -> list[StoredMessage]:
        """The partition subject's messages after stream sequence `after`, in order."""
        ...

    async def read_message(self, sequence: int) -> StoredMessage | None:
        """The log's message at a stream sequence (None: none, or deleted)."""
        ...

    async def read_checkpoint(self, partition: int) -> FoundSnapshot: ...

    async def read_snapshot(self, partition: int, key: str) -> FoundSnapshot: ...

    async def read_snapshots(self, partition: int) -> dict[str, FoundSnapshot]:
        """Every key of the partition that has a snapshot."""
        ...

    async def write_snapshots(
        self, partition: int, snapshots: Sequence[SnapshotWrite], checkpoint: SnapshotWrite
    ) -> SnapshotsWritten:
        """Write the snapshots, then the checkpoint (only if every snapshot was written); raises
        SnapshotConflict when a subject is not at its expected sequence."""
        ...
