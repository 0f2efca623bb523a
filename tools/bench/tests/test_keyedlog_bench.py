"""`gavel bench keyedlog` drives the shared log for real (a tiny smoke run, not a measurement)."""

from __future__ import annotations

import asyncio
import os

import pytest

from gavel_bench import keyedlog
from gavel_bench.cpu import Tracked

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("layout", ["writers", "partitions"])
def test_a_short_run_reports_every_run_and_finds_every_answered_bid_in_the_log(nats_server, layout) -> None:
    tracked = [Tracked("nats-server", nats_server.process.pid), Tracked("bench", os.getpid())]
    rows, audit = asyncio.run(
        keyedlog.measure(
            nats_server.url,
            (300.0,),
            (300.0,),
            0.3,
            20,
            4,
            2,
            tracked,
            say=lambda _: None,
            warmup_s=0.1,
            layout=layout,
        )
    )
    assert [row["run"] for row in rows] == ["spread-300", "hot-300"]
    for row in rows:
        assert row["accepted"] > 0
        assert row["errors"] == {}
        assert row["decisions_per_append"] >= 1
        assert row["latency_ms"]["p99"] is not None
    assert audit["acknowledged"] == sum(row["accepted"] for row in rows)
    assert audit["lost"] == 0
