"""`gavel bench` end to end against a cluster it starts itself, with tiny numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gavel_bench.report import REQUIRED_FIELDS


@pytest.mark.integration
def test_a_tiny_run_acknowledges_bids_and_loses_none(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "gavel_kit.cli", "bench", "--rooms", "4", "--watchers", "2", "--rate", "20"]
    command += ["--duration", "3", "--echo-duration", "0.5", "--client-procs", "1"]
    command += ["--json", str(out), "--plot", str(tmp_path / "bench.png"), "--var-dir", str(tmp_path / "var")]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=110, check=False)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(REQUIRED_FIELDS) <= set(result)
    assert result["bids_acknowledged"] > 0
    assert result["bids_lost"] == 0
    assert result["bids_duplicated"] == 0
    assert result["echo_ceiling_rps"] > 0
    assert result["fanout_ms"]["count"] > 0
    assert result["failover_s"] is None
    assert (tmp_path / "bench.png").exists()
