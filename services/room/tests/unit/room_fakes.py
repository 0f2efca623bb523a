"""In-memory stand-ins for the room's ports: an event log with JetStream's expected-sequence rule,
an announcer, the active-lot index, a terms source, a controllable clock."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gavel_core.formats import LotTerms
from room.app.lots import LotDeps, LotDirectory
from room.app.model import Batch, LotInfo, PublishedLot, StoredBatch
from room.app.ports import Appended, AppendUnconfirmed, FeedItem, WrongLastSequence
from room.app.timers import WakeUps


class Clock:
    def __init__(self, now_ms: int = 1_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


@dataclass
class Stored:
    lot_id: str
    batch: Batch
    sequence: int


class FakeLog:
    """One stream: a global sequence, per-lot subjects, the expected-last-subject-sequence rule."""

    def __init__(self) -> None:
        self.messages: list[Stored] = []
        self.appends = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay_s = 0.0
        self.lose_ack_once = False  # store the next append, then report it unconfirmed
        self.refuse_once = False  # report an unconfirmed append without storing it
        self.fail_appends = 0  # this many appends fail unconfirmed without storing anything

    def last_sequence(self, lot_id: str) -> int:
        for stored in reversed(self.messages):
            if stored.lot_id == lot_id:
                return stored.sequence
        return 0

    def store(self, batch: Batch) -> int:
        sequence = len(self.messages) + 1
        self.messages.append(Stored(batch.lot_id, batch, sequence))
        return sequence

    async def append(self, batch: Batch, expected_stream_sequence: int) -> Appended:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            else:
                await asyncio.sleep(0)
            if self.refuse_once:
                self.refuse_once = False
                raise AppendUnconfirmed("refused")
            if self.fail_appends:
                self.fail_appends -= 1
                raise AppendUnconfirmed("the stream refused the append")
            if self.last_sequence(batch.lot_id) != expected_stream_sequence:
                raise WrongLastSequence(f"wrong last sequence: {self.last_sequence(batch.lot_id)}")
            self.appends += 1
            sequence = self.store(batch)
            if self.lose_ack_once:
                self.lose_ack_once = False
                raise AppendUnconfirmed("ack lost")
            return Appended(sequence, repr(batch).encode())
        finally:
            self.in_flight -= 1

    async def read(self, lot_id: str, after_stream_sequence: int = 0) -> list[StoredBatch]:
        await asyncio.sleep(0)
        return [
            StoredBatch(s.batch, s.sequence, repr(s.batch).encode())
            for s in self.messages
            if s.lot_id == lot_id and s.sequence > after_stream_sequence
        ]

    def batches(self, lot_id: str) -> list[Batch]:
        return [s.batch for s in self.messages if s.lot_id == lot_id]


class FakeAnnouncer:
    def __init__(self) -> None:
        self.announced: list[tuple[str, int]] = []

    async def announce(self, lot_id: str, stream_sequence: int, encoded: bytes, sale_id: str = "") -> None:
        self.announced.append((lot_id, stream_sequence))


class FakeActiveLots:
    def __init__(self) -> None:
        self.marked: set[tuple[int, str]] = set()

    async def mark(self, partition: int, lot_id: str) -> None:
        self.marked.add((partition, lot_id))

    async def unmark(self, partition: int, lot_id: str) -> None:
        self.marked.discard((partition, lot_id))

    async def list(self, partition: int) -> list[str]:
        return [lot_id for p, lot_id in self.marked if p == partition]


@dataclass
class FakeTerms:
    lots: dict[str, tuple[LotInfo, LotTerms]] = field(default_factory=dict)

    def add(
        self, lot_id: str, terms: LotTerms, *, seller: str = "seller", sale: str = "sale-1", rooms: int = 1
    ) -> None:
        self.lots[lot_id] = (LotInfo(lot_id, sale, seller, lot_id, 0, rooms), terms)

    async def started(self, lot_id: str) -> PublishedLot | None:
        found = self.lots.get(lot_id)
        return None if found is None else PublishedLot(*found)


class Tasks:
    """The `spawn` actors use, keeping references so tests can wait for background work."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    def __call__(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def settle(self) -> None:
        for _ in range(100):
            if not self.tasks:
                return
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


@dataclass
class World:
    log: FakeLog
    announcer: FakeAnnouncer
    active: FakeActiveLots
    terms: FakeTerms
    clock: Clock
    wakeups: WakeUps
    tasks: Tasks
    lots: LotDirectory
    woken: list[str]


def world(
    *,
    log: FakeLog | None = None,
    owns: Callable[[int], bool] = lambda partition: True,
    max_in_flight: int = 64,
    closing_soon_ms: int = 0,
    clock: Clock | None = None,
    terms: FakeTerms | None = None,
) -> World:
    clock = clock or Clock()
    woken: list[str] = []
    wakeups = WakeUps(clock, woken.append)
    tasks = Tasks()
    deps = LotDeps(
        log=log or FakeLog(),
        announcer=FakeAnnouncer(),
        active=FakeActiveLots(),
        terms=terms or FakeTerms(),
        clock=clock,
        wakeups=wakeups,
        append_slots=asyncio.Semaphore(max_in_flight),
        spawn=tasks,
        draw_secret=lambda: os.urandom(32),
        closing_soon_ms=closing_soon_ms,
        owns=owns,
    )
    directory = LotDirectory(deps, 8, owns)
    return World(
        deps.log,  # type: ignore[arg-type]
        deps.announcer,  # type: ignore[arg-type]
        deps.active,  # type: ignore[arg-type]
        deps.terms,  # type: ignore[arg-type]
        clock,
        wakeups,
        tasks,
        directory,
        woken,
    )


class FakeFeedSource:
    """Announcements the test pushes by hand, and a log the feed reads gaps from."""

    def __init__(self) -> None:
        self.log: list[FeedItem] = []
        self.deliver: dict[str, Callable[[FeedItem], None]] = {}
        self.reads = 0
        self.tail_checks = 0
        self.loss_listeners: list[Callable[[str | None], None]] = []

    class _Subscription:
        async def close(self) -> None:
            return None

    async def subscribe(self, lot_id: str, deliver: Callable[[FeedItem], None]) -> FakeFeedSource._Subscription:
        self.deliver[lot_id] = deliver
        return FakeFeedSource._Subscription()

    async def history(self, lot_id: str, after_stream_sequence: int) -> Sequence[FeedItem]:
        self.reads += 1
        await asyncio.sleep(0)
        return [item for item in self.log if item.stream_sequence > after_stream_sequence]

    async def tails(self, lot_ids: Sequence[str]) -> dict[str, int]:
        self.tail_checks += 1
        found: dict[str, int] = {}
        for item in self.log:
            found["lot-1"] = item.stream_sequence  # the tests' feeds watch one lot's log
        return {lot_id: seq for lot_id, seq in found.items() if lot_id in lot_ids}

    def on_loss(self, listener: Callable[[str | None], None]) -> None:
        self.loss_listeners.append(listener)

    def lose(self, lot_id: str | None) -> None:
        """Say announcements were dropped: for one lot (a slow consumer) or all (a reconnect)."""
        for listener in self.loss_listeners:
            listener(lot_id)

    def store(self, lot_sequence: int, final: bool = False) -> FeedItem:
        item = FeedItem(lot_sequence, lot_sequence * 10, f"batch-{lot_sequence}", final)
        self.log.append(item)
        return item
