"""Which partitions this replica owns: leases in a key-value bucket with a short TTL.

Every replica writes a heartbeat key and holds its partitions by lease keys, both expiring
`ttl_s` after their last write unless renewed (every `renew_every_s`, revision-checked: a renewal
that finds the key changed means someone else holds it now, and the partition is dropped at once).
Each round (`check_every_s`) the replica reads the bucket and follows `partitions.plan`: claim free
partitions up to its fair share, hand back the least preferred ones beyond it. When a replica dies
its keys expire and the survivors claim its partitions within `ttl_s + check_every_s`.

A lease only decides who *should* write a partition's lots; that only one *does* is guaranteed by
the expected-sequence appends (room.app.lots). To keep two owners rare, a replica stops treating a
partition as its own `margin_s` before its lease could have expired, counted from when the last
successful renewal was sent.

`owns` and `owned_partitions` may be called from another thread than the one running the loop
(the service keeps its leases on a thread of their own, so a busy event loop cannot starve them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from room.app.partitions import plan

log = logging.getLogger("room.ownership")


@dataclass(frozen=True, slots=True)
class LeaseView:
    """The bucket as one read saw it: live replicas (by heartbeat) and each held partition's holder."""

    replicas: frozenset[str]
    holders: dict[int, str]


class LeaseStore(Protocol):
    async def heartbeat(self, replica_id: str) -> None: ...

    async def view(self) -> LeaseView: ...

    async def claim(self, partition: int, replica_id: str) -> int | None:
        """Take a free partition: its lease revision, or None if someone holds it."""
        ...

    async def renew(self, partition: int, replica_id: str, revision: int) -> int | None:
        """Extend a lease held at `revision`: the new revision, or None if it is no longer ours."""
        ...

    async def release(self, partition: int, revision: int) -> None: ...


class PartitionListener(Protocol):
    async def gained(self, partition: int) -> None:
        """Start serving the partition (subscribe to its commands, load its active lots)."""
        ...

    async def releasing(self, partition: int) -> None:
        """Stop taking its calls and let the calls under way finish (handing it back gracefully)."""
        ...

    def lost(self, partition: int) -> None:
        """Forget the partition's lots (its lease is gone or given back)."""
        ...


@dataclass(slots=True)
class Lease:
    revision: int
    valid_until: float


class Ownership:
    def __init__(
        self,
        replica_id: str,
        partitions: int,
        store: LeaseStore,
        listener: PartitionListener,
        monotonic: Callable[[], float],
        *,
        ttl_s: float = 1.2,
        renew_every_s: float = 0.4,
        check_every_s: float = 0.1,
        margin_s: float = 0.25,
    ) -> None:
        if renew_every_s * 2 >= ttl_s:
            raise ValueError("renew at least twice per lease TTL")
        self.replica_id = replica_id
        self.partitions = partitions
        self._store = store
        self._listener = listener
        self._monotonic = monotonic
        self.ttl_s = ttl_s
        self.renew_every_s = renew_every_s
        self.check_every_s = check_every_s
        self.margin_s = margin_s
        self.owned: dict[int, Lease] = {}
        self._last_renewal = float("-inf")
        self._stopping = False

    def owns(self, partition: int) -> bool:
        lease = self.owned.get(partition)
        return lease is not None and self._monotonic() < lease.valid_until

    def owned_partitions(self) -> list[int]:
        return sorted(p for p, _ in list(self.owned.items()) if self.owns(p))  # list(): a snapshot

    def _valid_until(self, sent_at: float) -> float:
        return sent_at + self.ttl_s - self.margin_s

    async def step(self) -> None:
        """One round: renew when due, drop expired leases, then claim or release per the plan."""
        now = self._monotonic()
        if now - self._last_renewal >= self.renew_every_s:
            self._last_renewal = now
            await self._renew_all()
            try:  # after the leases, so a replica that dies mid-round is never seen alive without them
                await self._store.heartbeat(self.replica_id)
            except Exception:
                log.warning("heartbeat failed; retrying", exc_info=True)
        for partition, lease in list(self.owned.items()):
            if self._monotonic() >= lease.valid_until:  # renewals failed for too long
                log.warning("partition %d: lease expired before it could be renewed", partition)
                self._drop(partition)
        if self._stopping:
            return
        view = await self._store.view()
        decision = plan(self.replica_id, self.partitions, view.replicas, view.holders, self.owned)
        for partition in decision.release:
            await self._release(partition)
        await asyncio.gather(*(self._claim(partition) for partition in decision.claim))

    async def _claim(self, partition: int) -> None:
        sent_at = self._monotonic()
        revision = await self._store.claim(partition, self.replica_id)
        if revision is None:
            return
        self.owned[partition] = Lease(revision, self._valid_until(sent_at))
        log.info("partition %d: claimed by %s", partition, self.replica_id)
        await self._listener.gained(partition)

    async def _renew_all(self) -> None:
        async def renew(partition: int, lease: Lease) -> None:
            sent_at = self._monotonic()
            try:
                revision = await self._store.renew(partition, self.replica_id, lease.revision)
            except Exception:
                log.warning("partition %d: lease renewal failed; retrying", partition, exc_info=True)
                return
            if revision is None:
                log.warning("partition %d: lease taken by another replica", partition)
                self._drop(partition)
            elif self.owned.get(partition) is lease:
                lease.revision = revision
                lease.valid_until = self._valid_until(sent_at)

        await asyncio.gather(*(renew(p, lease) for p, lease in list(self.owned.items())))

    def _drop(self, partition: int) -> None:
        if self.owned.pop(partition, None) is not None:
            self._listener.lost(partition)

    async def _release(self, partition: int) -> None:
        lease = self.owned.get(partition)
        if lease is None:
            return
        await self._listener.releasing(partition)
        self._drop(partition)
        try:
            await self._store.release(partition, lease.revision)
        except Exception:  # it expires on its own within the TTL
            log.warning("partition %d: could not release the lease", partition, exc_info=True)
        log.info("partition %d: released by %s", partition, self.replica_id)

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self.step()
            except Exception:
                log.warning("lease round failed; retrying", exc_info=True)
            await asyncio.sleep(self.check_every_s)

    async def release_all(self) -> None:
        """Hand every partition back (graceful shutdown), so survivors need not wait for the TTL."""
        self._stopping = True
        await asyncio.gather(*(self._release(partition) for partition in list(self.owned)))
