"""Live lots in the memory of their owner: one actor per lot, appending to the lot's log.

Each actor runs its lot's jobs (commands, reads, wake-ups) one at a time, in arrival order, so a
lot needs no locks; different lots run concurrently, so appends to JetStream are pipelined across
lots (at most `max_in_flight` at once per replica, which keeps the queue at the server short and
latency flat). A command goes:

1. a retry? answer from the receipts rebuilt from the log (accepted) or from the recent refusals;
2. `engine.decide(state, command, now)`: a typed refusal, or events;
3. apply the events, then append them as one batch with the expected last stream sequence of the
   lot's subject; only then is the caller answered and the batch announced to watchers.

If the append is refused because the subject moved on (another owner wrote: a lease changed hands
under us) or its outcome is unknown (timeout), the in-memory lot is thrown away, rebuilt from its
log, and the command decided again (it may already be in the log: then its receipt answers). The
expected-sequence guard, not the lease, is what makes one writer per lot.

No write without ownership: every job (command, read, wake-up, first configuration) starts only
while this replica holds the lot's partition (`LotDeps.owns`, which turns false the moment the
lease may have lapsed), and an append is not sent if the partition was lost while the command was
being decided; such a job fails with NotOwner and its caller re-routes. The expected-sequence
check stays the last line of defence for an append already on its way.

Receipts (the answers to accepted commands, for retries) are kept for the lot's last
`RECEIPT_MEMORY` commands; refusals for its last `REFUSAL_MEMORY` within `REFUSAL_TTL_MS`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from gavel_core.errors import FailedPrecondition, GavelError, NotFound, ResourceExhausted, Unavailable
from gavel_core.formats import EnglishClose, EnglishParams
from room.app.model import (
    Batch,
    ClosingSoon,
    LotConfigured,
    LotInfo,
    PublishedLot,
    Receipt,
    RoomEvent,
    StoredBatch,
    Withdrawn,
)
from room.app.partitions import partition_of
from room.app.ports import (
    ActiveLots,
    Announcer,
    AppendUnconfirmed,
    Clock,
    EventLog,
    SecretSource,
    TermsSource,
    WrongLastSequence,
)
from room.app.timers import WakeUps
from room.app.views import TERMINAL_PHASES, summary
from room.domain import (
    AnyEngine,
    Command,
    EnglishEngine,
    LotState,
    OpenLot,
    Phase,
    Tick,
    engine_for,
)
from room.domain.events import FloorBidAccepted, LotOpened, LotUnsold, OptionPicked

log = logging.getLogger("room.lots")

T = TypeVar("T")
INTERNAL_COMMANDS = frozenset({"Configure", "Tick", "ClosingSoon"})
WITHDRAWN = "WITHDRAWN"  # LotUnsold's reason for a lot stopped before it ended
CATALOG = "catalog"  # the actor of what the catalog's own statements make the room do
WAKE_RETRY_MS = (100, 200, 500, 1_000, 2_000, 5_000)  # a failed wake-up is tried again, then every 5 s
MAX_ATTEMPTS = 3  # decide-and-append rounds before giving up on a contended lot
REFUSAL_MEMORY = 512  # refusals kept per lot, so a retried refused request gets the same answer
REFUSAL_TTL_MS = 120_000  # ... within the same window JetStream deduplicates retries in
# Answers to accepted commands kept per lot for retries: a lot's memory must not grow with its
# history (issue 13 replaces this with snapshots). A retry of an older command is decided again.
RECEIPT_MEMORY = 1_000


def _always(_: int) -> bool:
    return True


class NotOwner(Exception):
    """This replica does not (or no longer) own the lot's partition: route the call to the owner."""


@dataclass(frozen=True, slots=True)
class WithdrawLot(Command):
    """Stop a lot before it ends (decided by the room, not an engine): Withdrawn + LotUnsold(WITHDRAWN)."""

    by: str
    reason: str


def not_run_here(lot_id: str) -> NotFound:
    return NotFound("lot", lot_id)


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """A command for one lot, with the id that makes it idempotent and a digest of the request."""

    command_id: str
    name: str
    actor_id: str
    fingerprint: str
    command: Command


