"""The room's own settings (the kit's Settings covers what every service shares)."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass

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
    forward_timeout_s: float
    catalog_calls: bool  # False: never call the catalog (tests without one)

    @property
    def renew_every_s(self) -> float:
        return self.lease_ttl_s / 3


def load(environ: Mapping[str, str] | None = None) -> RoomSettings:
    env = os.environ if environ is None else environ
    replica_id = _UNSAFE.sub("-", env.get("GAVEL_ROOM_REPLICA_ID") or default_replica_id())
    partitions = int(env.get("GAVEL_ROOM_PARTITIONS") or DEFAULT_PARTITIONS)
    if not 1 <= partitions <= 4096:
        raise ValueError("GAVEL_ROOM_PARTITIONS must be between 1 and 4096")
    return RoomSettings(
        replica_id=replica_id,
        partitions=partitions,
        lease_ttl_s=float(env.get("GAVEL_ROOM_LEASE_TTL_S") or 1.5),
        closing_soon_ms=int(float(env.get("GAVEL_ROOM_CLOSING_SOON_S") or 60) * 1000),
        max_in_flight=int(env.get("GAVEL_ROOM_MAX_IN_FLIGHT") or 64),
        forward_timeout_s=float(env.get("GAVEL_ROOM_FORWARD_TIMEOUT_S") or 5),
        catalog_calls=(env.get("GAVEL_ROOM_CATALOG_CALLS") or "true").lower() not in ("0", "false", "no", "off"),
    )
