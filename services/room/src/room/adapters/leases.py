"""Partition leases and the active-lot index, in JetStream key-value buckets.

ROOM_PARTITIONS (memory storage, TTL = the lease length, e.g. 1.5 s): `replica.<replica_id>`
heartbeats and `partition.<n>` leases whose value is the holder's replica id.

ROOM_ACTIVE_LOTS (file storage, TTL 100 days, longer than any live lot runs): `p<n>.<lot_id>` for
every lot of partition n that opened and has not ended, written before the batch that opens the
lot is appended and deleted after the batch that ends it. A new owner loads these lots at once so
their deadlines keep firing; every other lot is loaded on first touch. It also records
`config.partitions`, so replicas configured with another partition count refuse to start.
"""

from __future__ import annotations

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType

from gavel_kit.leases import ExpiringKeys
from room.app.ownership import LeaseView

PARTITIONS_BUCKET = "ROOM_PARTITIONS"
ACTIVE_BUCKET = "ROOM_ACTIVE_LOTS"
ACTIVE_TTL_S = 100 * 24 * 3600
PARTITION_COUNT_KEY = "config.partitions"


class KvLeaseStore:
    def __init__(self, nc: Client, js: JetStreamContext, ttl_s: float) -> None:
        self.keys = ExpiringKeys(
            nc, js, PARTITIONS_BUCKET, ttl_s, description="room partition leases and replica heartbeats"
        )

    async def heartbeat(self, replica_id: str) -> None:
        await self.keys.put(f"replica.{replica_id}", b"")

    async def view(self) -> LeaseView:
        replicas: set[str] = set()
        holders: dict[int, str] = {}
        for key, entry in (await self.keys.entries()).items():
            kind, _, name = key.partition(".")
            if kind == "replica":
                replicas.add(name)
            elif kind == "partition" and name.isdigit():
                holders[int(name)] = entry.value.decode()
        return LeaseView(frozenset(replicas), holders)

    async def claim(self, partition: int, replica_id: str) -> int | None:
        return await self.keys.create(f"partition.{partition}", replica_id.encode())

    async def renew(self, partition: int, replica_id: str, revision: int) -> int | None:
        return await self.keys.update(f"partition.{partition}", replica_id.encode(), revision)

    async def release(self, partition: int, revision: int) -> None:
        await self.keys.delete(f"partition.{partition}", revision)


class PartitionCountMismatch(RuntimeError):
    pass


class KvActiveLots:
    def __init__(self, nc: Client, js: JetStreamContext) -> None:
        self.keys = ExpiringKeys(
            nc,
            js,
            ACTIVE_BUCKET,
            ACTIVE_TTL_S,
            storage=StorageType.FILE,
            description="room lots that opened and have not ended, by partition",
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
