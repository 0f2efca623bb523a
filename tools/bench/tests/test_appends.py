"""`gavel bench appends`, per-step ramp CPU, and the appends row of the matrix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gavel_bench import appends
from gavel_bench.cpu import Tracked
from gavel_bench.matrix import APPENDS, results_table
from gavel_bench.runner import StepCpu


def test_the_best_level_is_the_one_with_the_most_appends_per_second() -> None:
    levels = [
        {"in_flight": 1, "appends_per_s": 400.0},
        {"in_flight": 16, "appends_per_s": 1500.0},
        {"in_flight": 64, "appends_per_s": 1500.0},
        {"in_flight": 256, "appends_per_s": 1400.0},
    ]
    best = appends.best_level(levels)
    assert best is not None
    assert best["in_flight"] == 16  # a tie goes to fewer in flight
    assert appends.best_level([]) is None


def test_a_ramp_step_gets_the_cpu_of_the_seconds_it_overlaps() -> None:
    step_cpu = StepCpu([])
    step_cpu.seconds = [
        (100.0, 101.0, {"room": 10.0}),
        (101.0, 102.0, {"room": 50.0}),
        (102.0, 103.0, {"room": 90.0}),
    ]
    assert step_cpu.share(101.0, 103.0) == {"room": 70.0}
    assert step_cpu.share(100.5, 101.5) == {"room": 30.0}  # half of each of two seconds
    assert step_cpu.share(200.0, 210.0) is None


def test_step_cpu_meters_a_real_process_second_by_second() -> None:
    import os
    import time

    step_cpu = StepCpu([Tracked("me", os.getpid())])
    began = time.time()
    step_cpu.poll(began)
    total = 0
    for n in range(300_000):
        total += n * n
    step_cpu.poll(began + 1.0)  # a second has passed (as far as poll knows): the first one closes
    step_cpu.stop(began + 1.5)
    assert total > 0
    assert len(step_cpu.seconds) == 2
    shares = step_cpu.share(began, began + 1.5)
    assert shares is not None
    assert shares["me"] >= 0


def test_the_matrix_row_shows_the_best_appends_per_second_and_links_the_json() -> None:
    result: dict[str, Any] = {
        "subjects": 1000,
        "best_appends_per_s": 1234.5,
        "best_in_flight": 64,
        "levels": [{"in_flight": 64, "appends_per_s": 1234.5, "latency_ms": {"p50": 40.0, "p99": 80.0}}],
    }
    table = results_table([(APPENDS, "gavel bench appends", result, None)], "benchmarks")
    row = table.splitlines()[-1]
    assert "1,234.5 appends/s (64 in flight)" in row
    assert "40.0 / 80.0 (append)" in row
    assert "[json](benchmarks/appends.json)" in row
    assert row.count("|") == table.splitlines()[0].count("|")


@pytest.mark.integration
def test_a_tiny_appends_run_measures_each_level(tmp_path: Path) -> None:
    out = tmp_path / "appends.json"
    code = appends.main(
        ["--in-flight", "1,4", "--seconds", "0.3", "--subjects", "8", "--var-dir", str(tmp_path), "--json", str(out)]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert [level["in_flight"] for level in result["levels"]] == [1, 4]
    assert all(level["appends"] > 0 and level["errors"] == 0 for level in result["levels"])
    assert result["best_appends_per_s"] > 0
    assert "nats-server" in result["levels"][0]["cpu_percent"]
    assert not any(tmp_path.glob("bench-appends-*"))  # the temporary store is removed
