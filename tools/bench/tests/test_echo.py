"""The echo ceiling is a real measurement on loopback."""

from __future__ import annotations

from gavel_bench.echo import measure_echo_ceiling


def test_the_echo_ceiling_measures_calls_on_loopback() -> None:
    result = measure_echo_ceiling(
        processes=1, concurrency=4, duration_s=0.5, payload=b"x" * 100, metadata=(("authorization", "Bearer t"),)
    )
    assert result.rps > 0
    assert result.calls > 0
    assert result.latency_ms["p50"] is not None
