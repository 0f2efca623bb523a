"""`gavel bench-engine` runs, reports progress, and writes its JSON summary and PNG plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from room.cli.bench_engine import main


def test_a_small_engine_benchmark_writes_its_summary_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary_path, plot_path = tmp_path / "bench.json", tmp_path / "bench.png"
    argv = ["--lots", "5", "--bids", "3000", "--batch", "500", "--progress", "0", "--json", str(summary_path)]
    assert main([*argv, "--plot", str(plot_path)]) == 0
    out = capsys.readouterr().out
    assert "bids/s" in out.splitlines()[0]
    assert out.splitlines()[-1].startswith("engine alone: ")
    summary = json.loads(summary_path.read_text())
    assert summary["bids"] == 3000
    assert summary["accepted"] + summary["rejected"] == 3000
    assert 0 < summary["accepted"] < 3000
    assert summary["bids_per_second"] > 0
    assert summary["per_second"]
    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
