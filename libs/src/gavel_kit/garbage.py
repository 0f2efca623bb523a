"""Python's cyclic garbage collector in a long-running service: rarer full walks, and measured.

A full (generation 2) collection walks every tracked object while holding the GIL: no thread of
the process runs meanwhile — not the event loop answering bids, not the lease thread keeping the
heartbeat. Measured in a room replica holding 10,000 open lots with 5 watchers each: with
CPython's default thresholds (700, 10, 10) a full collection ran every 3-5 s while lots were being
opened, each 150-660 ms long and finding at most a few hundred objects of garbage; every one of
them stalled the bids in flight, and a long one let the replica's heartbeat lapse.

So every service process:

- sets the thresholds from `GAVEL_GC_THRESHOLDS` (settings.DEFAULT_GC_THRESHOLDS): young
  collections after 2,000 net allocations instead of 700 (a middle collection then walks at most
  ~20,000 objects; with 10,000 one took 100 ms), and a full collection considered only every
  2,000 x 10 x 100 net allocations instead of 70,000 — CPython adds its own condition that the
  long-lived objects grew by a quarter since the last full walk. A service's garbage is almost
  all freed by reference counting; cycles (tracebacks, futures) mostly die young and are caught by
  the young collections;
- (the gRPC services) freezes what start-up built, `gc.freeze()` once the service serves:
  modules, descriptors, metadata, connections, so later full collections do not walk them again;
- measures every collection: `gavel_gc_pause_seconds{generation}`, and a warning for each pause
  of `LONG_PAUSE_S` or more.
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any

from prometheus_client import Histogram

from gavel_kit.logging import get_logger
from gavel_kit.settings import DEFAULT_GC_THRESHOLDS, parse_gc_thresholds

log = get_logger("gavel.gc")

LONG_PAUSE_S = 0.1

PAUSES = Histogram(
    "gavel_gc_pause_seconds",
    "Time the cyclic garbage collector held the process, by generation collected",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
_BY_GENERATION = [PAUSES.labels(str(generation)) for generation in range(3)]


class _PauseClock:
    """gc.callbacks hook: the collector calls it at the start and the stop of every collection."""

    def __init__(self) -> None:
        self._started: float | None = None

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        if self._started is None:
            return
        elapsed = time.perf_counter() - self._started
        self._started = None
        generation = info.get("generation", 2)
        _BY_GENERATION[generation].observe(elapsed)
        if elapsed >= LONG_PAUSE_S:
            log.warning(
                "long garbage-collection pause",
                generation=generation,
                ms=round(elapsed * 1000, 1),
                collected=info.get("collected"),
                frozen_objects=gc.get_freeze_count(),
            )


_CLOCK = _PauseClock()


def configure(thresholds: tuple[int, int, int] | None) -> None:
    """Set the thresholds (None: CPython's own) and measure every collection (idempotent)."""
    _set_thresholds(thresholds)
    if _CLOCK not in gc.callbacks:
        gc.callbacks.append(_CLOCK)


def set_thresholds_from_environment() -> None:
    """The services' thresholds (`GAVEL_GC_THRESHOLDS`) for processes without service settings:
    the benchmark's clients and echo server, whose own pauses would otherwise count as the room's."""
    _set_thresholds(parse_gc_thresholds(os.environ.get("GAVEL_GC_THRESHOLDS", DEFAULT_GC_THRESHOLDS)))


def _set_thresholds(thresholds: tuple[int, int, int] | None) -> None:
    if thresholds is not None:
        gc.set_threshold(*thresholds)


def freeze_start_up() -> None:
    """Move everything alive now out of the collector's reach: call once start-up is done."""
    gc.collect()  # what start-up left as garbage goes now, before it would be frozen for good
    gc.freeze()
    log.info("start-up heap frozen", frozen_objects=gc.get_freeze_count())
