"""Prometheus metrics of a keyed log, read from its counters when scraped: nothing on the hot path.

register_metrics(log, "room")   # gavel_keyedlog_*{log="room"} on the process's /metrics
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from gavel_kit.keyedlog.machine import LogStats

DESCRIPTIONS = {
    "decisions": "commands decided (retries answered from receipts included)",
    "accepted": "commands accepted (an entry appended)",
    "refused": "commands refused by the engine",
    "appends": "appends (group commits) sent",
    "messages": "partition parts sent (one per partition per append)",
    "entries": "entries sent",
    "bytes": "bytes of partition parts sent",
    "fenced": "partition parts refused because another writer owns the partition",
    "retried": "partition parts sent again (unconfirmed or refused with the batch)",
    "rebuilt": "partitions rebuilt from their log",
    "checkpoints": "partition checkpoints written",
    "snapshots": "key snapshots written",
    "receipts_evicted_early": "receipts evicted by the count bound inside the dedupe window",
}


class _LogCollector(Collector):
    def __init__(self, log: Any, name: str) -> None:
        self._log = log
        self._name = name

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats: LogStats = self._log.stats
        for item in fields(stats):
            family = CounterMetricFamily(
                f"gavel_keyedlog_{item.name}", DESCRIPTIONS.get(item.name, item.name), labels=["log"]
            )
            family.add_metric([self._name], getattr(stats, item.name))
            yield family
        pending = GaugeMetricFamily("gavel_keyedlog_pending", "commands not yet answered", labels=["log"])
        pending.add_metric([self._name], self._log.pending)
        yield pending


def register_metrics(log: Any, name: str, registry: CollectorRegistry = REGISTRY) -> Collector:
    """Expose `log`'s counters as gavel_keyedlog_*{log=name}; returns the collector (to unregister)."""
    collector = _LogCollector(log, name)
    registry.register(collector)
    return collector
