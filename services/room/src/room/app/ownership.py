"""Which partitions this replica owns: one heartbeat per replica, one owner key per partition.

Two key-value buckets (room.adapters.leases):

- heartbeats — `<replica_id>`, expiring `ttl_s` after its last write. A replica rewrites its own
  every `renew_every_s` with a revision-checked update, so the write fails if the key expired in
  between (the replica was seen dead for a moment);
- owners — `partition.<n>` = the holder's replica id, never expiring.

A partition is *held* while its owner key names a replica whose heartbeat is alive. Everything a
replica holds is renewed by its one heartbeat, so a round costs one write whatever the partition
count (it used to be one write per partition, which under load cost more than the bids).

Each round (`check_every_s`) the replica reads the heartbeats and follows `partitions.plan`: claim
free partitions up to its fair share, hand back the least preferred ones beyond it. A partition is
free when its key is missing, names a replica without a heartbeat (dead), or names this replica
without it holding the partition (a restart under the same id, a release that failed). Claims are
revision-checked too (create a missing key, update a stale one at the revision read), so of two
replicas claiming the same partition exactly one wins. When a replica dies its heartbeat expires
and the survivors claim its partitions within `ttl_s + check_every_s`.

The owner keys are read whole only when they may have changed in a way the plan cares about: the
set of live replicas differs from the last full read, the last full read was not *settled* (a
partition free or a replica beyond its fair share: someone is about to claim or release), this
replica wrote or dropped something since, or `refresh_owners_every_s` passed. Once ownership is
settled no replica writes an owner key until the live set changes, so a settled replica reads one
small bucket per round instead of one key per partition (the lease thread's largest cost).

A replica stops treating its partitions as its own `margin_s` before its heartbeat could have
expired, counted from when the last successful heartbeat was *sent*; a heartbeat that fails
because the key expired drops every partition at once (someone may have claimed them). An owner
key that names another replica drops that partition too. Leases only decide who *should* write a
partition's lots; that only one *does* is guaranteed by the expected-sequence appends
(room.app.lots).

`owns` and `owned_partitions` may be called from another thread than the one running the loop
(the service keeps its leases on a thread of their own, so a busy event loop cannot starve them).

`status` is what readiness reports: unmet while the heartbeat is not renewed in time (the replica
can hold nothing) or while the replica holds no partition although the live replicas leave it a
share (it joined, or is claiming again after a lapse, e.g. after a NATS restart lost the buckets).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from room.app.partitions import fair_share, plan

log = logging.getLogger("room.ownership")


@dataclass(frozen=True, slots=True)
class OwnerKey:
    """A partition's owner key as read: who it names, and its revision (for a checked claim)."""

    replica_id: str
    revision: int


@dataclass(frozen=True, slots=True)
class LeaseView:
    """The buckets as one read saw them: live replicas (by heartbeat) and each partition's key."""

    replicas: frozenset[str]
    owners: dict[int, OwnerKey]


class LeaseStore(Protocol):
    async def heartbeat(self, replica_id: str, revision: int | None) -> int | None:
        """Write the heartbeat: create it (revision None) or update it at `revision`. The new
        revision, or None if the key is not as expected (it expired, or another process has it)."""
        ...

    async def replicas(self) -> frozenset[str]:
        """The replicas whose heartbeat is alive."""
        ...

    async def view(self) -> LeaseView:
        """The live replicas and every owner key, in one read."""
        ...

    async def claim(self, partition: int, replica_id: str, revision: int | None) -> int | None:
        """Name `replica_id` as the partition's owner: create the key (revision None) or update it
        at `revision`. The new revision, or None if the key changed since it was read."""
        ...

    async def release(self, partition: int, revision: int) -> None:
        """Delete the owner key if it is still at `revision`."""
        ...

    async def leave(self, replica_id: str, revision: int) -> None:
        """Delete the heartbeat (a graceful stop: survivors need not wait for it to expire)."""
        ...


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

    def resumed(self, partition: int) -> None:
        """Held again after a lapse with its lots kept: serve them again (re-arm their timers)."""
        ...


StatusListener = Callable[[bool, str], None]


