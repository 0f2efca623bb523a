"""The failover run: SIGKILL a room replica on a period, and measure how long its lots stalled.

Before each kill the benchmark reads the partition owners (JetStream KV buckets ROOM_OWNERS,
`partition.<n>` → holder, and ROOM_REPLICAS, the heartbeats) to learn which partitions the victim
owns: those are the partitions that must move. It then SIGKILLs the replica and starts it again at
once under the same replica id (it rejoins and takes a fair share back once its old heartbeat has
expired).

failover_s of a kill is the longest gap between consecutive acknowledged bids (client wall clock
at the answer) on the lots of the moved partitions, from the last acknowledgement before the kill
until the next kill (or the end of the window). At the load used (hundreds of bids/s over a few
dozen partitions) such a merged stream normally has gaps of milliseconds, so the longest gap is
the time bids on those lots could not be acknowledged: lease expiry, claim, lot reload from the
log, and the client's retry backoff (UNAVAILABLE, retried with the same request id).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from gavel_bench.access import connect_nats
from gavel_kit.leases import ExpiringKeys
from room.adapters.leases import ACTIVE_BUCKET, ACTIVE_TTL_S, PARTITION_COUNT_KEY, KvLeaseStore
from room.app.partitions import DEFAULT_PARTITIONS, partition_of


@dataclass(frozen=True)
class Kill:
    at: float  # wall clock, just before the SIGKILL
    replica_id: str
    partitions: tuple[int, ...]  # what the victim held


@dataclass(frozen=True)
class LeaseSnapshot:
    partition_count: int
    holders: dict[int, str]  # partition → replica id

    def held_by(self, replica_id: str) -> tuple[int, ...]:
        return tuple(sorted(p for p, holder in self.holders.items() if holder == replica_id))

    def share(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for holder in self.holders.values():
            counts[holder] = counts.get(holder, 0) + 1
        return counts


async def read_leases(nats_url: str) -> LeaseSnapshot:
    nc = await connect_nats(nats_url, connect_timeout=10, max_reconnect_attempts=3, name="gavel-bench-leases")
    try:
        js = nc.jetstream()
        holders = await KvLeaseStore(nc, js, 1.2).holders()  # the buckets exist: the TTL given is unused
        active = ExpiringKeys(nc, js, ACTIVE_BUCKET, ACTIVE_TTL_S)
        recorded = (await active.entries(PARTITION_COUNT_KEY)).get(PARTITION_COUNT_KEY)
        count = int(recorded.value) if recorded is not None else DEFAULT_PARTITIONS
    finally:
        await nc.close()
    return LeaseSnapshot(count, holders)


def longest_gap(times: Sequence[float], since: float, until: float) -> float | None:
    """The longest gap between consecutive instants, starting from the last one at or before
    `since` and ending at `until` (a stall still running at `until` counts up to it)."""
    ordered = sorted(times)
    before = [t for t in ordered if t <= since]
    if not before:
        return None
    points = [before[-1], *(t for t in ordered if since < t <= until)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(points)]
    if points[-1] < until:
        gaps.append(until - points[-1])  # nothing acknowledged since: the stall lasted at least this long
    return max(gaps) if gaps else None


def failover_gaps(
    kills: Sequence[Kill],
    ack_times: Mapping[str, Sequence[float]],
    partition_count: int,
    window_end: float,
) -> list[float | None]:
    """failover_s of each kill (None when the moved partitions had no acknowledged bid before it)."""
    lot_partition: Callable[[str], int] = lambda lot_id: partition_of(lot_id, partition_count)  # noqa: E731
    gaps: list[float | None] = []
    for number, kill in enumerate(kills):
        moved = set(kill.partitions)
        times = [t for lot_id, stamps in ack_times.items() if lot_partition(lot_id) in moved for t in stamps]
        until = kills[number + 1].at if number + 1 < len(kills) else window_end
        gap = longest_gap(times, kill.at, until)
        gaps.append(None if gap is None else round(gap, 3))
    return gaps
