"""Which partition a lot belongs to, and which partitions a replica should hold.

Lots are sharded over a fixed number of partitions (GAVEL_ROOM_PARTITIONS, default 64):
`partition_of(lot_id) = crc32(utf-8 lot id) mod partitions`. CRC-32 (zlib's, the IEEE polynomial)
is stable across processes, machines and Python versions (unlike `hash()`), cheap, and spreads
UUIDv7 ids evenly. Changing the count remaps lots, so every replica of a deployment must agree
on it (the lease bucket records it and a replica with another count refuses to start).

Ownership is balanced by a fair share: with `n` live replicas each holds at most
`ceil(partitions / n)`. Which partitions a replica prefers is rendezvous (highest-random-weight)
hashing of (replica, partition): every replica ranks the partitions in its own stable order, so a
replica that restarts under the same id tends to get its partitions back and a new replica takes a
spread of partitions from everyone rather than a block from one.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

DEFAULT_PARTITIONS = 64


def partition_of(lot_id: str, partitions: int) -> int:
    """The partition of a lot: crc32 of its id (UTF-8) modulo the partition count."""
    return zlib.crc32(lot_id.encode()) % partitions


def fair_share(partitions: int, live_replicas: int) -> int:
    """The most partitions one replica should hold: ceil(partitions / live replicas)."""
    return -(-partitions // max(1, live_replicas))


def preference(replica_id: str, partition: int) -> int:
    """The replica's rendezvous weight for a partition (higher: preferred)."""
    return zlib.crc32(f"{replica_id}/{partition}".encode())


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do this round: partitions to try to claim (best first) and to hand back."""

    claim: tuple[int, ...]
    release: tuple[int, ...]


def plan(
    replica_id: str,
    partitions: int,
    live_replicas: Collection[str],
    holders: Mapping[int, str],
    owned: Iterable[int],
) -> Plan:
    """Claim free partitions up to the fair share; release the least preferred beyond it.

    `holders` maps each held partition to its holder (as the lease bucket shows it), `owned` is
    what this replica holds now. A replica missing from `live_replicas` (its heartbeat not seen
    yet) still counts itself.
    """
    live = set(live_replicas) | {replica_id}
    share = fair_share(partitions, len(live))
    mine = sorted(owned, key=lambda p: preference(replica_id, p), reverse=True)
    if len(mine) > share:
        return Plan(claim=(), release=tuple(mine[share:]))
    free = [p for p in range(partitions) if p not in holders]
    free.sort(key=lambda p: preference(replica_id, p), reverse=True)
    return Plan(claim=tuple(free[: share - len(mine)]), release=())
