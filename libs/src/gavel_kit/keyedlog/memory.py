"""The keyed log's store in memory, following JetStream's rules (for unit tests of the log and of
the services built on it).

The rules it keeps: one stream sequence for every message; an append is stored only if its
partition subject's last sequence is the one it expects; several messages of one append are an
atomic batch (one stale check refuses them all, nothing stored); a message id seen before is not
stored twice; a refused or unconfirmed append is resolved as the JetStream store resolves it, by
looking at what follows the expected sequence on the subject. Snapshot subjects are
revision-checked the same way and keep only their latest value.

Faults to inject: `lose_acks` (stored, but the writer is told `Retry`, as after a lost ack),
`drop_appends` (not stored, `Retry`, as after a timeout before the server got it), `hold` (appends
wait until it is set: a group in flight while the next accumulates) and `before_append` (a hook
that runs first: another writer, a crash).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from gavel_kit.keyedlog.store import (
    AppendOutcome,
    Fenced,
    FoundSnapshot,
    Outgoing,
    Retry,
    SnapshotConflict,
    SnapshotsWritten,
    SnapshotWrite,
    Stored,
    StoredMessage,
    StoreStats,
)


@dataclass(frozen=True, slots=True)
class _Message:
    sequence: int
    partition: int
    msg_id: str
    data: bytes


@dataclass
class MemoryLogStore:
    messages: list[_Message] = field(default_factory=list)
    lose_acks: int = 0
    drop_appends: int = 0
    hold: asyncio.Event | None = None
    before_append: Callable[[Sequence[Outgoing]], Awaitable[None]] | None = None
    stats: StoreStats = field(default_factory=StoreStats)
    _last: dict[int, int] = field(default_factory=dict)  # partition -> last sequence
    _ids: dict[str, int] = field(default_factory=dict)
    _snapshots: dict[tuple[int, str | None], tuple[bytes, int]] = field(default_factory=dict)
    _snapshot_sequence: int = 0
    snapshot_writes: int = 0
    calls: int = 0  # appends begun (a held one counts: it is in flight)

    fences_by_claim = False

    # -- the log --------------------------------------------------------------------------------------

    async def claim(self, partition: int) -> None:
        return None

    async def append(self, messages: Sequence[Outgoing]) -> list[AppendOutcome]:
        self.calls += 1
        if self.before_append is not None:
            await self.before_append(messages)
        if self.hold is not None:
            await self.hold.wait()
        await asyncio.sleep(0)  # an append is never synchronous
        self.stats.appends += 1
        self.stats.messages += len(messages)
        if self.drop_appends > 0:
            self.drop_appends -= 1
            return [self._resolve(m) for m in messages]
        stored = self._store(messages)
        if stored is None:
            return [self._resolve(m) for m in messages]
        if self.lose_acks > 0:
            self.lose_acks -= 1
            return [Retry("ack lost") for _ in messages]
        return [Stored(sequence) for sequence in stored]

    def _store(self, messages: Sequence[Outgoing]) -> list[int] | None:
        """Store all of them, or none (a stale check or a known message id refuses the batch)."""
        if len(messages) == 1 and messages[0].msg_id in self._ids:
            return [self._ids[messages[0].msg_id]]  # a plain publish's duplicate: acked with the original
        for message in messages:
            if message.msg_id in self._ids or self._last.get(message.partition, 0) != message.expected:
                return None
        sequences = []
        for message in messages:
            sequence = len(self.messages) + 1
            self.messages.append(_Message(sequence, message.partition, message.msg_id, message.data))
            self._last[message.partition] = sequence
            self._ids[message.msg_id] = sequence
            sequences.append(sequence)
            self.stats.bytes += len(message.data)
        return sequences

    def _resolve(self, message: Outgoing) -> AppendOutcome:
        """What follows the expected sequence on the partition's subject: ours, another's, none."""
        after = next(
            (m for m in self.messages if m.partition == message.partition and m.sequence > message.expected), None
        )
        if after is None:
            return Retry("not stored")
        if after.msg_id == message.msg_id:
            return Stored(after.sequence)
        return Fenced(after.sequence)

    def write_foreign(self, partition: int, data: bytes, msg_id: str) -> int:
        """Another writer appends to the partition (it passes the fence: it read the latest)."""
        expected = self._last.get(partition, 0)
        (sequence,) = self._store([Outgoing(partition, expected, msg_id, data)]) or [0]
        return sequence

    async def read_partition(self, partition: int, after: int) -> list[StoredMessage]:
        await asyncio.sleep(0)
        return [
            StoredMessage(m.sequence, m.data) for m in self.messages if m.partition == partition and m.sequence > after
        ]

    async def read_message(self, sequence: int) -> StoredMessage | None:
        await asyncio.sleep(0)
        if 1 <= sequence <= len(self.messages):
            message = self.messages[sequence - 1]
            return StoredMessage(message.sequence, message.data)
        return None

    def last_sequence(self, partition: int) -> int:
        return self._last.get(partition, 0)

    # -- snapshots -----------------------------------------------------------------------------------

    async def read_checkpoint(self, partition: int) -> FoundSnapshot:
        await asyncio.sleep(0)
        return self._found((partition, None))

    async def read_snapshot(self, partition: int, key: str) -> FoundSnapshot:
        await asyncio.sleep(0)
        return self._found((partition, key))

    async def read_snapshots(self, partition: int) -> dict[str, FoundSnapshot]:
        await asyncio.sleep(0)
        return {key: self._found((p, key)) for p, key in self._snapshots if p == partition and key is not None}

    def _found(self, subject: tuple[int, str | None]) -> FoundSnapshot:
        kept = self._snapshots.get(subject)
        return FoundSnapshot(None, 0) if kept is None else FoundSnapshot(kept[0], kept[1])

    async def write_snapshots(
        self, partition: int, snapshots: Sequence[SnapshotWrite], checkpoint: SnapshotWrite
    ) -> SnapshotsWritten:
        await asyncio.sleep(0)
        current: dict[str | None, int] = {}
        for write in (*snapshots, checkpoint):
            found = self._snapshots.get((partition, write.key))
            sequence = found[1] if found is not None else 0
            if sequence != write.expected:
                current[write.key] = sequence
        if current:
            raise SnapshotConflict({}, current)
        written: dict[str, int] = {}
        for write in snapshots:
            assert write.key is not None
            written[write.key] = self._put((partition, write.key), write.data)
        self.snapshot_writes += 1
        return SnapshotsWritten(written, self._put((partition, None), checkpoint.data))

    def _put(self, subject: tuple[int, str | None], data: bytes) -> int:
        self._snapshot_sequence += 1
        self._snapshots[subject] = (data, self._snapshot_sequence)
        return self._snapshot_sequence

    def overwrite_snapshot(self, partition: int, key: str | None, data: bytes) -> None:
        """Another writer writes a snapshot subject (tests of the snapshot fence)."""
        self._put((partition, key), data)
