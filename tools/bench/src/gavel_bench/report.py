"""Writing a run's results: the JSON summary and the PNG plot."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# The fields every run's JSON has (the matrix table and the tests rely on them).
REQUIRED_FIELDS = (
    "rooms",
    "watchers_per_room",
    "target_rate",
    "bids_per_s",
    "bids_acknowledged",
    "bids_lost",
    "bids_duplicated",
    "bid_rpc_ms",
    "fanout_ms",
    "failover_s",
    "echo_ceiling_rps",
    "machine",
    "started_at",
    "command",
)


def write_json(path: Path, result: Mapping[str, Any]) -> None:
    missing = [name for name in REQUIRED_FIELDS if name not in result]
    if missing:
        raise ValueError(f"the result lacks {', '.join(missing)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")


def _percentile_x(percentile: float) -> float:
    """Plot percentiles on a 'nines' axis: 90 % → 1, 99 % → 2, 99.9 % → 3."""
    return -math.log10(max(1e-6, 1 - percentile / 100))


def write_plot(
    path: Path,
    title: str,
    distributions: Mapping[str, Sequence[tuple[float, float]]],
    per_second: Sequence[Mapping[str, Any]],
    markers: Sequence[tuple[float, str]] = (),
    window_s: float | None = None,
) -> None:
    """Top: latency by percentile for each named distribution. Bottom: throughput per second of the
    run (sent, acknowledged, refused, errors; watcher deliveries on the right axis), with vertical
    markers (kills, ramp steps) and the end of the measured window."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency_axes, rate_axes) = plt.subplots(2, 1, figsize=(11, 9))
    figure.suptitle(title, fontsize=11)
    ticks = [0.0, 50.0, 90.0, 99.0, 99.9, 99.99, 99.999]
    for name, points in distributions.items():
        if points:
            latency_axes.plot([_percentile_x(p) for p, _ in points], [ms for _, ms in points], marker=".", label=name)
    latency_axes.set_xticks([_percentile_x(p) for p in ticks], [f"{p:g} %" for p in ticks])
    latency_axes.set_yscale("log")
    latency_axes.set_xlabel("percentile")
    latency_axes.set_ylabel("latency (ms, log scale)")
    latency_axes.grid(True, which="both", alpha=0.3)
    latency_axes.legend(loc="upper left")
    latency_axes.set_title("latency distribution")

    seconds = [row["second"] for row in per_second]
    for key, label in (
        ("sent", "sent"),
        ("acked", "acknowledged"),
        ("rejected", "refused (too low)"),
        ("errors", "errors"),
    ):
        rate_axes.plot(seconds, [row[key] for row in per_second], label=f"{label} bids/s")
    rate_axes.set_xlabel("seconds since the measured window started")
    rate_axes.set_ylabel("bids per second")
    rate_axes.grid(True, alpha=0.3)
    deliveries = [row["deliveries"] for row in per_second]
    if any(deliveries):
        watcher_axes = rate_axes.twinx()
        watcher_axes.plot(seconds, deliveries, linestyle="--", color="grey", label="watcher deliveries/s")
        watcher_axes.set_ylabel("watcher deliveries per second")
        watcher_axes.legend(loc="upper right")
    for at, label in markers:
        rate_axes.axvline(at, color="red", alpha=0.4, linestyle=":")
        rate_axes.annotate(label, (at, 0), rotation=90, fontsize=7, color="red", va="bottom")
    if window_s is not None:
        rate_axes.axvline(window_s, color="black", alpha=0.5, linestyle="--")
    rate_axes.legend(loc="upper left")
    rate_axes.set_title("throughput over time")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
