"""A keyed state machine on a fenced, group-committed log (docs/event-log.md).

Many keys (lots) live in a fixed set of partitions (ownership units); a process owns some
partitions (`open`/`close`, decided elsewhere: leases). For each command:

1. **decide at once, in memory, in arrival order.** A retry (same command id) is answered from the
   key's receipts or remembered refusals (a reused id with another request is REQUEST_ID_REUSED);
   otherwise the engine decides against the key's state *as it is now* — which may include
   decisions not yet durable — and an accepted record is applied right away, so the next command
   of the same key (a hot lot) is decided back to back, without waiting for an append.
2. **make durable together.** The decision's entry joins its partition's open *part* (the next
   message of that partition). One committer per process keeps at most one group in flight:
   while it is, the next group accumulates; when it returns, everything accumulated is cut and
   sent at once — one message per partition, all partitions in one append (no linger when idle:
   a lone command goes at once). Each partition's message carries the partition subject's last
   stream sequence as its expected sequence: the fence, so a writer that lost the partition
   cannot append to it.
3. **answer on the ack.** Callers are answered, in decision order, when the message holding their
   decision (or, for a refusal, a read or a no-op, the key's decisions before it) is stored. No
   task or future per command: a part holds its callers' reply callbacks; `submit` wraps one in a
   future for callers that want to await.

Outcomes of a partition's message: *stored* (answer, move on); *fenced* (another writer appended:
with partition subjects the partition's in-memory state is thrown away, rebuilt from snapshot +
tail, and its unanswered commands decided again, at most `max_attempts` times; with writer subjects
the partition was claimed away and is closed, its callers told NotOwner); *retry* (not stored or
unknown: the very same message is sent again, which the store makes safe — see store.py; with
partition subjects, after `retry_for_s` the partition is rebuilt from the log and its commands
decided again, receipts answering those that were stored after all).

Snapshots: after `checkpoint_every_entries` entries (or `checkpoint_every_s` with changes), a
partition checkpoint writes a snapshot of every key changed since the last one (state, receipts
and refusals within the dedupe window) and then the checkpoint record (the partition subject's
sequence everything up to which is covered). Rebuilding a partition reads the checkpoint, then
only the partition subject after it; a key is then restored from its snapshot plus its entries in
that tail — so recovery does not grow with history.
"""

from __future__ import annotations

