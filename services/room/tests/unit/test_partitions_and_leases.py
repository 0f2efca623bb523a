"""Partition hashing, fair shares, and the lease loop against an in-memory bucket with expiring keys."""

from __future__ import annotations

import asyncio
import uuid
import zlib
from collections import Counter

import pytest

from room.app.ownership import LeaseView, OwnerKey, Ownership
from room.app.partitions import fair_share, partition_of, plan


def test_partition_of_is_crc32_of_the_utf8_lot_id_modulo_the_count():
    assert partition_of("lot-1", 64) == zlib.crc32(b"lot-1") % 64
    assert partition_of("0190b2c4-7d7e-7000-8000-000000000001", 64) == 45  # fixed forever (docs/room-service.md)
    assert all(0 <= partition_of(str(uuid.uuid4()), 64) < 64 for _ in range(1_000))


def test_partitions_spread_lots_evenly():
    counts = Counter(partition_of(str(uuid.uuid4()), 64) for _ in range(64_000))
    assert len(counts) == 64
    assert max(counts.values()) < 1.25 * 1_000
    assert min(counts.values()) > 0.75 * 1_000


@pytest.mark.parametrize(
    ("partitions", "replicas", "share"), [(64, 1, 64), (64, 2, 32), (64, 3, 22), (64, 5, 13), (64, 64, 1), (64, 100, 1)]
)
def test_fair_share_is_the_ceiling_of_partitions_per_live_replica(partitions, replicas, share):
    assert fair_share(partitions, replicas) == share
    assert fair_share(partitions, replicas) * replicas >= partitions


def test_a_replica_claims_free_partitions_up_to_its_share_only():
    decision = plan("a", 64, {"a", "b"}, holders={}, owned=[])
    assert len(decision.claim) == 32
    assert not decision.release


def test_a_replica_releases_its_least_preferred_partitions_beyond_its_share():
    owned = list(range(64))
    decision = plan("a", 64, {"a", "b", "c"}, holders=dict.fromkeys(owned, "a"), owned=owned)
    assert len(decision.release) == 64 - 22
    assert not decision.claim
    kept = set(owned) - set(decision.release)
    assert kept == set(plan("a", 64, {"a", "b", "c"}, {}, []).claim)  # the same 22 it would have chosen


def test_a_replica_counts_itself_before_its_heartbeat_is_seen():
    assert len(plan("new", 64, {"old"}, holders={}, owned=[]).claim) == 32


def simulate(replicas: list[str], holders: dict[int, str], rounds: int = 5) -> dict[int, str]:
    for _ in range(rounds):
        for replica in replicas:
            owned = [p for p, holder in holders.items() if holder == replica]
            decision = plan(replica, 64, set(replicas), holders, owned)
            for p in decision.release:
                del holders[p]
            for p in decision.claim:
                holders.setdefault(p, replica)
    return holders


def test_replicas_converge_on_a_balanced_cover_and_survivors_take_over():
    holders = simulate(["a", "b", "c"], {})
    assert set(holders) == set(range(64))
    assert sorted(Counter(holders.values()).values()) == [20, 22, 22]
    survivors = {p: r for p, r in holders.items() if r != "c"}  # c died: its leases expired
    holders = simulate(["a", "b"], survivors)
    assert set(holders) == set(range(64))
    assert sorted(Counter(holders.values()).values()) == [32, 32]


# -- the lease loop ---------------------------------------------------------------------------------


class Monotonic:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Bucket:
    """Revision-checked keys that expire `ttl` after their last write (None: never), like a KV bucket."""

    def __init__(self, clock: Monotonic, ttl: float | None) -> None:
        self.clock = clock
        self.ttl = ttl
        self.keys: dict[str, tuple[str, int, float]] = {}
        self.revision = 0

    def live(self) -> dict[str, tuple[str, int, float]]:
        self.keys = {k: v for k, v in self.keys.items() if self.clock() < v[2]}
        return self.keys

    def write(self, key: str, value: str) -> int:
        self.revision += 1
        expires = self.clock() + self.ttl if self.ttl is not None else float("inf")
        self.keys[key] = (value, self.revision, expires)
        return self.revision

    def checked_write(self, key: str, value: str, revision: int | None) -> int | None:
        current = self.live().get(key)
        if (current[1] if current is not None else None) != revision:
            return None
        return self.write(key, value)

    def checked_delete(self, key: str, revision: int) -> None:
        current = self.live().get(key)
        if current is None or current[1] != revision:
            raise ValueError("wrong last sequence")
        del self.keys[key]