def _ignore_status(ok: bool, detail: str) -> None:
    return None


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
        refresh_owners_every_s: float = 1.0,
        on_status: StatusListener = _ignore_status,
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
        self.refresh_owners_every_s = refresh_owners_every_s
        self._settled_view: LeaseView | None = None  # the last full read, while nothing is due to change
        self._settled_read_at = float("-inf")
        self.owned: dict[int, int] = {}  # partition -> revision of its owner key
        # Partitions held when the heartbeat lapsed, with their key's revision: not ours to serve
        # until claimed again, but their lots stay loaded (see `_suspend_all`).
        self.suspended: dict[int, int] = {}
        self._heartbeat_revision: int | None = None
        self._valid_until = float("-inf")
        self._last_beat = float("-inf")
        self._stopping = False
        self._on_status = on_status
        self.status: tuple[bool, str] = (False, "claiming partitions")
        self._live_replicas = 0

    def owns(self, partition: int) -> bool:
        return partition in self.owned and self._monotonic() < self._valid_until

    def owned_partitions(self) -> list[int]:
        if self._monotonic() >= self._valid_until:
            return []
        return sorted(list(self.owned))  # list(): a snapshot, the loop may change it meanwhile

    async def step(self) -> None:
        """One round: heartbeat when due, then plan (`run` does the two on separate timers)."""
        await self.beat_if_due()
        await self.plan_round()

    async def beat_if_due(self) -> None:
        if self._monotonic() - self._last_beat >= self.renew_every_s:
            self._last_beat = self._monotonic()
            await self._beat()

    def _report(self) -> None:
        """Tell readiness whether this replica can do its share now (module doc)."""
        if self._monotonic() >= self._valid_until:
            status = (False, "heartbeat not renewed (NATS or the lease buckets unreachable)")
        elif not self.owned and max(1, self._live_replicas) <= self.partitions:  # a share is left for it
            status = (False, "holds no partition yet")
        else:
            status = (True, "")
        if status != self.status:
            self.status = status
            self._on_status(*status)

    async def plan_round(self) -> None:
        """Step back if the heartbeat lapsed, then claim or release per the plan."""
        if self._monotonic() >= self._valid_until:  # no live heartbeat of ours: we may hold nothing
            if self.owned:
                log.warning("heartbeat not renewed in time: stepping back from %d partitions", len(self.owned))
                self._suspend_all()
            self._report()
            return
        if self._stopping or self._heartbeat_revision is None:
            return
        try:
            await self._plan()
        finally:
            self._report()

    async def _plan(self) -> None:
        view = await self._read_view()
        self._live_replicas = len(view.replicas | {self.replica_id})
        owned_before = dict(self.owned)
        suspended_before = dict(self.suspended)
        for partition in list(self.owned):
            key = view.owners.get(partition)
            if key is None or key.replica_id != self.replica_id:
                log.warning("partition %d: its owner key no longer names this replica", partition)
                self._drop(partition)
        for partition, revision in list(self.suspended.items()):
            key = view.owners.get(partition)
            if key is None or key.replica_id != self.replica_id or key.revision != revision:
                log.warning("partition %d: claimed by another replica while our heartbeat was out", partition)
                self._forget_suspended(partition)
        held = {
            partition: key.replica_id
            for partition, key in view.owners.items()
            if key.replica_id in view.replicas and (key.replica_id != self.replica_id or partition in self.owned)
        }
        decision = plan(self.replica_id, self.partitions, view.replicas, held, self.owned)
        for partition in decision.release:
            await self._release(partition)
        await asyncio.gather(*(self._claim(partition, view.owners.get(partition)) for partition in decision.claim))
        settled = set(decision.claim) | set(decision.release)
        for partition, key in view.owners.items():  # keys naming us that the plan does not want
            if key.replica_id == self.replica_id and partition not in self.owned and partition not in settled:
                await self._forget_key(partition, key.revision)
        for partition in list(self.suspended):  # not claimed back this round (beyond our share now)
            if partition not in self.owned:
                self._forget_suspended(partition)
        if self.owned != owned_before or self.suspended != suspended_before or decision.claim or decision.release:
            self._settled_view = None  # our own writes (or failed claims) changed what the keys hold

    async def _read_view(self) -> LeaseView:
        """Heartbeats every round; the owner keys again only when they may have changed (module doc)."""
        now = self._monotonic()
        cached = self._settled_view
        if cached is not None and now - self._settled_read_at < self.refresh_owners_every_s:
            replicas = await self._store.replicas()
            if replicas == cached.replicas:
                return cached
        view = await self._store.view()
        self._settled_view = view if self._is_settled(view) else None
        self._settled_read_at = now
        return view

    def _is_settled(self, view: LeaseView) -> bool:
        """Every partition held by a live replica, none beyond its fair share: nobody will claim or
        release until the live replicas change."""
        share = fair_share(self.partitions, len(view.replicas))
        held: dict[str, int] = {}
        for partition in range(self.partitions):
            key = view.owners.get(partition)
            if key is None or key.replica_id not in view.replicas:
                return False
            held[key.replica_id] = held.get(key.replica_id, 0) + 1
        return all(count <= share for count in held.values())

    async def _beat(self) -> None:
        sent_at = self._monotonic()
        try:
            revision = await self._store.heartbeat(self.replica_id, self._heartbeat_revision)
            if revision is None and self._heartbeat_revision is not None:
                log.warning("heartbeat expired before it was renewed: stepping back from every partition")
                self._suspend_all()
                self._heartbeat_revision = None
                sent_at = self._monotonic()
                revision = await self._store.heartbeat(self.replica_id, None)
        except Exception:
            log.warning("heartbeat failed; retrying", exc_info=True)
            return
        if revision is None:  # a key under our id that is not ours yet (a previous run's): wait it out
            log.warning("replica id %s has a live heartbeat already; waiting for it to expire", self.replica_id)
            return
        self._heartbeat_revision = revision
        self._valid_until = sent_at + self.ttl_s - self.margin_s

    async def _claim(self, partition: int, key: OwnerKey | None) -> None:
        revision = await self._store.claim(partition, self.replica_id, key.revision if key is not None else None)
        if revision is None:
            return
        self.owned[partition] = revision
        if self.suspended.pop(partition, None) is not None:
            # Nobody wrote its lots meanwhile: a writer must first have claimed its key.
            log.info("partition %d: claimed back by %s, its lots kept", partition, self.replica_id)
            self._listener.resumed(partition)
            return
        log.info("partition %d: claimed by %s", partition, self.replica_id)
        await self._listener.gained(partition)

    def _drop(self, partition: int) -> None:
        if self.owned.pop(partition, None) is not None:
            self._listener.lost(partition)

    def _suspend_all(self) -> None:
        """The heartbeat lapsed: others may now claim our partitions, so we serve none of them. We
        keep their lots loaded, though: if a partition's key still has the revision we held when
        we claim it back, no other replica owned it in between (owning starts with changing the
        key), so nothing was written to its lots that we have not seen — a 10,000-lot replica
        whose heartbeat slipped for a moment then resumes without rebuilding every lot."""
        self.suspended.update(self.owned)
        self.owned.clear()

    def _forget_suspended(self, partition: int) -> None:
        if self.suspended.pop(partition, None) is not None:
            self._listener.lost(partition)

    async def _release(self, partition: int) -> None:
        revision = self.owned.get(partition)
        if revision is None:
            return
        await self._listener.releasing(partition)
        self._drop(partition)
        await self._forget_key(partition, revision)
        log.info("partition %d: released by %s", partition, self.replica_id)

    async def _forget_key(self, partition: int, revision: int) -> None:
        try:
            await self._store.release(partition, revision)
        except Exception:  # the key still names us: the next round finds it and tries again
            log.warning("partition %d: could not release the owner key", partition, exc_info=True)

    async def run(self) -> None:
        """The heartbeat and the planning rounds on timers of their own, so a slow read of the
        buckets (a busy server, a starved process) never delays the write that keeps us alive."""
        await asyncio.gather(self._keep_beating(), self._keep_planning())

    async def _keep_beating(self) -> None:
        while not self._stopping:
            await self.beat_if_due()
            await asyncio.sleep(max(0.0, self._last_beat + self.renew_every_s - self._monotonic()))

    async def _keep_planning(self) -> None:
        while not self._stopping:
            try:
                await self.plan_round()
            except Exception:
                log.warning("lease round failed; retrying", exc_info=True)
            await asyncio.sleep(self.check_every_s)

    async def release_all(self) -> None:
        """Hand every partition back and leave (graceful shutdown), so survivors need not wait."""
        self._stopping = True
        await asyncio.gather(*(self._release(partition) for partition in list(self.owned)))
        for partition, revision in list(self.suspended.items()):
            self._forget_suspended(partition)
            await self._forget_key(partition, revision)
        if self._heartbeat_revision is not None:
            try:
                await self._store.leave(self.replica_id, self._heartbeat_revision)
            except Exception:  # it expires on its own within the TTL
                log.warning("could not delete the heartbeat", exc_info=True)
            self._heartbeat_revision = None