import asyncio
import logging
import re
import zlib
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gavel_core.errors import (
    FailedPrecondition,
    FieldViolation,
    GavelError,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from gavel_kit.keyedlog import wire
from gavel_kit.keyedlog.engine import A, Accept, C, KeyedEngine, R, Refuse, Reply, S
from gavel_kit.keyedlog.store import (
    AppendOutcome,
    Fenced,
    FoundSnapshot,
    LogStore,
    Outgoing,
    Retry,
    SnapshotConflict,
    SnapshotWrite,
    Stored,
)

log = logging.getLogger("gavel.keyedlog")

T = TypeVar("T")
Reply_ = Callable[[Any, BaseException | None], None]
KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")

# partition status
OPENING, OPEN, CLOSED = "opening", "open", "closed"
# part state
FILLING, SEALED, SENDING, STORED, DROPPED = "filling", "sealed", "sending", "stored", "dropped"


class NotOwner(Exception):
    """The key's partition is not open in this process (not owned here, or no longer)."""

    def __init__(self, partition: int) -> None:
        super().__init__(f"partition {partition} is not open here")
        self.partition = partition


class LogCorrupt(Exception):
    """A key's snapshot and entries do not fit together (a gap in its key sequences)."""


def stable_partition(key: str, partitions: int) -> int:
    """crc32(key as UTF-8) mod partitions: stable across processes, machines and Python versions."""
    return zlib.crc32(key.encode()) % partitions


def request_id_reused(command_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "REQUEST_ID_REUSED",
        f"request_id {command_id!r} was already used for a different request",
        {"request_id": command_id},
    )


@dataclass(frozen=True, slots=True)
class LogConfig:
    max_group_partitions: int = 256  # partition messages per append (JetStream: <= 1,000 per atomic batch)
    max_group_bytes: int = 8 * 1024 * 1024
    max_message_bytes: int = 512 * 1024  # a part is closed at this size (the server's max_payload is 1 MB)
    linger_s: float = 0.0  # wait this long before cutting a group (0: cut as soon as the previous is back)
    max_attempts: int = 3  # decisions of one command before UNAVAILABLE (a contended partition)
    retry_for_s: float = 10.0  # partition subjects: resend this long, then rebuild (writer subjects: until known)
    retry_backoff_s: float = 0.05
    max_pending: int = 50_000  # commands not yet answered, process-wide; beyond: RESOURCE_EXHAUSTED
    dedupe_window_ms: int = 120_000  # receipts and refusals are kept this long ...
    max_receipts_per_key: int = 10_000  # ... and at most this many per key (memory and snapshots)
    max_refusals_per_key: int = 1_000
    checkpoint_every_entries: int = 10_000  # entries since the last checkpoint that start the next
    checkpoint_every_s: float = 60.0  # ... or this long, if anything changed
    # Writer subjects: a partition's tail lies in its writer's subject among every other partition's
    # entries, so a partition also checkpoints once this writer stored this many entries since its
    # last one (keeping a rebuild's scan of the writer's subject short, whatever the partition's pace).
    checkpoint_writer_lag_entries: int = 50_000
    sweep_every_s: float = 5.0  # writer subjects: how often quiet or lagging partitions are looked at
    checkpoints_at_once: int = 1  # per process, so snapshot bursts stay in the background
    bulk_snapshot_reads: int = 32  # a checkpoint restoring more keys than this reads them in one scan
    verify_snapshots: bool = False  # check each restored state's hash against its snapshot's


@dataclass(slots=True)
class LogStats:
    decisions: int = 0
    accepted: int = 0
    refused: int = 0
    appends: int = 0
    messages: int = 0
    entries: int = 0
    bytes: int = 0
    fenced: int = 0
    retried: int = 0
    rebuilt: int = 0
    checkpoints: int = 0
    snapshots: int = 0
    receipts_evicted_early: int = 0  # evicted by the count bound while still inside the dedupe window


@dataclass(frozen=True, slots=True)
class Committed:
    """A partition's message is stored: its accepted entries as (key, key_sequence, record bytes)."""

    partition: int
    sequence: int
    records: Sequence[tuple[str, int, bytes]]


class _Sub:
    """One command (or read) on its way: what to decide and whom to tell."""

    __slots__ = ("arrival", "attempts", "command", "command_id", "fingerprint", "key", "reply", "view")

    def __init__(
        self,
        arrival: int,
        key: str,
        command_id: str,
        fingerprint: str,
        command: Any,
        view: Callable[[Any], Any] | None,
        reply: Reply_,
    ) -> None:
        self.arrival = arrival
        self.key = key
        self.command_id = command_id
        self.fingerprint = fingerprint
        self.command = command
        self.view = view
        self.reply = reply
        self.attempts = 0


class _Receipt:
    __slots__ = ("answer", "decided_at", "fingerprint", "key_sequence")

    def __init__(self, fingerprint: str, decided_at: int, key_sequence: int, answer: Any) -> None:
        self.fingerprint = fingerprint
        self.decided_at = decided_at
        self.key_sequence = key_sequence
        self.answer = answer


class _Refusal:
    __slots__ = ("decided_at", "error", "fingerprint")

    def __init__(self, fingerprint: str, decided_at: int, error: Exception) -> None:
        self.fingerprint = fingerprint
        self.decided_at = decided_at
        self.error = error


class _Part:
    """A partition's next message: its entries (framed bytes) and the callers waiting on it."""

    __slots__ = (
        "count",
        "data",
        "expected",
        "first_sent",
        "frames",
        "group",
        "keys",
        "msg_id",
        "owner",
        "records",
        "sequence",
        "size",
        "state",
        "waiters",
    )

    def __init__(self, owner: _Partition) -> None:
        self.owner = owner
        self.frames: list[bytes] = []
        self.records: list[tuple[str, int, bytes]] = []
        self.keys: dict[str, int] = {}  # key -> its last accepted key sequence here (0: refusals only)
        self.waiters: list[tuple[_Sub, Any, BaseException | None]] = []
        self.count = 0
        self.size = 0
        self.state = FILLING
        self.data = b""
        self.msg_id = ""
        self.expected = 0
        self.group = 0
        self.sequence = 0
        self.first_sent = 0.0


class _Key:
    __slots__ = (
        "committed",
        "decided",
        "last_part",
        "loading",
        "name",
        "position",
        "receipts",
        "refusals",
        "snapshot_sequence",
        "state",
        "used_at",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.state: Any = None
        self.decided = 0  # the last key sequence decided (durable or not)
        self.committed = 0  # the last key sequence known durable
        self.position = 0  # stream sequence of the latest stored message with an entry of this key
        self.receipts: dict[str, _Receipt] = {}
        self.refusals: dict[str, _Refusal] = {}
        self.last_part: _Part | None = None  # the part holding its latest entry not yet stored
        self.loading: list[_Sub] | None = None  # commands waiting for the key to be restored
        self.snapshot_sequence = 0  # its snapshot subject's last stream sequence, as last seen
        self.used_at = 0


class _Partition:
    __slots__ = (
        "checkpoint_mark",
        "checkpoint_sequence",
        "checkpoint_subject",
        "checkpointed_at",
        "checkpointing",
        "claim_needed",
        "dirty",
        "epoch",
        "groups",
        "keys",
        "last_sequence",
        "number",
        "opened",
        "parts",
        "progress",
        "queued",
        "rebuild_pending",
        "since_checkpoint",
        "status",
        "tail",
        "writer",
    )

    def __init__(self, number: int, writer: str) -> None:
        self.number = number
        self.writer = writer
        self.status = OPENING
        self.epoch = 0
        self.last_sequence = 0  # the partition subject's last stream sequence, as this writer knows it
        self.keys: dict[str, _Key] = {}
        self.parts: deque[_Part] = deque()
        self.queued: list[_Sub] = []  # commands that arrived while (re)opening
        self.tail: dict[str, list[wire.StoredEntry]] = {}  # entries after the checkpoint, keys not restored yet
        self.dirty: set[str] = set()  # keys with stored entries since the last checkpoint
        self.since_checkpoint = 0
        self.checkpoint_sequence = 0
        self.checkpoint_mark = 0  # the writer's stored-entries count at the last checkpoint
        self.checkpoint_subject = 0
        self.checkpointing = False
        self.checkpointed_at = 0.0
        self.groups = 0
        self.opened = 0
        self.progress: asyncio.Future[None] | None = None
        self.rebuild_pending = False
        self.claim_needed = True  # claim before the first rebuild (stores that fence by claims)


@dataclass(slots=True)
class _Take:
    """A key's snapshot as taken (encoded at once), waiting for its last entry to be stored."""

    key: _Key
    key_sequence: int
    state: bytes
    state_hash: str
    receipts: list[wire.ReceiptRecord]
    refusals: list[wire.RefusalRecord]
    target: _Part | None
    position: int
    taken_at: int = 0


class KeyedLog(Generic[S, C, R, A]):
    """The keyed log of one service in one process (see the module doc)."""

    def __init__(
        self,
        engine: KeyedEngine[S, C, R, A],
        store: LogStore,
        *,
        partitions: int,
        writer: str,
        clock: Callable[[], int],
        config: LogConfig | None = None,
        partition_of: Callable[[str], int] | None = None,
        on_committed: Callable[[Committed], None] | None = None,
        on_fenced: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.config = config or LogConfig()
        self.partitions = partitions
        self.writer = writer
        self.stats = LogStats()
        self._store = store
        self._clock = clock
        self._partition_of = partition_of or (lambda key: stable_partition(key, partitions))
        self._on_committed = on_committed
        self._on_fenced = on_fenced
        self._partitions: dict[int, _Partition] = {}
        self._ready: dict[int, _Partition] = {}  # partitions whose next part can be sent (FIFO)
        self._wake = asyncio.Event()
        self._arrivals = 0
        self._pending = 0
        self._committer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._checkpoint_slots = asyncio.Semaphore(self.config.checkpoints_at_once)
        self._claims = store.fences_by_claim
        self._last_stored = 0  # the highest stream sequence this writer had stored
        self._entries_stored = 0  # entries this writer had stored, all partitions

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._committer is None:
            self._committer = asyncio.get_running_loop().create_task(self._commit_loop(), name="keyedlog-commit")
            if self._claims:
                self._spawn(self._sweep())

    async def _sweep(self) -> None:
        """Writer subjects: a quiet partition's checkpoint moves up to this writer's last message
        now and then (no snapshots to write), so a rebuild's tail stays short — its tail is read
        from the writer's subject, which other partitions keep growing."""
        config = self.config
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(config.sweep_every_s)
            for p in list(self._partitions.values()):
                if p.status != OPEN or p.checkpointing or self._last_stored <= p.checkpoint_sequence:
                    continue
                lagging = self._entries_stored - p.checkpoint_mark >= config.checkpoint_writer_lag_entries
                if lagging or loop.time() - p.checkpointed_at >= config.checkpoint_every_s:
                    p.checkpointing = True
                    self._spawn(self._checkpoint(p))

    async def stop(self) -> None:
        """Stop committing (unanswered callers get UNAVAILABLE) and cancel background work."""
        stopping = Unavailable("the log is stopping; retry with the same id")
        closed = list(self._partitions.values())
        for p in closed:
            self._close(p.number, stopping)
        tasks = [t for t in (self._committer, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._committer = None
        for p in closed:  # a message that was in flight: its outcome will never be read here
            for part in p.parts:
                self._fail_part(part, stopping)
            p.parts.clear()

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- partitions ----------------------------------------------------------------------------------

    def owns(self, partition: int) -> bool:
        p = self._partitions.get(partition)
        return p is not None and p.status != CLOSED

    def is_open(self, partition: int) -> bool:
        p = self._partitions.get(partition)
        return p is not None and p.status == OPEN

    def partition_of(self, key: str) -> int:
        return self._partition_of(key)

    async def open(self, partition: int) -> None:
        """Take the partition: rebuild it from its checkpoint and the log after it (retrying while
        the store is unreachable). Commands may be submitted at once; they wait for the rebuild."""
        p = self._partitions.get(partition)
        if p is None:
            p = _Partition(partition, "")
            self._partitions[partition] = p
            self._begin(p)
        while p.status == OPENING:
            await self._wait_progress(p)
        if p.status == CLOSED:
            raise NotOwner(partition)

    def close(self, partition: int) -> None:
        """Give the partition up: callers not yet answered get NotOwner (retry at the new owner,
        same command id); a message already in flight is still answered if it is stored."""
        self._close(partition, NotOwner(partition))

    def _close(self, partition: int, error: BaseException) -> None:
        p = self._partitions.pop(partition, None)
        if p is None:
            return
        p.status = CLOSED
        p.epoch += 1
        self._ready.pop(partition, None)
        for sub in self._unanswered(p, keep_sending=True):
            self._reply(sub, None, error)
        p.keys = {}
        p.tail = {}
        self._progress(p)

    def _begin(self, p: _Partition) -> None:
        """(Re)build `p` from the store; commands meanwhile queue in `p.queued`."""
        p.status = OPENING
        p.epoch += 1
        p.opened += 1
        p.writer = f"{self.writer}.{p.opened}"
        self._spawn(self._rebuild(p, p.epoch))

    async def _rebuild(self, p: _Partition, epoch: int) -> None:
        delay = self.config.retry_backoff_s
        while p.epoch == epoch and p.status == OPENING:
            try:
                if p.claim_needed:
                    await self._store.claim(p.number)  # before reading: nothing after it is missed
                    p.claim_needed = False
                found = await self._store.read_checkpoint(p.number)
                position = wire.checkpoint_position(found.data)
                messages = await self._store.read_partition(p.number, position)
                tail: dict[str, list[wire.StoredEntry]] = {}
                last, count = position, 0
                for message in messages:
                    for entry in wire.stored_entries(message.sequence, wire.decode_group(message.data)):
                        tail.setdefault(entry.key, []).append(entry)
                        count += 1
                    last = message.sequence
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("partition %d: rebuilding from the log failed (%r); retrying", p.number, exc)
                if p.epoch == epoch:
                    queued, p.queued = p.queued, []
                    for sub in queued:
                        self._reply(sub, None, Unavailable(f"partition {p.number} is being rebuilt; retry"))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if p.epoch != epoch or p.status != OPENING:
                return
            p.last_sequence = last
            p.checkpoint_sequence = position
            p.checkpoint_subject = found.sequence
            p.tail = tail
            p.dirty = set(tail)
            p.since_checkpoint = count
            p.checkpoint_mark = self._entries_stored
            p.checkpointed_at = asyncio.get_running_loop().time()
            p.status = OPEN
            self._progress(p)
            queued, p.queued = p.queued, []
            self._dispatch_all(p, queued, epoch)
            return

    def _rebuild_partition(self, p: _Partition) -> None:
        """Throw the partition's memory away and rebuild it; its unanswered commands are decided
        again afterwards (those that were stored are answered from their receipts then)."""
        if p.parts and p.parts[0].state == SENDING:
            p.rebuild_pending = True  # after the message in flight has its outcome
            return
        p.rebuild_pending = False
        self.stats.rebuilt += 1
        subs = self._unanswered(p, keep_sending=False)
        p.keys = {}
        p.tail = {}
        self._ready.pop(p.number, None)
        self._begin(p)
        self._progress(p)
        for sub in subs:
            sub.attempts += 1
            if sub.attempts >= self.config.max_attempts:
                self._reply(sub, None, Unavailable(f"key {sub.key!r} is contended by another writer; retry"))
            else:
                p.queued.append(sub)

    def _unanswered(self, p: _Partition, *, keep_sending: bool) -> list[_Sub]:
        """Every caller of `p` not yet answered, in arrival order, taken out of its structures (the
        part in flight stays if `keep_sending`: its outcome answers its callers)."""
        subs: list[_Sub] = []
        kept: deque[_Part] = deque()
        for part in p.parts:
            if keep_sending and part.state == SENDING:
                kept.append(part)
                continue
            subs.extend(sub for sub, _, _ in part.waiters)
            part.waiters = []
            part.state = DROPPED
        p.parts = kept
        for key in p.keys.values():
            if key.loading:
                subs.extend(key.loading)
            key.loading = None
        subs.extend(p.queued)
        p.queued = []
        subs.sort(key=lambda sub: sub.arrival)
        return subs

    # -- submitting -----------------------------------------------------------------------------------

    def submit_nowait(
        self,
        key: str,
        command_id: str,
        fingerprint: str,
        command: C,
        reply: Callable[[A | None, BaseException | None], None],
    ) -> None:
        """Decide `command` for `key`; `reply(answer, None)` or `reply(None, error)` is called exactly
        once, when the answer is durable. For callers with many commands (a stream): no future each."""
        self._submit(_Sub(0, key, command_id, fingerprint, command, None, reply))

    async def submit(self, key: str, command_id: str, fingerprint: str, command: C) -> A:
        future: asyncio.Future[A] = asyncio.get_running_loop().create_future()
        self._submit(_Sub(0, key, command_id, fingerprint, command, None, _settler(future)))
        return await future

    async def read(self, key: str, view: Callable[[S], T]) -> T:
        """`view(state)` of the key as decided so far, answered once those decisions are durable
        (so a caller never sees what may yet be lost)."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._submit(_Sub(0, key, "", "", None, view, _settler(future)))
        return await future

    def _submit(self, sub: _Sub) -> None:
        if KEY.fullmatch(sub.key) is None:
            sub.reply(None, InvalidArgument([FieldViolation("key", "1 to 128 letters, digits, '-' or '_'")]))
            return
        number = self._partition_of(sub.key)
        p = self._partitions.get(number)
        if p is None or p.status == CLOSED:
            sub.reply(None, NotOwner(number))
            return
        if self._pending >= self.config.max_pending:
            sub.reply(None, ResourceExhausted("the log is overloaded; retry shortly with the same request id"))
            return
        self._pending += 1
        self._arrivals += 1
        sub.arrival = self._arrivals
        if p.status != OPEN:
            p.queued.append(sub)
            return
        self._dispatch(p, sub)

    def _dispatch_all(self, p: _Partition, subs: Iterable[_Sub], epoch: int) -> None:
        remaining = iter(subs)
        for sub in remaining:
            if p.epoch != epoch:  # an engine failure rebuilt the partition: the rest wait for it
                for rest in (sub, *remaining):
                    if p.status == CLOSED:
                        self._reply(rest, None, NotOwner(p.number))
                    else:
                        p.queued.append(rest)
                return
            self._dispatch(p, sub)

    def _dispatch(self, p: _Partition, sub: _Sub) -> None:
        key = p.keys.get(sub.key)
        if key is None:
            key = p.keys[sub.key] = _Key(sub.key)
            key.loading = [sub]
            self._spawn(self._load(p, key, p.epoch))
        elif key.loading is not None:
            key.loading.append(sub)
        else:
            self._decide(p, key, sub)

    async def _load(self, p: _Partition, key: _Key, epoch: int) -> None:
        try:
            found = await self._store.read_snapshot(p.number, key.name)
            if p.epoch != epoch or p.keys.get(key.name) is not key:
                return  # rebuilt or closed meanwhile: its commands moved with the partition
            self._restore(p, key, found)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if p.epoch != epoch or p.keys.get(key.name) is not key:
                return
            level = logging.ERROR if isinstance(exc, LogCorrupt) else logging.WARNING
            log.log(level, "key %s: restoring it failed: %r", key.name, exc)
            del p.keys[key.name]
            for sub in key.loading or ():
                self._reply(sub, None, Unavailable(f"key {key.name!r} cannot be read right now; retry"))
            key.loading = None
            return
        subs, key.loading = key.loading or [], None
        self._dispatch_all(p, subs, epoch)

    def _restore(self, p: _Partition, key: _Key, found: FoundSnapshot) -> None:
        """The key's state: its snapshot, then its entries in the partition's tail after it."""
        engine, now, window = self.engine, self._clock(), self.config.dedupe_window_ms
        decided = position = 0
        if found.data is not None:
            snapshot = wire.decode_snapshot(found.data)
            state = engine.decode_state(key.name, snapshot.state)
            if self.config.verify_snapshots and engine.state_hash(state) != snapshot.state_hash:
                raise LogCorrupt(f"key {key.name}: its snapshot's state does not match its hash")
            decided, position = snapshot.key_sequence, snapshot.position
            for r in snapshot.receipts:
                key.receipts[r.command_id] = _Receipt(
                    r.fingerprint, r.decided_at_ms, r.key_sequence, engine.decode_answer(r.answer)
                )
            for f in snapshot.refusals:
                key.refusals[f.command_id] = _Refusal(f.fingerprint, f.decided_at_ms, engine.decode_refusal(f.refusal))
        else:
            state = engine.initial_state(key.name)
        for entry in p.tail.pop(key.name, ()):
            position = entry.sequence
            if not entry.accepted:
                if now - entry.decided_at_ms <= window:
                    key.refusals[entry.command_id] = _Refusal(
                        entry.fingerprint, entry.decided_at_ms, engine.decode_refusal(entry.refusal)
                    )
                continue
            if entry.key_sequence <= decided:
                continue
            if entry.key_sequence != decided + 1:
                raise LogCorrupt(f"key {key.name}: entry {entry.key_sequence} follows {decided}")
            record = engine.decode_record(key.name, entry.record)
            state = engine.apply(key.name, state, record)
            decided = entry.key_sequence
            if now - entry.decided_at_ms <= window:
                answer = engine.answer(key.name, state, record, decided)
                key.receipts[entry.command_id] = _Receipt(entry.fingerprint, entry.decided_at_ms, decided, answer)
        key.state = state
        key.decided = key.committed = decided
        key.position = position
        key.snapshot_sequence = found.sequence
        key.used_at = now
        self._trim(key, now)

    def _trim(self, key: _Key, now: int) -> None:
        """Receipts and refusals beyond the dedupe window or the count bounds go (oldest first)."""
        horizon = now - self.config.dedupe_window_ms
        for table, bound in (
            (key.receipts, self.config.max_receipts_per_key),
            (key.refusals, self.config.max_refusals_per_key),
        ):
            while table:
                oldest = next(iter(table))
                kept = table[oldest]
                if kept.decided_at >= horizon and len(table) <= bound:
                    break
                if kept.decided_at >= horizon and table is key.receipts:
                    self.stats.receipts_evicted_early += 1
                del table[oldest]

    # -- deciding -------------------------------------------------------------------------------------

    def _decide(self, p: _Partition, key: _Key, sub: _Sub) -> None:
        now = self._clock()
        key.used_at = now
        if sub.view is not None:
            try:
                value = sub.view(key.state)
            except Exception as exc:
                self._release(key, sub, None, exc)
            else:
                self._release(key, sub, value, None)
            return
        self.stats.decisions += 1
        command_id, fingerprint = sub.command_id, sub.fingerprint
        receipt = key.receipts.get(command_id)
        if receipt is not None:
            if receipt.fingerprint != fingerprint:
                self._reply(sub, None, request_id_reused(command_id))
            else:
                self._release(key, sub, receipt.answer, None)
            return
        refusal = key.refusals.get(command_id)
        if refusal is not None and now - refusal.decided_at <= self.config.dedupe_window_ms:
            if refusal.fingerprint != fingerprint:
                self._reply(sub, None, request_id_reused(command_id))
            else:
                self._release(key, sub, None, refusal.error)
            return
        engine = self.engine
        sequence = key.decided + 1
        try:
            decision = engine.decide(key.name, key.state, sub.command, now, sequence)
        except GavelError as error:  # an engine that raises its refusals: not remembered
            self.stats.refused += 1
            self._release(key, sub, None, error)
            return
        except Exception as exc:
            log.exception("key %s: the engine failed to decide", key.name)
            self._reply(sub, None, exc)
            return
        if isinstance(decision, Accept):
            try:
                state = engine.apply(key.name, key.state, decision.record)
                record = engine.encode_record(key.name, decision.record, state)
                answer = engine.answer(key.name, state, decision.record, sequence)
            except Exception as exc:  # the state may be half-changed: rebuild it from the log
                log.exception("key %s: the engine failed to apply its own decision", key.name)
                self._reply(sub, None, exc)
                self._rebuild_partition(p)
                return
            key.state = state
            key.decided = sequence
            self.stats.accepted += 1
            if command_id:
                key.receipts[command_id] = _Receipt(fingerprint, now, sequence, answer)
                if len(key.receipts) > self.config.max_receipts_per_key:
                    self._trim(key, now)
            frame = wire.entry_frame(key.name, sequence, command_id, fingerprint, now, record=record)
            self._add(p, key, frame, (sub, answer, None), sequence, record)
        elif isinstance(decision, Refuse):
            self.stats.refused += 1
            if not (decision.remember and command_id):
                self._release(key, sub, None, decision.error)
                return
            key.refusals[command_id] = _Refusal(fingerprint, now, decision.error)
            if len(key.refusals) > self.config.max_refusals_per_key:
                self._trim(key, now)
            frame = wire.entry_frame(
                key.name, 0, command_id, fingerprint, now, refusal=engine.encode_refusal(decision.error)
            )
            self._add(p, key, frame, (sub, None, decision.error), 0, b"")
        elif isinstance(decision, Reply):
            self._release(key, sub, decision.answer, None)
        else:
            self._reply(sub, None, TypeError(f"decide returned {decision!r}, not Accept, Refuse or Reply"))

    def _release(self, key: _Key, sub: _Sub, value: Any, error: BaseException | None) -> None:
        """Answer now if nothing of the key is pending, else with the key's latest pending entry."""
        part = key.last_part
        if part is None:
            self._reply(sub, value, error)
        else:
            part.waiters.append((sub, value, error))

    def _add(
        self,
        p: _Partition,
        key: _Key,
        frame: bytes,
        waiter: tuple[_Sub, Any, BaseException | None],
        sequence: int,
        record: bytes,
    ) -> None:
        parts = p.parts
        part = parts[-1] if parts else None
        if part is None or part.state != FILLING or part.size >= self.config.max_message_bytes:
            part = _Part(p)
            parts.append(part)
        part.frames.append(frame)
        part.size += len(frame)
        part.count += 1
        if sequence:
            part.keys[key.name] = sequence
            if self._on_committed is not None:
                part.records.append((key.name, sequence, record))
        elif key.name not in part.keys:
            part.keys[key.name] = 0
        part.waiters.append(waiter)
        key.last_part = part
        if parts[0] is part and p.number not in self._ready:
            self._ready[p.number] = p
            self._wake.set()

    def _reply(self, sub: _Sub, value: Any, error: BaseException | None) -> None:
        self._pending -= 1
        try:
            sub.reply(value, error)
        except Exception:
            log.exception("a reply callback failed")

    # -- committing -----------------------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._ready:
                self._wake.clear()
                await self._wake.wait()
            if self.config.linger_s > 0:
                await asyncio.sleep(self.config.linger_s)
            parts = self._cut(loop.time())
            if not parts:
                continue
            outgoing = [Outgoing(part.owner.number, part.expected, part.msg_id, part.data) for part in parts]
            try:
                outcomes: Sequence[AppendOutcome] = await self._store.append(outgoing)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a store must not raise; if it does, nothing is known
                log.warning("append failed unexpectedly: %r", exc)
                outcomes = [Retry(repr(exc))] * len(parts)
            stats = self.stats
            stats.appends += 1
            stats.messages += len(parts)
            for part, outcome in zip(parts, outcomes, strict=True):
                stats.entries += part.count
                stats.bytes += len(part.data)
                self._settle(part, outcome, loop.time())

    def _cut(self, now: float) -> list[_Part]:
        """The next group: the first part of each ready partition, within the group's bounds."""
        config = self.config
        parts: list[_Part] = []
        size = 0
        ready = self._ready
        while ready and len(parts) < config.max_group_partitions and size < config.max_group_bytes:
            number = next(iter(ready))
            p = ready.pop(number)
            if p.status != OPEN or not p.parts:
                continue
            head = p.parts[0]
            if head.state == FILLING:
                self._seal(p, head, now)
            elif head.state != SEALED:
                continue
            head.state = SENDING
            parts.append(head)
            size += len(head.data)
        return parts

    def _seal(self, p: _Partition, part: _Part, now: float) -> None:
        p.groups += 1
        part.group = p.groups
        keys = p.keys
        links = {name: (keys[name].position if name in keys else 0) for name in part.keys}
        part.data = wire.group_message(p.number, p.writer, part.group, links, part.frames)
        part.frames = []
        part.msg_id = f"{p.writer}:{p.number}:{part.group}"
        part.expected = p.last_sequence
        part.state = SEALED
        part.first_sent = now

    def _settle(self, part: _Part, outcome: AppendOutcome, now: float) -> None:
        p = part.owner
        if part.state != SENDING:
            return
        if isinstance(outcome, Stored):
            self._stored(p, part, outcome.sequence)
            return
        if p.parts and p.parts[0] is part and p.status == CLOSED:
            p.parts.popleft()
        if isinstance(outcome, Fenced):
            self.stats.fenced += 1
            part.state = SEALED  # back in the partition's structures: rebuilding collects its callers
            if p.status == CLOSED:
                self._fail_part(part, NotOwner(p.number))
                return
            log.warning(
                "partition %d: another writer appended (at %d, expected %d); rebuilding",
                p.number,
                outcome.sequence,
                part.expected,
            )
            if self._on_fenced is not None:
                self._on_fenced(p.number)
            if p.status == CLOSED:  # the callback closed it
                return
            if self._claims:  # claimed away: lost for good (its callers go to the new owner)
                self.close(p.number)
            else:
                self._rebuild_partition(p)
            return
        self.stats.retried += 1
        part.state = SEALED
        if p.status == CLOSED:
            self._fail_part(part, Unavailable("the outcome of this command is not known yet; retry with the same id"))
            return
        # Writer subjects fence a partition by its claim, not by its own subject, so an unconfirmed
        # message is sent again until its outcome is known: rebuilding before that could miss it
        # landing late. Partition subjects: a late landing fails the next append's expected sequence.
        if not self._claims and (p.rebuild_pending or now - part.first_sent > self.config.retry_for_s):
            log.warning("partition %d: message not confirmed (%s); rebuilding from the log", p.number, outcome.reason)
            self._rebuild_partition(p)
            return
        asyncio.get_running_loop().call_later(self.config.retry_backoff_s, self._make_ready, p, p.epoch)

    def _fail_part(self, part: _Part, error: BaseException) -> None:
        part.state = DROPPED
        waiters, part.waiters = part.waiters, []
        for sub, _, _ in waiters:
            self._reply(sub, None, error)

    def _stored(self, p: _Partition, part: _Part, sequence: int) -> None:
        part.state = STORED
        part.sequence = sequence
        if p.parts and p.parts[0] is part:
            p.parts.popleft()
        p.last_sequence = sequence
        if sequence > self._last_stored:
            self._last_stored = sequence
        keys = p.keys
        for name, key_sequence in part.keys.items():
            key = keys.get(name)
            if key is not None:
                if key_sequence:
                    key.committed = key_sequence
                key.position = sequence
                if key.last_part is part:
                    key.last_part = None
        p.dirty.update(part.keys)
        p.since_checkpoint += part.count
        self._entries_stored += part.count
        waiters, part.waiters = part.waiters, []
        for sub, value, error in waiters:
            self._reply(sub, value, error)
        if self._on_committed is not None and part.records:
            try:
                self._on_committed(Committed(p.number, sequence, part.records))
            except Exception:
                log.exception("the committed callback failed")
        part.records = []
        self._progress(p)
        if p.status != OPEN:
            return
        if p.rebuild_pending:
            self._rebuild_partition(p)
            return
        if p.parts and p.parts[0].state == FILLING:
            self._make_ready(p, p.epoch)
        self._maybe_checkpoint(p)

    def _make_ready(self, p: _Partition, epoch: int) -> None:
        if p.epoch != epoch or p.status != OPEN or not p.parts or p.parts[0].state not in (FILLING, SEALED):
            return
        if p.number not in self._ready:
            self._ready[p.number] = p
            self._wake.set()

    def _progress(self, p: _Partition) -> None:
        waiter = p.progress
        if waiter is not None:
            p.progress = None
            if not waiter.done():
                waiter.set_result(None)

    async def _wait_progress(self, p: _Partition) -> None:
        if p.progress is None:
            p.progress = asyncio.get_running_loop().create_future()
        await asyncio.shield(p.progress)

    # -- checkpoints ----------------------------------------------------------------------------------

    def _maybe_checkpoint(self, p: _Partition) -> None:
        if p.checkpointing or not p.dirty:
            return
        config = self.config
        due = (
            p.since_checkpoint >= config.checkpoint_every_entries
            or asyncio.get_running_loop().time() - p.checkpointed_at >= config.checkpoint_every_s
            or (self._claims and self._entries_stored - p.checkpoint_mark >= config.checkpoint_writer_lag_entries)
        )
        if due:
            p.checkpointing = True
            self._spawn(self._checkpoint(p))

    async def checkpoint(self, partition: int) -> bool:
        """Checkpoint the partition now (e.g. before handing it over); False if it could not be."""
        p = self._partitions.get(partition)
        if p is None or p.status != OPEN:
            return False
        while p.checkpointing:
            await self._wait_progress(p)
            if p.status != OPEN:
                return False
        if not p.dirty:
            return True
        p.checkpointing = True
        return await self._checkpoint(p)

    async def _checkpoint(self, p: _Partition) -> bool:
        written = False
        async with self._checkpoint_slots:
            epoch = p.epoch
            # Everything of the partition at or before `position` is stored and, once this succeeds,
            # in snapshots. Writer subjects: up to this writer's last message (the partition has no
            # entry after its own last one in it); partition subjects: that subject's last message.
            position = max(p.last_sequence, self._last_stored) if self._claims else p.last_sequence
            mark = self._entries_stored
            dirty, p.dirty = p.dirty, set()
            since, p.since_checkpoint = p.since_checkpoint, 0
            try:
                if p.status == OPEN:
                    written = await self._write_checkpoint(p, epoch, position, dirty)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("partition %d: checkpoint failed: %r", p.number, exc)
            finally:
                p.checkpointing = False
                p.checkpointed_at = asyncio.get_running_loop().time()
                if written:
                    p.checkpoint_mark = mark
                if not written and p.epoch == epoch:
                    p.dirty |= dirty
                    p.since_checkpoint += since
                self._progress(p)
        if written:
            self.stats.checkpoints += 1
            self.stats.snapshots += len(dirty)
        return written

    async def _write_checkpoint(self, p: _Partition, epoch: int, position: int, dirty: set[str]) -> bool:
        missing = [name for name in dirty if name not in p.keys]
        if missing:
            await self._materialize(p, epoch, missing)
        takes: list[_Take] = []
        for name in dirty:
            if p.epoch != epoch:
                return False
            key = p.keys.get(name)
            if key is None or key.loading is not None:
                return False  # being restored right now: the next checkpoint takes it
            takes.append(self._take(key))
            if len(takes) % 64 == 0:
                await asyncio.sleep(0)  # big partitions: let commands in between
        for take in takes:
            target = take.target
            while target is not None and target.state != STORED:
                if p.epoch != epoch or target.state == DROPPED:
                    return False
                await self._wait_progress(p)
        if p.epoch != epoch:
            return False
        writes = []
        for take in takes:
            snapshot = wire.Snapshot(
                key=take.key.name,
                partition=p.number,
                key_sequence=take.key_sequence,
                position=take.target.sequence if take.target is not None else take.position,
                state=take.state,
                state_hash=take.state_hash,
                receipts=take.receipts,
                refusals=take.refusals,
                taken_at_ms=take.taken_at,
                writer=p.writer,
            )
            writes.append(SnapshotWrite(take.key.name, wire.encode_snapshot(snapshot), take.key.snapshot_sequence))
        record = wire.encode_checkpoint(p.number, position, p.writer, self._clock(), len(writes))
        try:
            result = await self._store.write_snapshots(
                p.number, writes, SnapshotWrite(None, record, p.checkpoint_subject)
            )
        except SnapshotConflict as conflict:
            log.info("partition %d: snapshot subjects moved on; the next checkpoint retries", p.number)
            by_name = {take.key.name: take.key for take in takes}
            for name, sequence in conflict.written.items():
                by_name[name].snapshot_sequence = sequence
            for maybe_name, sequence in conflict.current.items():
                if maybe_name is None:
                    p.checkpoint_subject = sequence
                elif maybe_name in by_name:
                    by_name[maybe_name].snapshot_sequence = sequence
            return False
        for take in takes:
            take.key.snapshot_sequence = result.sequences.get(take.key.name, take.key.snapshot_sequence)
        p.checkpoint_subject = result.checkpoint
        p.checkpoint_sequence = position
        return True

    def _take(self, key: _Key) -> _Take:
        engine, now = self.engine, self._clock()
        self._trim(key, now)
        return _Take(
            key=key,
            key_sequence=key.decided,
            state=engine.encode_state(key.name, key.state),
            state_hash=engine.state_hash(key.state),
            receipts=[
                wire.ReceiptRecord(cid, r.fingerprint, r.decided_at, r.key_sequence, engine.encode_answer(r.answer))
                for cid, r in key.receipts.items()
            ],
            refusals=[
                wire.RefusalRecord(cid, r.fingerprint, r.decided_at, engine.encode_refusal(r.error))
                for cid, r in key.refusals.items()
            ],
            target=key.last_part,
            position=key.position,
            taken_at=now,
        )

    async def _materialize(self, p: _Partition, epoch: int, names: Sequence[str]) -> None:
        """Restore keys known only from the tail (a checkpoint must snapshot them)."""
        if len(names) > self.config.bulk_snapshot_reads:
            found = await self._store.read_snapshots(p.number)
        else:
            reads = await asyncio.gather(*(self._store.read_snapshot(p.number, name) for name in names))
            found = dict(zip(names, reads, strict=True))
        if p.epoch != epoch:
            return
        for name in names:
            if name in p.keys:
                continue  # restored meanwhile by a command
            key = p.keys[name] = _Key(name)
            self._restore(p, key, found.get(name, FoundSnapshot(None, 0)))

    async def load_all(self, partition: int) -> int:
        """Restore every key of the partition that has a snapshot or entries after its checkpoint
        (e.g. to re-arm every key's timers after a failover); returns how many keys are loaded."""
        await self.open(partition)
        p = self._partitions[partition]
        epoch = p.epoch
        found = await self._store.read_snapshots(partition)
        if p.epoch != epoch:
            raise NotOwner(partition)
        for name in {*found, *p.tail}:
            if name not in p.keys:
                key = p.keys[name] = _Key(name)
                self._restore(p, key, found.get(name, FoundSnapshot(None, 0)))
        return len(p.keys)

    # -- memory ---------------------------------------------------------------------------------------

    def state_of(self, key: str) -> S | None:
        """The key's state in memory (decided, maybe not yet durable), or None if not loaded here."""
        p = self._partitions.get(self._partition_of(key))
        found = p.keys.get(key) if p is not None else None
        return found.state if found is not None and found.loading is None else None

    def keys(self, partition: int) -> list[str]:
        p = self._partitions.get(partition)
        return [name for name, key in p.keys.items() if key.loading is None] if p is not None else []

    def receipts(self, key: str) -> int:
        """How many receipts the key keeps in memory (tests, metrics)."""
        p = self._partitions.get(self._partition_of(key))
        found = p.keys.get(key) if p is not None else None
        return len(found.receipts) if found is not None else 0

    def evict_idle(self, idle_ms: int, keep: Callable[[S], bool] | None = None) -> int:
        """Forget keys untouched for `idle_ms` whose every entry is durable and in a snapshot (they
        are restored from it on their next command); `keep(state)` spares some (pending timers)."""
        now = self._clock()
        evicted = 0
        for p in self._partitions.values():
            if p.status != OPEN or p.checkpointing:  # a running checkpoint has taken the dirty set
                continue
            for name, key in list(p.keys.items()):
                if (
                    key.loading is None
                    and key.last_part is None
                    and name not in p.dirty
                    and name not in p.tail
                    and now - key.used_at > idle_ms
                    and not (keep is not None and keep(key.state))
                ):
                    del p.keys[name]
                    evicted += 1
        return evicted

    @property
    def pending(self) -> int:
        return self._pending


def _settler(future: asyncio.Future[Any]) -> Reply_:
    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    return settle
