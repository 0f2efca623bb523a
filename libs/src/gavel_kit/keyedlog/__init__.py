"""A keyed state machine on a fenced, group-committed JetStream log (docs/event-log.md).

The log machinery every event-sourced service shares (the room's lots, the tender book's lots):
`KeyedLog` decides commands in memory per key and makes them durable in groups, one writer per
partition; `JetStreamLogStore` is its store on JetStream (`LogLayout` names the streams and
subjects); `KeyHistory` reads one key's history back; `MemoryLogStore` follows JetStream's rules
in memory for unit tests. The engine is the service's: `KeyedEngine`.
"""

from gavel_kit.keyedlog.engine import Accept, KeyedEngine, Refuse, Reply
from gavel_kit.keyedlog.machine import (
    Committed,
    KeyedLog,
    LogConfig,
    LogCorrupt,
    LogStats,
    NotOwner,
    request_id_reused,
    stable_partition,
)

__all__ = [
    "Accept",
    "Committed",
    "KeyedEngine",
    "KeyedLog",
    "LogConfig",
    "LogCorrupt",
    "LogStats",
    "NotOwner",
    "Refuse",
    "Reply",
    "request_id_reused",
    "stable_partition",
]