class Buckets:
    def __init__(self, clock: Monotonic, ttl: float) -> None:
        self.heartbeats = Bucket(clock, ttl)
        self.owners = Bucket(clock, None)


class Store:
    def __init__(self, buckets: Buckets) -> None:
        self.buckets = buckets
        self.fail = False
        self.replica_reads = 0
        self.full_reads = 0

    async def heartbeat(self, replica_id: str, revision: int | None) -> int | None:
        if self.fail:
            raise ConnectionError("nats down")
        return self.buckets.heartbeats.checked_write(replica_id, "", revision)

    async def replicas(self) -> frozenset[str]:
        self.replica_reads += 1
        return frozenset(self.buckets.heartbeats.live())

    async def view(self) -> LeaseView:
        self.full_reads += 1
        replicas = frozenset(self.buckets.heartbeats.live())
        owners = {
            int(k.split(".")[1]): OwnerKey(value, revision)
            for k, (value, revision, _) in self.buckets.owners.live().items()
        }
        return LeaseView(replicas, owners)

    async def claim(self, partition: int, replica_id: str, revision: int | None) -> int | None:
        return self.buckets.owners.checked_write(f"partition.{partition}", replica_id, revision)

    async def release(self, partition: int, revision: int) -> None:
        self.buckets.owners.checked_delete(f"partition.{partition}", revision)

    async def leave(self, replica_id: str, revision: int) -> None:
        self.buckets.heartbeats.checked_delete(replica_id, revision)


class Listener:
    def __init__(self) -> None:
        self.gains: list[int] = []
        self.lost_partitions: list[int] = []
        self.released: list[int] = []
        self.resumed_partitions: list[int] = []

    async def gained(self, partition: int) -> None:
        self.gains.append(partition)

    async def releasing(self, partition: int) -> None:
        self.released.append(partition)

    def lost(self, partition: int) -> None:
        self.lost_partitions.append(partition)

    def resumed(self, partition: int) -> None:
        self.resumed_partitions.append(partition)


def replica(name: str, bucket: Buckets, clock: Monotonic) -> tuple[Ownership, Listener, Store]:
    listener = Listener()
    store = Store(bucket)
    return Ownership(name, 16, store, listener, clock, ttl_s=1.5, renew_every_s=0.5), listener, store


async def run_for(seconds: float, clock: Monotonic, *owners: Ownership) -> None:
    steps = round(seconds / 0.1)
    for _ in range(steps):
        clock.now += 0.1
        for owner in owners:
            await owner.step()


async def test_a_lone_replica_owns_everything_and_shares_when_another_arrives():
    clock = Monotonic()
    bucket = Buckets(clock, 1.5)
    a, a_events, _ = replica("a", bucket, clock)
    await run_for(0.2, clock, a)
    assert a.owned_partitions() == list(range(16))
    b, _, _ = replica("b", bucket, clock)
    await run_for(1.0, clock, a, b)
    assert len(a.owned_partitions()) == 8
    assert len(b.owned_partitions()) == 8
    assert set(a.owned_partitions()).isdisjoint(b.owned_partitions())
    assert len(a_events.released) == 8


