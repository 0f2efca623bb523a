"""The room's own Prometheus metrics (besides the kit's per-RPC ones), on the service's metrics port."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

APPENDS = Counter(
    "gavel_room_appends_total",
    "Batches appended to lots' logs, by outcome (stored, conflict: another writer, unconfirmed)",
    ["outcome"],
)
APPEND_SECONDS = Histogram(
    "gavel_room_append_seconds",
    "Time from publishing a batch to its JetStream acknowledgement",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
FORWARDED = Counter(
    "gavel_room_forwarded_calls_total",
    "Calls forwarded to the owner of their lot's partition, by outcome (answered, no_owner, timeout)",
    ["outcome"],
)
OWNED_PARTITIONS = Gauge("gavel_room_owned_partitions", "Partitions this replica holds a lease on")
LOADED_LOTS = Gauge("gavel_room_loaded_lots", "Lots in this replica's memory")
WATCHED_LOTS = Gauge("gavel_room_watched_lots", "Lots with a watch feed on this replica")
WATCH_STREAMS = Gauge("gavel_room_watch_streams", "Watch calls this replica is streaming to right now")


def track(gauge: Gauge, read: Callable[[], float]) -> None:
    gauge.set_function(read)


CATALOG_CLOSES = Counter(
    "gavel_room_catalog_closes_total",
    "Lot outcomes reported to the catalog, by result (recorded; refused: the catalog said no — an "
    "alert, the report is retried; invalid: the room's own record is incomplete, e.g. no hammer price; "
    "failed: the catalog could not be reached, retried)",
    ["result"],
)
FOLLOWER_STOPS = Counter(
    "gavel_room_follower_stops_total",
    "Times a per-replica event follower stopped at an event it cannot read (an alert)",
    ["follower"],
)
WAKE_FAILURES = Counter(
    "gavel_room_wake_failures_total", "Due lot wake-ups (deadline ticks) that failed and were retried"
)
ANNOUNCE_FAILURES = Counter(
    "gavel_room_announce_failures_total", "Announcements to watchers that could not be published (retried)"
)
