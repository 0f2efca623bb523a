"""The room's own settings: the kit's service options (`GAVEL_ROOM_<NAME>`), typed and checked."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass

from gavel_kit.settings import Settings
from room.app.partitions import DEFAULT_PARTITIONS

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def default_replica_id() -> str:
    """hostname-pid: unique among live processes, and a valid NATS subject token / KV key."""
    return _UNSAFE.sub("-", f"{socket.gethostname()}-{os.getpid()}")


@dataclass(frozen=True, slots=True)
class RoomSettings:
    replica_id: str
    partitions: int
    lease_ttl_s: float
    closing_soon_ms: int
    max_in_flight: int
    max_pending: int
    forward_timeout_s: float
    catalog_calls: bool  # False: never call the catalog (tests without one)
    projections: bool = True  # False: a separate `room.main project` process writes the reports
    watch_tail_check_ms: int = 10_000  # quiet open lots' feeds check the log's tail this often
    watcher_limit: int = 10_000  # batches a Watch stream may lag before it is cut off (RESOURCE_EXHAUSTED)

    @property
    def renew_every_s(self) -> float:
        return self.lease_ttl_s / 3


def from_kit(settings: Settings) -> RoomSettings:
    """GAVEL_ROOM_REPLICA_ID, _PARTITIONS, _LEASE_TTL_S, _CLOSING_SOON_S, _MAX_IN_FLIGHT,
    _MAX_PENDING, _FORWARD_TIMEOUT_S, _CATALOG_CALLS, _PROJECTIONS, _WATCH_TAIL_CHECK_S, _WATCHER_LIMIT
    (docs/room-service.md)."""
    partitions = int(settings.option("PARTITIONS", str(DEFAULT_PARTITIONS)))
    if not 1 <= partitions <= 4096:
        raise ValueError("GAVEL_ROOM_PARTITIONS must be between 1 and 4096")
    lease_ttl_s = float(settings.option("LEASE_TTL_S", "1.2"))
    if not 0.3 <= lease_ttl_s <= 60:
        raise ValueError("GAVEL_ROOM_LEASE_TTL_S must be between 0.3 and 60 seconds")
    return RoomSettings(
        replica_id=_UNSAFE.sub("-", settings.option("REPLICA_ID", "") or default_replica_id()),
        partitions=partitions,
        lease_ttl_s=lease_ttl_s,
        closing_soon_ms=int(float(settings.option("CLOSING_SOON_S", "60")) * 1000),
        max_in_flight=int(settings.option("MAX_IN_FLIGHT", "256")),
        max_pending=int(settings.option("MAX_PENDING", "2000")),
        forward_timeout_s=float(settings.option("FORWARD_TIMEOUT_S", "5")),
        catalog_calls=_enabled(settings.option("CATALOG_CALLS", "true")),
        projections=_enabled(settings.option("PROJECTIONS", "true")),
        watch_tail_check_ms=int(float(settings.option("WATCH_TAIL_CHECK_S", "10")) * 1000),
        watcher_limit=int(settings.option("WATCHER_LIMIT", "10000")),
    )


def _enabled(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off")