async def test_a_dead_replicas_partitions_move_once_its_leases_expire():
    clock = Monotonic()
    bucket = Buckets(clock, 1.5)
    a, _, _ = replica("a", bucket, clock)
    b, _, _ = replica("b", bucket, clock)
    await run_for(1.0, clock, a, b)
    orphaned = set(b.owned_partitions())
    died_at = clock.now
    taken_at = None
    for _ in range(40):  # b is dead: only a runs
        await run_for(0.1, clock, a)
        if orphaned <= set(a.owned_partitions()):
            taken_at = clock.now
            break
    assert taken_at is not None
    assert taken_at - died_at <= 1.5 + 0.2


async def test_a_replica_that_cannot_renew_stops_owning_before_its_lease_can_expire():
    clock = Monotonic()
    bucket = Buckets(clock, 1.5)
    a, events, store = replica("a", bucket, clock)
    await run_for(0.2, clock, a)
    store.fail = True
    await run_for(1.3, clock, a)
    assert a.owned_partitions() == []
    assert sorted(a.suspended) == list(range(16))  # not served, but their lots stay loaded
    assert events.lost_partitions == []


async def slipped(name: str) -> tuple[Ownership, Listener, Store, Buckets, Monotonic]:
    """A replica that owned everything, then could not write its heartbeat for 1.2 s (now failing)."""
    clock = Monotonic()
    bucket = Buckets(clock, 1.5)
    owner, events, store = replica(name, bucket, clock)
    await run_for(0.2, clock, owner)
    store.fail = True
    await run_for(1.2, clock, owner)
    assert owner.owned_partitions() == []
    return owner, events, store, bucket, clock


async def test_a_replica_whose_heartbeat_slipped_resumes_untouched_partitions_without_reloading_them():
    a, events, store, _, clock = await slipped("a")
    store.fail = False
    await run_for(0.6, clock, a)
    assert a.owned_partitions() == list(range(16))
    assert not a.suspended
    assert sorted(events.gains) == list(range(16))  # gained once, at the start: nothing was reloaded
    assert events.lost_partitions == []
    assert sorted(events.resumed_partitions) == list(range(16))  # their timers are set again


async def test_a_partition_claimed_by_another_replica_during_a_slip_is_lost_for_good():
    a, events, store, bucket, clock = await slipped("a")
    bucket.heartbeats.write("b", "")
    revision = bucket.owners.keys["partition.5"][1]
    bucket.owners.checked_write("partition.5", "b", revision)
    store.fail = False
    await run_for(0.6, clock, a)
    assert 5 not in a.owned_partitions()
    assert 5 in events.lost_partitions
    assert not a.suspended


async def test_a_round_costs_one_heartbeat_write_whatever_the_partition_count():
    clock = Monotonic()
    bucket = Buckets(clock, 1.5)
    a, _, _ = replica("a", bucket, clock)
    await run_for(0.2, clock, a)
    owners_written, heartbeats_written = bucket.owners.revision, bucket.heartbeats.revision
    await run_for(3.0, clock, a)
    assert bucket.owners.revision == owners_written  # nothing per partition once claimed
    assert bucket.heartbeats.revision - heartbeats_written == 6  # one every 0.5 s


async def test_a_partition_whose_owner_key_names_another_replica_is_dropped():
    clock = Monotonic()
    bucket = Buckets(clock, 1.5)
    a, events, _ = replica("a", bucket, clock)
    await run_for(0.2, clock, a)
    bucket.heartbeats.write("intruder", "")
    bucket.owners.write("partition.3", "intruder")
    await run_for(0.1, clock, a)
    assert 3 not in a.owned_partitions()
    assert 3 in events.lost_partitions


async def test_a_replica_whose_heartbeat_expired_while_stalled_steps_back_and_claims_again():
    clock = Monotonic()
    bucket = Buckets(clock, 1.5)
    a, events, _ = replica("a", bucket, clock)
    await run_for(0.2, clock, a)
    clock.now += 2.0  # a stalled: its heartbeat expired meanwhile
    b, _, _ = replica("b", bucket, clock)
    await run_for(0.1, clock, b)  # b saw a dead and took everything
    assert b.owned_partitions() == list(range(16))
    await run_for(0.1, clock, a)
    assert sorted(events.lost_partitions) == list(range(16))
    await run_for(1.5, clock, a, b)
    assert len(a.owned_partitions()) == 8
    assert set(a.owned_partitions()).isdisjoint(b.owned_partitions())


