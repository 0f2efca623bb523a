"""Latency histograms (HdrHistogram) in microseconds, reported in milliseconds.

Workers record into their own histograms and ship them to the parent encoded (HdrHistogram's
compressed base64 form), where they are merged: percentiles of merged histograms are exact to the
histogram's precision, unlike averaging the workers' percentiles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 300_000_000  # five minutes: anything slower is clamped there, not dropped
SIGNIFICANT_DIGITS = 3
REPORTED_PERCENTILES = (50.0, 90.0, 99.0, 99.9)
# The x axis of a latency distribution plot: 0 % … 99.999 %.
PLOT_PERCENTILES = (
    0.0,
    10.0,
    25.0,
    50.0,
    75.0,
    90.0,
    95.0,
    97.5,
    99.0,
    99.5,
    99.75,
    99.9,
    99.95,
    99.99,
    99.999,
)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


class Latency:
    """One latency distribution: record seconds, read percentiles in milliseconds."""

    def __init__(self, histogram: HdrHistogram | None = None) -> None:
        self.histogram = histogram if histogram is not None else new_histogram()

    def record_s(self, seconds: float) -> None:
        micros = int(seconds * 1_000_000)
        self.histogram.record_value(min(max(micros, LOWEST_US), HIGHEST_US))

    def record_ms(self, milliseconds: float) -> None:
        self.record_s(milliseconds / 1000)

    @property
    def count(self) -> int:
        return int(self.histogram.get_total_count())

    def percentile_ms(self, percentile: float) -> float | None:
        """The value at `percentile` (0-100) in ms, rounded to 0.01 ms; None when nothing was recorded."""
        if self.count == 0:
            return None
        return round(int(self.histogram.get_value_at_percentile(percentile)) / 1000, 2)

    def max_ms(self) -> float | None:
        return None if self.count == 0 else round(self.histogram.get_max_value() / 1000, 2)

    def mean_ms(self) -> float | None:
        return None if self.count == 0 else round(self.histogram.get_mean_value() / 1000, 2)

    def summary(self, percentiles: Sequence[float] = REPORTED_PERCENTILES) -> dict[str, float | int | None]:
        """{"p50": …, "p90": …, "p99": …, "p99.9": …, "max": …, "mean": …, "count": …} in ms."""
        found: dict[str, float | int | None] = {
            _label(percentile): self.percentile_ms(percentile) for percentile in percentiles
        }
        found["max"] = self.max_ms()
        found["mean"] = self.mean_ms()
        found["count"] = self.count
        return found

    def distribution(self) -> list[tuple[float, float]]:
        """(percentile, ms) pairs along PLOT_PERCENTILES, for plotting."""
        if self.count == 0:
            return []
        return [(p, self.histogram.get_value_at_percentile(p) / 1000) for p in PLOT_PERCENTILES]

    def add(self, other: Latency) -> None:
        if other.count:
            self.histogram.add(other.histogram)

    def encode(self) -> bytes:
        return bytes(self.histogram.encode())

    @classmethod
    def decode(cls, encoded: bytes) -> Latency:
        """The histogram `encode` produced (an empty one for empty input)."""
        if not encoded:
            return cls()
        merged = cls()
        merged.histogram.add(HdrHistogram.decode(encoded))
        return merged

    def take(self) -> bytes:
        """Encode and reset: for interval histograms shipped once per second."""
        if self.count == 0:
            return b""
        encoded = self.encode()
        self.histogram.reset()
        return encoded


def merged(encoded: Iterable[bytes]) -> Latency:
    total = Latency()
    for item in encoded:
        if item:
            total.add(Latency.decode(item))
    return total


def _label(percentile: float) -> str:
    return f"p{percentile:g}"
