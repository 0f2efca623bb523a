"""Partition ownership and the active-lot index, in JetStream key-value buckets.

ROOM_REPLICAS (memory storage, TTL = the lease length, 1.2 s by default): `<replica_id>`
heartbeats, rewritten every TTL/3 with a revision check.

ROOM_OWNERS (memory storage, no TTL): `partition.<n>` = the replica id that holds partition n
(held only while that replica's heartbeat lives; room.app.ownership).

ROOM_ACTIVE_LOTS (file storage, TTL 100 days, longer than any live lot runs): `p<n>.<lot_id>` for
every lot of partition n that opened and has not ended, written before the batch that opens the
lot is appended and deleted after the batch that ends it. A new owner loads these lots at once so
their deadlines keep firing; every other lot is loaded on first touch. It also records
`config.partitions`, so replicas configured with another partition count refuse to start.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable
from pathlib import Path

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType

from gavel_kit import loop as event_loops
from gavel_kit import nats as gavel_nats
from gavel_kit.leases import ExpiringKeys
from gavel_kit.logging import get_logger
from room.app.ownership import LeaseView, OwnerKey, Ownership, PartitionListener

log = get_logger("room.leases")

REPLICAS_BUCKET = "ROOM_REPLICAS"
OWNERS_BUCKET = "ROOM_OWNERS"
ACTIVE_BUCKET = "ROOM_ACTIVE_LOTS"
ACTIVE_TTL_S = 100 * 24 * 3600
PARTITION_COUNT_KEY = "config.partitions"
FIRST_ROUND_ATTEMPTS = 20


class KvLeaseStore:
    """Both buckets are created again when found missing (a NATS restart loses memory storage)."""

    def __init__(self, nc: Client, js: JetStreamContext, ttl_s: float, replicas: int = 1) -> None:
        self.heartbeats = ExpiringKeys(
            nc, js, REPLICAS_BUCKET, ttl_s, description="room replica heartbeats", replicas=replicas
        )
        self.owners = ExpiringKeys(nc, js, OWNERS_BUCKET, 0, description="room partition owners", replicas=replicas)

    async def heartbeat(self, replica_id: str, revision: int | None) -> int | None:
        if revision is None:
            return await self.heartbeats.create(replica_id, b"")
        return await self.heartbeats.update(replica_id, b"", revision)

    async def replicas(self) -> frozenset[str]:
        return frozenset(await self.heartbeats.entries())

    async def view(self) -> LeaseView:
        replicas, keys = await asyncio.gather(self.heartbeats.entries(), self.owners.entries("partition.>"))
        owners: dict[int, OwnerKey] = {}
        for key, entry in keys.items():
            number = key.partition(".")[2]
            if number.isdigit():
                owners[int(number)] = OwnerKey(entry.value.decode(), entry.revision)
        return LeaseView(frozenset(replicas), owners)

    async def claim(self, partition: int, replica_id: str, revision: int | None) -> int | None:
        key = f"partition.{partition}"
        if revision is None:
            return await self.owners.create(key, replica_id.encode())
        return await self.owners.update(key, replica_id.encode(), revision)

    async def release(self, partition: int, revision: int) -> None:
        await self.owners.delete(f"partition.{partition}", revision)

    async def leave(self, replica_id: str, revision: int) -> None:
        await self.heartbeats.delete(replica_id, revision)

    async def holders(self) -> dict[int, str]:
        """Partition → the live replica holding it, as the buckets show it now (tests and tools)."""
        view = await self.view()
        return {p: key.replica_id for p, key in view.owners.items() if key.replica_id in view.replicas}


class PartitionCountMismatch(RuntimeError):
    pass


class KvActiveLots:
    def __init__(self, nc: Client, js: JetStreamContext, replicas: int = 1) -> None:
        self.keys = ExpiringKeys(
            nc,
            js,
            ACTIVE_BUCKET,
            ACTIVE_TTL_S,
            storage=StorageType.FILE,
            description="room lots that opened and have not ended, by partition",
            replicas=replicas,
        )

    async def check_partition_count(self, partitions: int) -> None:
        entries = await self.keys.entries(PARTITION_COUNT_KEY)
        recorded = entries.get(PARTITION_COUNT_KEY)
        if recorded is not None and int(recorded.value) != partitions:
            raise PartitionCountMismatch(
                f"the room runs with {int(recorded.value)} partitions; GAVEL_ROOM_PARTITIONS={partitions} "
                "would move lots between owners (see docs/room-service.md)"
            )
        await self.keys.put(PARTITION_COUNT_KEY, str(partitions).encode())

    async def mark(self, partition: int, lot_id: str) -> None:
        await self.keys.put(f"p{partition}.{lot_id}", b"")

    async def unmark(self, partition: int, lot_id: str) -> None:
        await self.keys.delete(f"p{partition}.{lot_id}")

    async def list(self, partition: int) -> list[str]:
        prefix = f"p{partition}."
        return [key[len(prefix) :] for key in await self.keys.entries(f"{prefix}>")]


class _OnLoop:
    """The partition listener, called from the lease thread but run on the service's event loop."""

    def __init__(self, listener: PartitionListener, loop: asyncio.AbstractEventLoop) -> None:
        self._listener = listener
        self._loop = loop

    async def gained(self, partition: int) -> None:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._listener.gained(partition), self._loop))

    async def releasing(self, partition: int) -> None:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._listener.releasing(partition), self._loop))

    def lost(self, partition: int) -> None:
        self._loop.call_soon_threadsafe(self._listener.lost, partition)

    def resumed(self, partition: int) -> None:
        self._loop.call_soon_threadsafe(self._listener.resumed, partition)