async def test_a_replica_restarted_under_the_same_id_takes_its_partitions_back():
    clock = Monotonic()
    bucket = Buckets(clock, 1.5)
    first, _, _ = replica("a", bucket, clock)
    await run_for(0.2, clock, first)
    clock.now += 2.0  # killed; restarted once its heartbeat expired
    again, events, _ = replica("a", bucket, clock)
    await run_for(0.1, clock, again)
    assert again.owned_partitions() == list(range(16))
    assert sorted(events.gains) == list(range(16))


async def test_a_release_that_failed_is_retried_so_the_partition_is_not_stranded():
    clock = Monotonic()
    bucket = Buckets(clock, 1.5)
    a, _, a_store = replica("a", bucket, clock)
    await run_for(0.2, clock, a)
    failing_release = a_store.release

    async def fail_once(partition: int, revision: int) -> None:
        a_store.release = failing_release  # type: ignore[method-assign]
        raise ConnectionError("nats down")

    a_store.release = fail_once  # type: ignore[method-assign]
    b, _, _ = replica("b", bucket, clock)
    await run_for(1.0, clock, a, b)
    assert len(a.owned_partitions()) == 8
    assert len(b.owned_partitions()) == 8
    assert set(a.owned_partitions()) | set(b.owned_partitions()) == set(range(16))


async def test_release_all_hands_everything_back_and_leaves():
    clock = Monotonic()
    bucket = Buckets(clock, 1.5)
    a, _, _ = replica("a", bucket, clock)
    await run_for(0.2, clock, a)
    await a.release_all()
    assert a.owned_partitions() == []
    view = await Store(bucket).view()
    assert not view.owners
    assert not view.replicas


async def test_the_heartbeat_keeps_its_pace_while_a_read_of_the_buckets_is_stuck():
    import time

    buckets = Buckets(Monotonic(), 1.0)
    buckets.heartbeats.clock = time.monotonic  # real time: `run` sleeps for real
    buckets.owners.clock = time.monotonic
    store = Store(buckets)
    view = store.view
    reads = {"count": 0}
    stuck, released = asyncio.Event(), asyncio.Event()

    async def stuck_view() -> LeaseView:
        reads["count"] += 1
        if reads["count"] == 2:
            stuck.set()
            await released.wait()  # the planning round hangs until the test lets it go
        return await view()

    beat = store.heartbeat
    beats_while_stuck = {"count": 0}
    enough_beats = asyncio.Event()

    async def counted_beat(replica_id: str, revision: int | None) -> int | None:
        if stuck.is_set():
            beats_while_stuck["count"] += 1
            if beats_while_stuck["count"] >= 25:  # 25 x 0.05 s: longer than the 1 s TTL
                enough_beats.set()
        return await beat(replica_id, revision)

    store.view = stuck_view  # type: ignore[method-assign]
    store.heartbeat = counted_beat  # type: ignore[method-assign]
    owner = Ownership(
        "a", 4, store, Listener(), time.monotonic, ttl_s=1.0, renew_every_s=0.05, check_every_s=0.02, margin_s=0.2
    )
    running = asyncio.create_task(owner.run())
    try:
        await asyncio.wait_for(stuck.wait(), 5)
        await asyncio.wait_for(enough_beats.wait(), 10)
        assert owner.owned_partitions() == [0, 1, 2, 3]  # over a TTL later, still alive and owning
        released.set()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def settling_replica(name: str, bucket: Buckets, clock: Monotonic) -> tuple[Ownership, Store]:
    store = Store(bucket)
    owner = Ownership(name, 16, store, Listener(), clock, ttl_s=1.5, renew_every_s=0.5, refresh_owners_every_s=60)
    return owner, store