@dataclass(slots=True)
class LotDeps:
    """Everything an actor needs; shared by all actors of a replica."""

    log: EventLog
    announcer: Announcer
    active: ActiveLots
    terms: TermsSource
    clock: Clock
    wakeups: WakeUps
    append_slots: asyncio.Semaphore
    spawn: Callable[[Coroutine[Any, Any, Any]], object]
    draw_secret: SecretSource  # a lucky lot's secret, drawn once when the lot is configured
    closing_soon_ms: int = 60_000
    max_pending: int = 2_000  # commands waiting in all lots' queues before new ones are refused
    pending: int = 0
    owns: Callable[[int], bool] = _always  # whether this replica holds the partition now


def request_id_reused(request_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "REQUEST_ID_REUSED",
        f"request_id {request_id!r} was already used for a different request",
        {"request_id": request_id},
    )


class LotActor:
    """One lot's state, log position and job queue."""

    def __init__(self, lot_id: str, partition: int, deps: LotDeps) -> None:
        self.lot_id = lot_id
        self.partition = partition
        self._deps = deps
        self._queue: deque[tuple[str, Any, asyncio.Future[Any]]] = deque()
        self._running = False
        self.retired = False
        self.wake_failures = 0
        self.last_used_ms = deps.clock()
        self._reset()

    def _reset(self) -> None:
        self.loaded = False
        self.info: LotInfo | None = None
        self.engine: AnyEngine | None = None
        self.state: LotState | None = None
        self.lot_sequence = 0
        self.stream_sequence = 0
        self.receipts: OrderedDict[str, Receipt] = OrderedDict()
        self._refusals: OrderedDict[str, tuple[str, GavelError, int]] = OrderedDict()
        self.opened_at_ms: int | None = None
        self.closing_soon_announced = False
        self.marked_active = False

    # -- what callers use ---------------------------------------------------------------------------

    async def execute(self, request: CommandRequest) -> Receipt:
        """Run a command in turn. Refused at once (RESOURCE_EXHAUSTED) when the replica already has
        `max_pending` commands waiting: under overload a quick refusal beats a queue that only grows."""
        deps = self._deps
        if deps.pending >= deps.max_pending:
            raise ResourceExhausted("the room is overloaded; retry shortly with the same request_id")
        deps.pending += 1
        try:
            receipt: Receipt = await self._enqueue("command", request)
        finally:
            deps.pending -= 1
        return receipt

    async def read(self, view: Callable[[LotActor], T]) -> T:
        """Run `view` on the lot once every job before it is done (so it sees only stored state)."""
        result: T = await self._enqueue("read", view)
        return result

    async def start(self, published: PublishedLot) -> Receipt | None:
        """The catalog started the lot: its log starts with these terms (unless it has a first batch)
        and it opens, unless a crier runs it (the crier opens crier lots). None: nothing to open."""
        result: Receipt | None = await self._enqueue("start", published)
        return result

    async def withdraw(self, published: PublishedLot, reason: str) -> None:
        """The catalog withdrew the lot (or cancelled its sale) before it started: the lot ends here
        too (configured from the published lot if its log is empty), so watchers are told."""
        await self._enqueue("withdraw", (published, reason))

    def wake(self) -> None:
        """Fire whatever is due (a deadline, the closing-soon notice); nobody waits for the answer.
        A wake-up that fails is tried again with backoff until it fires or the lot moves."""
        future = self._enqueue("wake", None)
        future.add_done_callback(self._woken)

    def _woken(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is None:
            self.wake_failures = 0
            return
        if isinstance(exc, NotOwner | NotFound) or self.retired:
            return
        delay = WAKE_RETRY_MS[min(self.wake_failures, len(WAKE_RETRY_MS) - 1)]
        self.wake_failures += 1
        log.error("lot %s: a due wake-up failed (%r); trying again in %d ms", self.lot_id, exc, delay)
        self._deps.wakeups.set(self.lot_id, self._deps.clock() + delay)

    @property
    def idle(self) -> bool:
        return not self._queue and not self._running

    def rearm(self) -> None:
        self._schedule_wake()

    def retire(self) -> None:
        """The partition moved away: refuse queued and future jobs (their callers re-route)."""
        self.retired = True
        self._deps.wakeups.set(self.lot_id, None)
        while self._queue:
            _, _, future = self._queue.popleft()
            if not future.done():
                future.set_exception(NotOwner(self.lot_id))

    def _enqueue(self, kind: str, payload: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.retired:
            future.set_exception(NotOwner(self.lot_id))
            return future
        self._queue.append((kind, payload, future))
        self.last_used_ms = self._deps.clock()
        if not self._running:
            self._running = True
            self._deps.spawn(self._drain())
        return future

    async def _drain(self) -> None:
        try:
            while self._queue:
                kind, payload, future = self._queue.popleft()
                if future.done():  # the caller gave up before its turn
                    continue
                if self.retired:
                    future.set_exception(NotOwner(self.lot_id))
                    continue
                try:
                    result = await self._run(kind, payload)
                except Exception as exc:  # the caller's future carries it (GavelError: to the client)
                    if not future.done():
                        future.set_exception(exc)
                except BaseException:  # cancelled (shutdown): nobody may wait forever
                    if not future.done():
                        future.set_exception(Unavailable("the room replica is stopping; retry"))
                    raise
                else:
                    if not future.done():
                        future.set_result(result)
        finally:
            self._running = False

    def _require_ownership(self) -> None:
        if not self._deps.owns(self.partition):
            raise NotOwner(self.lot_id)

    def _remember_receipt(self, command_id: str, receipt: Receipt) -> None:
        receipts = self.receipts
        receipts[command_id] = receipt
        if len(receipts) > RECEIPT_MEMORY:
            receipts.popitem(last=False)

    async def _run(self, kind: str, payload: Any) -> Any:
        self._require_ownership()
        if kind == "command":
            return await self._execute(payload)
        if kind == "read":
            if not self.loaded:
                await self._load(None)
            return payload(self)
        if kind == "start":
            return await self._start(payload)
        if kind == "withdraw":
            published, reason = payload
            if not self.loaded:
                await self._load(published)
            await self._withdraw(CATALOG, reason, f"withdrawn:{self.lot_id}")
            return None
        return await self._wake()

    # -- loading --------------------------------------------------------------------------------------

    async def _load(self, configure_with: PublishedLot | None) -> None:
        """Rebuild the lot from its log; configure it first if the log is empty — from
        `configure_with` (the catalog's event), else only if the catalog says it started the lot
        (its LotStarting, which opens it, is on its way), else NotFound: the room does not run it."""
        for _ in range(MAX_ATTEMPTS):
            stored = await self._deps.log.read(self.lot_id)
            self._reset()
            for item in stored:
                self._replay(item)
            if stored:
                tail = stored[-1]
                await self._deps.announcer.announce(self.lot_id, tail.stream_sequence, tail.encoded, self._sale())
                break
            if await self._configure_empty_log(configure_with):
                break
        else:
            raise Unavailable(f"lot {self.lot_id!r} is being configured concurrently; retry")
        state = self.state
        assert state is not None
        self.marked_active = state.phase is not Phase.SCHEDULED and state.phase not in TERMINAL_PHASES
        self.loaded = True
        self._schedule_wake()

    async def _configure_empty_log(self, configure_with: PublishedLot | None) -> bool:
        found = configure_with or await self._deps.terms.started(self.lot_id)
        if found is None:
            raise not_run_here(self.lot_id)
        info, terms = found.info, found.terms
        engine = engine_for(terms)  # refuses terms no engine runs (tenders: FORMAT_NOT_LIVE)
        now = self._deps.clock()
        secret = self._deps.draw_secret() if engine.needs_draw_secret else b""
        configured = LotConfigured(self.lot_id, now, info, terms, secret, found.source)
        initial = summary(engine.initial_state(self.lot_id, secret))
        batch = Batch(self.lot_id, 1, "configure", "Configure", "room", "", now, (configured,), initial, terms.currency)
        try:
            async with self._deps.append_slots:
                self._require_ownership()
                appended = await self._deps.log.append(batch, 0)
        except (WrongLastSequence, AppendUnconfirmed):
            return False  # someone configured it first (or we may have): read it back
        self._replay(StoredBatch(batch, appended.stream_sequence, appended.encoded))
        await self._deps.announcer.announce(self.lot_id, appended.stream_sequence, appended.encoded, self._sale())
        return True

    def _sale(self) -> str:
        return self.info.sale_id if self.info is not None else ""

    async def _start(self, published: PublishedLot) -> Receipt | None:
        if not self.loaded:
            await self._load(published)
        return await self._open_started()

    async def _open_started(self) -> Receipt | None:
        """Open a lot the catalog started, as LotStarting says (crier lots wait for their crier)."""
        engine, state = self.engine, self.state
        assert engine is not None
        assert state is not None
        params = engine.terms.params
        if isinstance(params, EnglishParams) and params.close is EnglishClose.CRIER:
            return None
        if state.phase is not Phase.SCHEDULED:
            return None
        request_id = f"start:{self.lot_id}"
        try:
            return await self._execute(CommandRequest(request_id, "OpenLot", CATALOG, request_id, OpenLot(CATALOG)))
        except FailedPrecondition as refusal:
            if refusal.reason == "LOT_ALREADY_OPENED":
                return None
            raise

    async def _withdraw(self, by: str, reason: str, command_id: str, fingerprint: str = "") -> Receipt:
        """Fire what is due first (the lot may have ended meanwhile), then stop it if it has not."""
        for _ in range(MAX_ATTEMPTS):
            if not self.loaded:
                await self._load(None)
            receipt = self.receipt_for(command_id, fingerprint or command_id)
            if receipt is not None:
                return receipt
            state = self.state
            assert state is not None
            now = self._deps.clock()
            if state.deadline_ms is not None and state.deadline_ms <= now:
                tick = f"tick:{state.deadline_ms}"
                await self._execute(CommandRequest(tick, "Tick", "room", "", Tick()))
                continue
            if state.phase in TERMINAL_PHASES:
                raise FailedPrecondition("LOT_CLOSED", "the lot has already ended", {"phase": state.phase.value})
            events: list[RoomEvent] = [Withdrawn(self.lot_id, now, by, reason), LotUnsold(self.lot_id, now, WITHDRAWN)]
            batch = await self._commit(command_id, "Withdraw", by, fingerprint or command_id, now, events)
            if batch is None:
                continue
            receipt = self._receipt(batch)
            self.receipts[command_id] = receipt
            return receipt
        raise Unavailable(f"lot {self.lot_id!r} is contended by another replica; retry with the same request_id")

    def _replay(self, stored: StoredBatch) -> None:
        batch = stored.batch
        for event in batch.events:
            self._apply(event)
        self.lot_sequence = batch.lot_sequence
        self.stream_sequence = stored.stream_sequence
        if batch.command not in INTERNAL_COMMANDS:
            self._remember_receipt(batch.command_id, self._receipt(batch))

    def _apply(self, event: RoomEvent) -> None:
        if isinstance(event, LotConfigured):
            self.info = event.info
            self.engine = engine_for(event.terms, recorded=True)
            self.state = self.engine.initial_state(self.lot_id, event.draw_secret)
            return
        if isinstance(event, ClosingSoon):
            self.closing_soon_announced = True
            return
        if isinstance(event, Withdrawn):
            return  # its LotUnsold ends the lot
        engine, state = self.engine, self.state
        if engine is None or state is None:
            raise AssertionError(f"lot {self.lot_id}: an event before LotConfigured")
        engine.apply(state, event)
        if type(event) is LotOpened:
            self.opened_at_ms = event.at_ms

    def _receipt(self, batch: Batch) -> Receipt:
        state = self.state
        assert state is not None
        correct: bool | None = None
        bidder: str | None = None
        amount: int | None = None
        jumps: int | None = None
        for event in batch.events:
            if isinstance(event, OptionPicked):
                correct = event.correct
            elif isinstance(event, FloorBidAccepted):
                bidder, amount, jumps = event.bidder, event.amount, event.jumps
        return Receipt(
            batch.lot_sequence,
            batch.fingerprint,
            batch.currency,
            state.price,
            state.leader,
            correct,
            bidder,
            amount,
            jumps,
        )

    # -- commands -------------------------------------------------------------------------------------

    def receipt_for(self, request_id: str, fingerprint: str) -> Receipt | None:
        """The stored answer to a repeated request, if this is one (refusing a reused id)."""
        receipt = self.receipts.get(request_id)
        if receipt is not None and receipt.fingerprint != fingerprint:
            raise request_id_reused(request_id)
        return receipt

    async def _execute(self, request: CommandRequest) -> Receipt:
        if isinstance(request.command, WithdrawLot):
            command = request.command
            return await self._withdraw(command.by, command.reason, request.command_id, request.fingerprint)
        for _ in range(MAX_ATTEMPTS):
            if not self.loaded:
                await self._load(None)
            receipt = self.receipt_for(request.command_id, request.fingerprint)
            if receipt is not None:
                return receipt
            self._repeat_refusal(request)
            engine, state = self.engine, self.state
            assert engine is not None
            assert state is not None
            now = self._deps.clock()
            try:
                events = engine.decide(state, request.command, now)
            except GavelError as refusal:
                self._remember_refusal(request, refusal, now)
                raise
            if not events:
                return Receipt(self.lot_sequence, request.fingerprint, engine.terms.currency, state.price, state.leader)
            batch = await self._commit(
                request.command_id, request.name, request.actor_id, request.fingerprint, now, events
            )
            if batch is None:
                continue
            receipt = self._receipt(batch)
            self._remember_receipt(request.command_id, receipt)
            return receipt
        raise Unavailable(f"lot {self.lot_id!r} is contended by another replica; retry with the same request_id")

    def _repeat_refusal(self, request: CommandRequest) -> None:
        remembered = self._refusals.get(request.command_id)
        if remembered is None:
            return
        fingerprint, refusal, at_ms = remembered
        if self._deps.clock() - at_ms > REFUSAL_TTL_MS:
            del self._refusals[request.command_id]
            return
        if fingerprint != request.fingerprint:
            raise request_id_reused(request.command_id)
        raise refusal

    def _remember_refusal(self, request: CommandRequest, refusal: GavelError, now: int) -> None:
        if request.name in INTERNAL_COMMANDS:
            return
        refusals = self._refusals
        refusals[request.command_id] = (request.fingerprint, refusal, now)
        if len(refusals) > REFUSAL_MEMORY:
            refusals.popitem(last=False)

    async def _commit(
        self, command_id: str, name: str, actor_id: str, fingerprint: str, now: int, events: Sequence[RoomEvent]
    ) -> Batch | None:
        """Apply the events and append them as one batch; None if the log moved on (lot reloaded)."""
        state, engine = self.state, self.engine
        assert state is not None
        assert engine is not None
        self._require_ownership()
        if not self.marked_active and any(type(event) is LotOpened for event in events):
            await self._deps.active.mark(self.partition, self.lot_id)  # before the append: see ActiveLots
            self.marked_active = True
            self._require_ownership()
        for event in events:
            self._apply(event)
        batch = Batch(
            self.lot_id,
            self.lot_sequence + 1,
            command_id,
            name,
            actor_id,
            fingerprint,
            now,
            tuple(events),
            summary(state),
            engine.terms.currency,
        )
        try:
            async with self._deps.append_slots:  # waiting for a slot may outlast the lease
                self._require_ownership()
                appended = await self._deps.log.append(batch, self.stream_sequence)
        except (WrongLastSequence, AppendUnconfirmed) as exc:
            log.info("lot %s: append not confirmed (%s); rebuilding from its log", self.lot_id, type(exc).__name__)
            self.loaded = False
            return None
        except BaseException:
            self.loaded = False  # the events were applied but not stored: the state is not the log's
            raise
        self.lot_sequence = batch.lot_sequence
        self.stream_sequence = appended.stream_sequence
        await self._deps.announcer.announce(self.lot_id, appended.stream_sequence, appended.encoded, self._sale())
        if state.phase in TERMINAL_PHASES and self.marked_active:
            self.marked_active = False
            self._deps.spawn(self._unmark())
        self._schedule_wake()
        return batch

    async def _unmark(self) -> None:
        try:
            await self._deps.active.unmark(self.partition, self.lot_id)
        except Exception:  # a stale mark only makes a future owner load a finished lot once
            log.warning("lot %s: could not drop it from the active index", self.lot_id, exc_info=True)

    # -- timers ---------------------------------------------------------------------------------------

    def _closing_soon_at(self) -> int | None:
        window = self._deps.closing_soon_ms
        state = self.state
        if window <= 0 or self.closing_soon_announced or state is None or state.phase is not Phase.OPEN:
            return None
        deadline, opened = state.deadline_ms, self.opened_at_ms
        if deadline is None or opened is None or not isinstance(self.engine, EnglishEngine):
            return None
        if deadline - opened <= window:  # closing soon from the start: nothing to announce
            return None
        return deadline - window

    def _schedule_wake(self) -> None:
        if self.retired or self.state is None:
            return
        wake = self.state.deadline_ms
        notice = self._closing_soon_at()
        if notice is not None and (wake is None or notice < wake):
            wake = notice
        self._deps.wakeups.set(self.lot_id, wake)

    async def _wake(self) -> None:
        if not self.loaded:
            await self._load(None)
        state = self.state
        assert state is not None
        now = self._deps.clock()
        deadline = state.deadline_ms
        if deadline is not None and deadline <= now:
            tick = CommandRequest(f"tick:{deadline}", "Tick", "room", "", Tick())
            await self._execute(tick)
        else:
            notice = self._closing_soon_at()
            if notice is not None and notice <= now and deadline is not None:
                await self._commit(
                    "closing-soon", "ClosingSoon", "room", "", now, [ClosingSoon(self.lot_id, notice, deadline)]
                )
        self._schedule_wake()


class LotDirectory:
    """The actors of the lots this replica owns (loaded lazily, on first touch)."""

    def __init__(self, deps: LotDeps, partitions: int, owns: Callable[[int], bool]) -> None:
        self._deps = deps
        self.partitions = partitions
        self._owns = owns
        self._actors: dict[str, LotActor] = {}

    def __len__(self) -> int:
        return len(self._actors)

    def partition_of(self, lot_id: str) -> int:
        return partition_of(lot_id, self.partitions)

    def actor(self, lot_id: str) -> LotActor:
        """The lot's actor (not necessarily loaded yet); NotOwner if another replica owns the lot."""
        existing = self._actors.get(lot_id)
        if existing is not None and not existing.retired:
            return existing
        partition = partition_of(lot_id, self.partitions)
        if not self._owns(partition):
            raise NotOwner(lot_id)
        created = LotActor(lot_id, partition, self._deps)
        self._actors[lot_id] = created
        return created

    async def loaded(self, lot_id: str) -> LotActor:
        """The lot's actor once its log is read (NotFound: no such lot, not even in the catalog)."""
        actor = self.actor(lot_id)
        if not actor.loaded:
            try:
                await actor.read(_nothing)
            except NotFound:
                if not actor.loaded and actor.idle and self._actors.get(lot_id) is actor:
                    del self._actors[lot_id]
                raise
        return actor

    async def start(self, published: PublishedLot) -> Receipt | None:
        return await self.actor(published.info.lot_id).start(published)

    async def withdraw(self, published: PublishedLot, reason: str) -> None:
        await self.actor(published.info.lot_id).withdraw(published, reason)

    def wake(self, lot_id: str) -> None:
        """A lot's time has come: fire it if this replica holds its partition (a partition held
        again after a lapse has its lots' timers set again by `rearm`)."""
        actor = self._actors.get(lot_id)
        if actor is not None and not actor.retired and self._owns(actor.partition):
            actor.wake()

    def rearm(self, partition: int) -> None:
        """The partition is held again after a lapse, its lots kept: set their timers again (the
        wake-ups that came while it was not held were skipped)."""
        for actor in self._actors.values():
            if actor.partition == partition and actor.loaded and not actor.retired:
                actor.rearm()

    def drop_partition(self, partition: int) -> int:
        """Forget every lot of a partition this replica no longer owns; returns how many."""
        dropped = [lot_id for lot_id, actor in self._actors.items() if actor.partition == partition]
        for lot_id in dropped:
            self._actors.pop(lot_id).retire()
        return len(dropped)

    async def drain_partition(self, partition: int, timeout_s: float) -> None:
        """Wait (bounded) until the partition's lots have finished what they are doing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if all(actor.idle for actor in self._actors.values() if actor.partition == partition):
                return
            await asyncio.sleep(0.01)

    async def load_lots(self, lot_ids: list[str], concurrency: int = 16) -> None:
        """Load lots (and so start their timers) in the background after gaining their partition."""
        slots = asyncio.Semaphore(concurrency)

        async def load(lot_id: str) -> None:
            async with slots:
                try:
                    await self.loaded(lot_id)
                except (NotOwner, NotFound):
                    return
                except Exception:
                    log.warning("lot %s: could not be loaded after the partition moved here", lot_id, exc_info=True)

        await asyncio.gather(*(load(lot_id) for lot_id in lot_ids))

    def evict_idle(self, idle_ms: int) -> int:
        """Forget lots nobody touched for `idle_ms` that wait for no deadline (reloaded on demand)."""
        now = self._deps.clock()
        evicted = [
            lot_id
            for lot_id, actor in self._actors.items()
            if actor.idle
            and now - actor.last_used_ms > idle_ms
            and (actor.state is None or actor.state.deadline_ms is None)
        ]
        for lot_id in evicted:
            self._actors.pop(lot_id).retire()
        return len(evicted)


def _nothing(_: LotActor) -> None:
    return None