def _ignore(*_: object) -> None:
    return None


class LeaseKeeper:
    """Keeps this replica's partition leases on a thread of its own, with its own event loop and
    NATS connection.

    A lease says "this process is alive"; it must not lapse because the service's event loop is
    busy with requests (under overload an asyncio loop can run seconds behind, longer than the
    lease lasts). The lease thread needs the GIL only briefly, which CPython hands over within its
    switch interval (5 ms) even to a busy main thread. What gaining or losing a partition means for
    the service still runs on the service's loop (`_OnLoop`).
    """

    def __init__(
        self,
        nats_url: str,
        nats_credentials: Path | None,
        replica_id: str,
        partitions: int,
        listener: PartitionListener,
        *,
        ttl_s: float,
        renew_every_s: float,
        event_loop: str = "uvloop",
        replicas: int = 1,
        on_status: Callable[[bool, str], None] = _ignore,
        on_failure: Callable[[str], None] = _ignore,
    ) -> None:
        """`on_status(ok, detail)` (readiness, module room.app.ownership) and `on_failure(reason)`
        (the thread died: the replica cannot hold partitions any more) run on the service's loop."""
        self._replicas = replicas
        self._on_status = on_status
        self._on_failure = on_failure
        self._stopping = False
        self._nats_url = nats_url
        self._nats_credentials = nats_credentials
        self._event_loop = event_loop
        self._replica_id = replica_id
        self._partitions = partitions
        self._listener = listener
        self._ttl_s = ttl_s
        self._renew_every_s = renew_every_s
        self.ownership: Ownership | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._first_round: concurrent.futures.Future[None] = concurrent.futures.Future()

    def owns(self, partition: int) -> bool:
        ownership = self.ownership
        return ownership is not None and ownership.owns(partition)

    def owned_partitions(self) -> list[int]:
        ownership = self.ownership
        return ownership.owned_partitions() if ownership is not None else []

    async def start(self) -> None:
        """Start the thread; return once the first claim round is done (so a lone replica owns
        every partition before it reports SERVING)."""
        service_loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._run, args=(service_loop,), name=f"room-leases-{self._replica_id}", daemon=True
        )
        self._thread.start()
        await asyncio.wrap_future(self._first_round)

    def _run(self, service_loop: asyncio.AbstractEventLoop) -> None:
        try:  # the service's kind of loop: uvloop reads the buckets with less CPU (and GIL)
            event_loops.run(self._keep(service_loop), self._event_loop)
        except BaseException as exc:  # the service cannot serve without leases: let start() fail
            if not self._first_round.done():
                self._first_round.set_exception(exc)
            log.exception("lease thread stopped")
            if not self._stopping:
                service_loop.call_soon_threadsafe(self._on_failure, f"the lease thread stopped: {exc!r}")
            return
        if not self._stopping:
            service_loop.call_soon_threadsafe(self._on_failure, "the lease thread stopped")

    async def _keep(self, service_loop: asyncio.AbstractEventLoop) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        nc = await gavel_nats.connect(
            self._nats_url, f"gavel-room-leases-{self._replica_id}", credentials=self._nats_credentials
        )
        try:
            on_status = self._on_status

            def status(ok: bool, detail: str) -> None:
                service_loop.call_soon_threadsafe(on_status, ok, detail)

            ownership = Ownership(
                self._replica_id,
                self._partitions,
                KvLeaseStore(nc, nc.jetstream(), self._ttl_s, self._replicas),
                _OnLoop(self._listener, service_loop),
                time.monotonic,
                ttl_s=self._ttl_s,
                renew_every_s=self._renew_every_s,
                on_status=status,
            )
            self.ownership = ownership
            for attempt in range(FIRST_ROUND_ATTEMPTS):
                try:
                    await ownership.step()
                    break
                except Exception:  # e.g. the bucket being created by another replica right now
                    if attempt == FIRST_ROUND_ATTEMPTS - 1:
                        raise
                    await asyncio.sleep(0.25)
            self._first_round.set_result(None)
            rounds = asyncio.create_task(ownership.run())
            await self._stop.wait()
            rounds.cancel()
            await asyncio.gather(rounds, return_exceptions=True)
            await ownership.release_all()
        finally:
            await nc.close()

    async def stop(self) -> None:
        """Hand every partition back and stop the thread (graceful shutdown)."""
        self._stopping = True
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is None or stop is None or thread is None or not thread.is_alive():
            return
        loop.call_soon_threadsafe(stop.set)
        await asyncio.get_running_loop().run_in_executor(None, thread.join, 10)