async def test_a_settled_replica_reads_only_the_heartbeats_until_the_live_replicas_change():
    clock = Monotonic()
    bucket = Buckets(clock, 1.5)
    a, a_store = settling_replica("a", bucket, clock)
    await run_for(0.3, clock, a)  # claims all 16, then reads them back: settled
    settled_reads = a_store.full_reads
    await run_for(1.0, clock, a)
    assert a_store.full_reads == settled_reads
    assert a.owned_partitions() == list(range(16))

    b, b_store = settling_replica("b", bucket, clock)
    await run_for(1.0, clock, a, b)  # a sees b's heartbeat, reads the keys, hands 8 over
    assert len(a.owned_partitions()) == len(b.owned_partitions()) == 8
    settled_reads = a_store.full_reads, b_store.full_reads
    await run_for(1.0, clock, a, b)
    assert (a_store.full_reads, b_store.full_reads) == settled_reads


async def test_a_dead_replicas_partitions_still_move_when_the_survivor_was_settled():
    clock = Monotonic()
    bucket = Buckets(clock, 1.5)
    a, _ = settling_replica("a", bucket, clock)
    b, _ = settling_replica("b", bucket, clock)
    await run_for(2.0, clock, a, b)
    assert len(a.owned_partitions()) == 8

    await run_for(1.6 + 0.2, clock, a)  # b stops beating: its heartbeat expires after the TTL
    assert a.owned_partitions() == list(range(16))


async def test_a_settled_replica_still_rereads_the_owner_keys_now_and_then():
    clock = Monotonic()
    bucket = Buckets(clock, 1.5)
    store = Store(bucket)
    owner = Ownership("a", 4, store, Listener(), clock, ttl_s=1.5, renew_every_s=0.5, refresh_owners_every_s=1.0)
    await run_for(0.3, clock, owner)
    reads = store.full_reads
    await run_for(2.0, clock, owner)
    assert store.full_reads == reads + 2  # once a second, however settled


def reporting_replica(name: str, bucket: Buckets, clock: Monotonic) -> tuple[Ownership, Store, list[tuple[bool, str]]]:
    store = Store(bucket)
    statuses: list[tuple[bool, str]] = []
    owner = Ownership(
        name, 16, store, Listener(), clock, ttl_s=1.5, renew_every_s=0.5, on_status=lambda *s: statuses.append(s)
    )
    return owner, store, statuses


async def test_readiness_holds_while_the_replica_renews_its_heartbeat_and_holds_its_share():
    clock = Monotonic()
    bucket = Buckets(clock, 1.5)
    a, store, statuses = reporting_replica("a", bucket, clock)
    await run_for(0.2, clock, a)
    assert a.status == (True, "")
    store.fail = True  # NATS unreachable: the heartbeat cannot be renewed
    await run_for(1.3, clock, a)
    assert a.status[0] is False
    assert "heartbeat" in a.status[1]
    store.fail = False
    await run_for(0.6, clock, a)
    assert a.status == (True, "")
    assert [ok for ok, _ in statuses] == [True, False, True]


async def test_a_replica_that_holds_nothing_while_a_share_is_left_for_it_is_not_ready():
    clock = Monotonic()
    bucket = Buckets(clock, 1.5)
    a, _, _ = reporting_replica("a", bucket, clock)
    await run_for(0.3, clock, a)
    b, _, b_statuses = reporting_replica("b", bucket, clock)
    await b.step()  # a holds everything yet: nothing is free for b in its first round
    assert b.status == (False, "holds no partition yet")
    await run_for(1.0, clock, a, b)
    assert b.status == (True, "")
    assert b_statuses[-1] == (True, "")


async def test_a_replica_beyond_the_partition_count_is_ready_with_none():
    clock = Monotonic()
    bucket = Buckets(clock, 1.5)
    owners = [Ownership(f"r{i}", 2, Store(bucket), Listener(), clock, ttl_s=1.5, renew_every_s=0.5) for i in range(3)]
    await run_for(1.0, clock, *owners)
    assert sorted(len(o.owned_partitions()) for o in owners) == [0, 1, 1]
    assert all(o.status == (True, "") for o in owners)
