"""What a run writes (JSON, PNG), the page the matrix rewrites, and the command line's refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gavel_bench import cli
from gavel_bench.histograms import Latency
from gavel_bench.matrix import ENGINE, GENERATED_HEADING, render, standard_runs, targets
from gavel_bench.report import REQUIRED_FIELDS, write_json, write_plot


def a_result(**changes: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "rooms": 100,
        "watchers_per_room": 5,
        "target_rate": 500.0,
        "bids_per_s": 498.5,
        "bids_acknowledged": 14_955,
        "bids_lost": 0,
        "bids_duplicated": 0,
        "bid_rpc_ms": {"p50": 3.2, "p99": 17.5},
        "fanout_ms": {"p50": 4.1, "p99": 22.0},
        "failover_s": None,
        "echo_ceiling_rps": 4_000.0,
        "machine": {
            "cpu": "Test CPU",
            "logical_cpus": 2,
            "memory_gib": 8.0,
            "os": "Linux",
            "python": "CPython 3.11.7",
            "grpcio": "1",
            "nats_py": "2",
            "nats_server": "v2",
            "load_average_at_start": [0.1, 0.1, 0.1],
        },
        "started_at": "2026-11-23T12:00:00+00:00",
        "command": "gavel bench --rooms 100",
    }
    result.update(changes)
    return result


def test_the_json_has_every_field(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    write_json(path, a_result())
    written = json.loads(path.read_text())
    assert set(REQUIRED_FIELDS) <= set(written)


def test_a_result_missing_a_field_is_not_written(tmp_path: Path) -> None:
    incomplete = a_result()
    del incomplete["bids_lost"]
    with pytest.raises(ValueError, match="bids_lost"):
        write_json(tmp_path / "run.json", incomplete)


def test_the_plot_is_a_png(tmp_path: Path) -> None:
    latency = Latency()
    for ms in (1.0, 2.0, 3.0, 50.0):
        latency.record_ms(ms)
    rows = [{"second": s, "sent": 10, "acked": 9, "rejected": 1, "errors": 0, "deliveries": 45} for s in range(5)]
    path = tmp_path / "run.png"
    write_plot(path, "test", {"PlaceBid": latency.distribution(), "fan-out": []}, rows, [(2.0, "kill")], 5.0)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


EXISTING_PAGE = """# Benchmarks

## Engine alone

The engine prose, kept word for word.

## Where the time goes

A profile written by hand.

## The cluster under load (`gavel bench`, an older date)

Old figures.
"""


def test_the_page_keeps_its_prose_and_replaces_the_generated_section() -> None:
    runs = standard_runs(30)
    rows = [
        (
            ENGINE,
            ".venv/bin/gavel bench-engine",
            {"lots": 1000, "bids_per_second": 210_000, "target_bids_per_second": 200_000, "machine": "x86_64"},
            None,
        ),
        (runs[0], ".venv/bin/gavel bench --rooms 100", a_result(), None),
        (runs[2], ".venv/bin/gavel bench --rooms 10000", None, "exit code 1"),
    ]
    page = render(EXISTING_PAGE, rows, "benchmarks", ".venv/bin/gavel bench matrix --out docs/benchmarks.md")
    assert "The engine prose, kept word for word." in page
    assert "A profile written by hand." in page
    assert "Old figures." not in page
    assert page.count(GENERATED_HEADING) == 1
    assert page.index("## Engine alone") < page.index(GENERATED_HEADING) < page.index("## Where the time goes")
    assert "| 100 rooms | 100 | 5 | 500 | 498.5 | 14,955 | 0 | 0 | 3.2 / 17.5 | 4.1 / 22.0 |" in page
    assert "failed: exit code 1" in page
    assert "Test CPU" in page
    assert ".venv/bin/gavel bench --rooms 100" in page


def test_the_gateway_path_is_refused_until_it_exists(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--via", "gateway"]) == 2
    assert "not available until the gateway WebSocket exists" in capsys.readouterr().err


def test_killing_a_replica_needs_more_than_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--kill-room-replica-every", "5"]) == 2


def test_the_targets_show_the_10000_rooms_below_saturation_when_measured() -> None:
    calm = a_result(rooms=10000, target_rate=250.0, bids_per_s=250.0)

    text = targets({"rooms-10000-sustained": calm})

    assert "below saturation (250 bids/s asked, 250 acknowledged): p99 PlaceBid 17.5 ms, p99 fan-out 22.0 ms" in text
