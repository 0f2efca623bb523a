"""The keyed log on JetStream: its layout, its appends and read-backs, its snapshots.

Layout (`LogLayout`; the room's is `gavel_kit.roomlog.LAYOUT`):

- log stream (file, kept forever, `allow_atomic`, `allow_direct`): partition p's messages on
  `<prefix>.part.<p>` — one LogGroup per group commit. The subject sits under the prefix the
  stream already holds (`gavel.room.lot.>` for the room), and no key can be mistaken for it (a
  key is a single subject token, `part.<p>` two).
- snapshot stream (file, `allow_rollup_hdrs`, `allow_atomic`, `allow_direct`): a key's latest
  snapshot on `<snapshot prefix>.<p>.<key>` — split into chunks of `chunk_bytes`, the first one a
  rollup of the subject (so it holds exactly the latest snapshot's chunks) and fenced with the
  subject's expected last sequence; the partition's checkpoint on `<snapshot prefix>.<p>` (also
  a rollup, also fenced). A checkpoint's snapshots and the checkpoint itself go in atomic
  batches, the checkpoint in the last one, so a crash never leaves a checkpoint whose snapshots
  are missing. A separate stream, so a checkpoint's burst of writes is not queued behind (or in
  front of) the log's fsyncs, and so snapshots can be pruned by rollups without touching the log.

Appends: a message alone is a plain publish; a group of several partitions' messages is one
atomic batch (one stale partition refuses the whole batch, nothing stored; ~4 fsyncs per batch
whatever its size, against one per message for separate publishes — docs/event-log.md has the
measurements). Anything but a clean acknowledgement (an error, a timeout, a lost connection) is
resolved by reading back, per message, the first message after its expected sequence on its
subject: ours (same Nats-Msg-Id) → stored there; someone else's → fenced; nothing → not stored,
send again. Sending the same message again is safe: it carries the same expected sequence and
message id, so at most one copy is ever stored.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext

from gavel_kit import telemetry
from gavel_kit.keyedlog.machine import LogCorrupt
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
from gavel_kit.keyedlog.wire import EVENT_TYPE
from gavel_kit.nats import EVENT_TYPE as EVENT_TYPE_HEADER
from gavel_kit.nats import EXPECTED_LAST_SUBJECT_SEQUENCE, MSG_ID, StreamSpec, ensure_streams
from gavel_kit.streamread import first_after, last_message, last_per_subject, message_at, read_subject

BATCH_ID = "Nats-Batch-Id"
BATCH_SEQUENCE = "Nats-Batch-Sequence"
BATCH_COMMIT = "Nats-Batch-Commit"
ROLLUP = "Nats-Rollup"
CHUNK = "Gavel-Snapshot-Chunk"
MAX_BATCH_MESSAGES = 1_000  # nats-server 2.15's limit per atomic batch


@dataclass(frozen=True, slots=True)
class LogLayout:
    """Where a keyed log lives in JetStream."""

    stream: str
    prefix: str
    snapshot_stream: str
    snapshot_prefix: str

    def partition_subject(self, partition: int) -> str:
        return f"{self.prefix}.part.{partition}"

    def writer_subject(self, writer: str) -> str:
        return f"{self.prefix}.w.{writer}"

    def claim_subject(self, partition: int) -> str:
        return f"{self.prefix}.own.{partition}"

    @property
    def partition_subjects(self) -> str:
        return f"{self.prefix}.part.*"

    def snapshot_subject(self, partition: int, key: str) -> str:
        return f"{self.snapshot_prefix}.{partition}.{key}"

    def checkpoint_subject(self, partition: int) -> str:
        return f"{self.snapshot_prefix}.{partition}"

    def specs(self, *, replicas: int = 1, duplicate_window_s: float = 120, what: str = "keyed log") -> list[StreamSpec]:
        """The two streams (create them with gavel_kit.nats.ensure_streams)."""
        return [
            StreamSpec(
                name=self.stream,
                subjects=[f"{self.prefix}.>"],
                description=f"{what}: one LogGroup per partition per group commit (docs/event-log.md)",
                duplicate_window_s=duplicate_window_s,
                replicas=replicas,
                extra={"allow_direct": True, "allow_atomic": True},
            ),
            StreamSpec(
                name=self.snapshot_stream,
                subjects=[f"{self.snapshot_prefix}.>"],
                description=f"{what}: latest snapshot per key, checkpoint per partition (docs/event-log.md)",
                duplicate_window_s=duplicate_window_s,
                replicas=replicas,
                extra={"allow_direct": True, "allow_atomic": True, "allow_rollup_hdrs": True},
            ),
        ]


class JetStreamLogStore:
    """`LogStore` on JetStream. `atomic_from`: groups of at least this many messages go as one
    atomic batch, smaller ones as concurrent plain publishes (2, the default: every group of
    several partitions is a batch; a large number: never)."""

    def __init__(
        self,
        nc: Client,
        layout: LogLayout,
        *,
        atomic_from: int = 2,
        ack_wait_s: float = 5.0,
        read_timeout_s: float = 5.0,
        chunk_bytes: int = 512 * 1024,
        snapshot_batch_messages: int = 256,
        snapshot_batch_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        if not 2 <= snapshot_batch_messages <= MAX_BATCH_MESSAGES:
            raise ValueError("snapshot_batch_messages must be between 2 and 1000")
        self._nc = nc
        self.layout = layout
        self._atomic_from = max(2, atomic_from)
        self._ack_wait_s = ack_wait_s
        self._read_timeout_s = read_timeout_s
        self._chunk_bytes = chunk_bytes
        self._batch_messages = snapshot_batch_messages
        self._batch_bytes = snapshot_batch_bytes
        self._batch_ids = itertools.count(1)
        self._batch_prefix = os.urandom(6).hex()
        self.stats = StoreStats()

    fences_by_claim = False

    # -- appends --------------------------------------------------------------------------------------

    async def claim(self, partition: int) -> None:
        return None  # the partition subject's expected sequence is the fence

    async def append(self, messages: Sequence[Outgoing]) -> list[AppendOutcome]:
        self.stats.appends += 1
        self.stats.messages += len(messages)
        if len(messages) >= self._atomic_from:
            outcomes = await self._atomic(messages)
        elif len(messages) == 1:
            outcomes = [await self._publish(messages[0])]
        else:
            outcomes = list(await asyncio.gather(*(self._publish(m) for m in messages)))
        for outcome in outcomes:
            name = type(outcome).__name__.lower()
            self.stats.outcomes[name] = self.stats.outcomes.get(name, 0) + 1
        return outcomes

    def _headers(self, message: Outgoing) -> dict[str, str]:
        headers = {
            MSG_ID: message.msg_id,
            EXPECTED_LAST_SUBJECT_SEQUENCE: str(message.expected),
            EVENT_TYPE_HEADER: EVENT_TYPE,
        }
        if telemetry.tracing_enabled():  # only when a span would record: the hot path
            telemetry.inject_headers(headers)
        return headers

    async def _publish(self, message: Outgoing) -> AppendOutcome:
        subject = self.layout.partition_subject(message.partition)
        self.stats.bytes += len(message.data)
        try:
            reply = await self._nc.request(
                subject, message.data, timeout=self._ack_wait_s, headers=self._headers(message)
            )
            ack = json.loads(reply.data)
        except (nats.errors.Error, TimeoutError, ValueError) as exc:
            return await self._resolve(message, repr(exc))
        if "error" in ack:
            return await self._resolve(message, _describe(ack))
        return Stored(int(ack["seq"]))

    async def _atomic(self, messages: Sequence[Outgoing]) -> list[AppendOutcome]:
        nc = self._nc
        batch_id = f"{self._batch_prefix}{next(self._batch_ids)}"
        last = len(messages)
        try:
            for number, message in enumerate(messages, start=1):
                headers = self._headers(message)
                headers[BATCH_ID] = batch_id
                headers[BATCH_SEQUENCE] = str(number)
                subject = self.layout.partition_subject(message.partition)
                self.stats.bytes += len(message.data)
                if number < last:
                    await nc.publish(subject, message.data, headers=headers)
                else:
                    headers[BATCH_COMMIT] = "1"
                    reply = await nc.request(subject, message.data, timeout=self._ack_wait_s, headers=headers)
            ack = json.loads(reply.data)
        except (nats.errors.Error, TimeoutError, ValueError) as exc:
            return await self._resolve_all(messages, repr(exc))
        if "error" in ack:
            return await self._resolve_all(messages, _describe(ack))
        first = int(ack["seq"]) - last + 1
        return [Stored(first + offset) for offset in range(last)]

    async def _resolve_all(self, messages: Sequence[Outgoing], reason: str) -> list[AppendOutcome]:
        return list(await asyncio.gather(*(self._resolve(m, reason) for m in messages)))

    async def _resolve(self, message: Outgoing, reason: str) -> AppendOutcome:
        """What follows the expected sequence on the partition subject: ours, another's, or none."""
        try:
            found = await first_after(
                self._nc,
                self.layout.stream,
                self.layout.partition_subject(message.partition),
                message.expected,
                timeout_s=self._read_timeout_s,
            )
        except Exception as exc:
            return Retry(f"{reason}; reading back failed: {exc!r}")
        if found is None:
            return Retry(reason)
        if found.headers.get(MSG_ID) == message.msg_id:
            return Stored(found.sequence)
        return Fenced(found.sequence)

    # -- reading the log --------------------------------------------------------------------------------

    async def read_partition(self, partition: int, after: int) -> list[StoredMessage]:
        messages = await read_subject(
            self._nc,
            self.layout.stream,
            self.layout.partition_subject(partition),
            after_sequence=after,
            timeout_s=self._read_timeout_s,
        )
        return [StoredMessage(m.sequence, m.data) for m in messages]

    async def read_message(self, sequence: int) -> StoredMessage | None:
        found = await message_at(self._nc, self.layout.stream, sequence, timeout_s=self._read_timeout_s)
        return StoredMessage(found.sequence, found.data) if found is not None else None

    # -- snapshots ----------------------------------------------------------------------------------

    async def read_checkpoint(self, partition: int) -> FoundSnapshot:
        found = await last_message(
            self._nc,
            self.layout.snapshot_stream,
            self.layout.checkpoint_subject(partition),
            timeout_s=self._read_timeout_s,
        )
        return FoundSnapshot(found.data, found.sequence) if found is not None else FoundSnapshot(None, 0)

    async def read_snapshot(self, partition: int, key: str) -> FoundSnapshot:
        subject = self.layout.snapshot_subject(partition, key)
        messages = await read_subject(self._nc, self.layout.snapshot_stream, subject, timeout_s=self._read_timeout_s)
        return _assemble(subject, [(m.sequence, m.data, m.headers) for m in messages])

    async def read_snapshots(self, partition: int) -> dict[str, FoundSnapshot]:
        pattern = self.layout.snapshot_subject(partition, "*")
        messages = await read_subject(self._nc, self.layout.snapshot_stream, pattern, timeout_s=self._read_timeout_s)
        by_subject: dict[str, list[tuple[int, bytes, dict[str, str]]]] = {}
        for m in messages:
            by_subject.setdefault(m.subject, []).append((m.sequence, m.data, m.headers))
        prefix = self.layout.snapshot_subject(partition, "")
        return {subject[len(prefix) :]: _assemble(subject, chunks) for subject, chunks in by_subject.items()}

    async def write_snapshots(
        self, partition: int, snapshots: Sequence[SnapshotWrite], checkpoint: SnapshotWrite
    ) -> SnapshotsWritten:
        layout = self.layout
        batches: list[list[tuple[str, str | None, dict[str, str], bytes]]] = [[]]
        size = 0
        for write in snapshots:
            assert write.key is not None
            subject = layout.snapshot_subject(partition, write.key)
            chunks = self._chunks(subject, write)
            chunk_bytes = sum(len(c[3]) for c in chunks)
            current = batches[-1]
            if current and (
                len(current) + len(chunks) > self._batch_messages or size + chunk_bytes > self._batch_bytes
            ):
                batches.append([])
                size = 0
            batches[-1].extend(chunks)
            size += chunk_bytes
        if len(batches[-1]) + 1 > self._batch_messages:
            batches.append([])
        batches[-1].append(
            (
                layout.checkpoint_subject(partition),
                None,
                {ROLLUP: "sub", EXPECTED_LAST_SUBJECT_SEQUENCE: str(checkpoint.expected)},
                checkpoint.data,
            )
        )
        written: dict[str, int] = {}
        checkpoint_sequence = 0
        for batch in batches:
            try:
                sequences = await self._write_batch(batch)
            except _BatchRefused as refused:
                now = await self._current(batch)
                raise SnapshotConflict(written, now) from refused
            for (_, key, _, _), sequence in zip(batch, sequences, strict=True):
                if key is None:
                    checkpoint_sequence = sequence
                else:
                    written[key] = sequence  # the last chunk's: the subject's last sequence
        return SnapshotsWritten(written, checkpoint_sequence)

    def _chunks(self, subject: str, write: SnapshotWrite) -> list[tuple[str, str | None, dict[str, str], bytes]]:
        data, size = write.data, self._chunk_bytes
        pieces = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
        chunks: list[tuple[str, str | None, dict[str, str], bytes]] = []
        for number, piece in enumerate(pieces, start=1):
            headers = {CHUNK: f"{number}/{len(pieces)}"}
            if number == 1:
                headers[ROLLUP] = "sub"
                headers[EXPECTED_LAST_SUBJECT_SEQUENCE] = str(write.expected)
            chunks.append((subject, write.key, headers, piece))
        return chunks

    async def _write_batch(self, batch: Sequence[tuple[str, str | None, dict[str, str], bytes]]) -> list[int]:
        nc = self._nc
        batch_id = f"{self._batch_prefix}{next(self._batch_ids)}"
        try:
            for number, (subject, _, headers, data) in enumerate(batch, start=1):
                framed = {**headers, BATCH_ID: batch_id, BATCH_SEQUENCE: str(number)}
                if number < len(batch):
                    await nc.publish(subject, data, headers=framed)
                else:
                    framed[BATCH_COMMIT] = "1"
                    reply = await nc.request(subject, data, timeout=self._ack_wait_s, headers=framed)
            ack = json.loads(reply.data)
        except (nats.errors.Error, TimeoutError, ValueError) as exc:
            raise _BatchRefused(repr(exc)) from exc
        if "error" in ack:
            raise _BatchRefused(_describe(ack))
        first = int(ack["seq"]) - len(batch) + 1
        return [first + offset for offset in range(len(batch))]

    async def _current(self, batch: Sequence[tuple[str, str | None, dict[str, str], bytes]]) -> dict[str | None, int]:
        """Where the batch's subjects are now (after a refused or unknown write)."""
        keys = {subject: key for subject, key, _, _ in batch}
        try:
            found = await last_per_subject(
                self._nc, self.layout.snapshot_stream, list(keys), batch=len(keys) + 1, timeout_s=self._read_timeout_s
            )
        except Exception:  # not known: expect "never written", the next conflict tells more
            return {}
        current: dict[str | None, int] = dict.fromkeys(keys.values(), 0)
        for message in found:
            if message.subject in keys:
                current[keys[message.subject]] = message.sequence
        return current


class _BatchRefused(Exception):
    pass


def _describe(ack: dict[str, Any]) -> str:
    error = ack.get("error") or {}
    return f"{error.get('err_code', '?')}: {error.get('description', '')}"


def _assemble(subject: str, chunks: Sequence[tuple[int, bytes, dict[str, str]]]) -> FoundSnapshot:
    """A snapshot from its subject's messages (exactly its chunks: every write is a rollup)."""
    if not chunks:
        return FoundSnapshot(None, 0)
    total = len(chunks)
    for number, (_, _, headers) in enumerate(chunks, start=1):
        if headers.get(CHUNK) != f"{number}/{total}":
            raise LogCorrupt(f"{subject}: chunk {number} of {total} is {headers.get(CHUNK)!r}")
    return FoundSnapshot(b"".join(data for _, data, _ in chunks), chunks[-1][0])


async def ensure_log_streams(js: JetStreamContext, layout: LogLayout, *, replicas: int = 1) -> None:
    """Create (or update) the layout's two streams."""
    await ensure_streams(js, layout.specs(replicas=replicas))
