"""The floor's arithmetic, from small hand-made results."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gavel_bench import floor, matrix
from gavel_bench.floor import FloorError, bare_costs, floor_lines


def one_room(echo_rps: float = 4_000.0) -> dict[str, Any]:
    """The echo server at 100 % of a CPU and its two clients at 40 % each: 0.25 ms and 0.2 ms a call
    at 4,000 calls/s."""
    return {
        "echo": {
            "rps": echo_rps,
            "cpu_percent": {"echo-server": 100.0, "echo-client-0": 40.0, "echo-client-1": 40.0},
        },
        "machine": {"logical_cpus": 2},
    }


def appends() -> dict[str, Any]:
    """Best 4,000 appends/s with the client at 20 % and nats-server at 40 %: 0.05 and 0.1 ms each."""
    return {
        "best_appends_per_s": 4_000.0,
        "levels": [
            {"in_flight": 1, "appends_per_s": 1_500.0, "cpu_percent": {"bench": 30.0, "nats-server": 45.0}},
            {"in_flight": 64, "appends_per_s": 4_000.0, "cpu_percent": {"bench": 20.0, "nats-server": 40.0}},
        ],
    }


def test_unit_costs_are_cpu_seconds_per_call_and_per_append_at_the_best_level():
    costs = bare_costs(one_room(), appends())

    assert costs.server_per_call == pytest.approx(0.25e-3)
    assert costs.clients_per_call == pytest.approx(0.2e-3)
    assert costs.client_per_append == pytest.approx(0.05e-3)
    assert costs.nats_per_append == pytest.approx(0.1e-3)
    assert costs.room_floor == pytest.approx(0.3e-3)
    assert costs.machine_floor == pytest.approx(0.6e-3)


def test_the_bounds_are_one_core_per_room_process_one_stream_and_the_machines_cores():
    text = "\n".join(floor_lines(bare_costs(one_room(), appends())))

    assert "**3,333 durable bids/s** (0.83 x the echo ceiling)" in text
    assert "at most **4,000/s**" in text
    assert "2 / 0.600 ms = **3,333 bids/s**" in text
    assert "no room process can reach 5,000 durable bids/s (bound 3,333/s)" in text
    # 0.7 x 4,000 = 2,800/s: 1 / 2,800 s = 0.357 ms per bid, 0.057 ms beyond the call and the append
    assert "leaves the room 0.057 ms per bid" in text


def test_the_watcher_budget_is_what_the_cores_leave_after_the_bids():
    text = "\n".join(floor_lines(bare_costs(one_room(), appends())))

    # 2,000 bids/s x 0.6 ms = 1.2 cores; 0.8 core over 10,000 deliveries/s = 0.08 ms each
    assert "take 1.20 of the 2 cores" in text
    assert "at most 0.080 ms each" in text


def test_a_machine_too_small_for_the_bids_alone_is_said_so():
    small = one_room(echo_rps=1_000.0)  # 1 ms server + 0.8 ms clients per call

    text = "\n".join(floor_lines(bare_costs(small, appends())))

    assert "need 3.90 cores: more than the 2 this machine has" in text


def test_a_room_run_without_echo_cpu_is_refused():
    run = one_room()
    del run["echo"]["cpu_percent"]

    with pytest.raises(FloorError, match="echo ceiling"):
        bare_costs(run, appends())


def test_the_command_prints_the_floor_and_refuses_unusable_files(tmp_path, capsys):
    room_file, appends_file = tmp_path / "room.json", tmp_path / "appends.json"
    room_file.write_text(json.dumps(one_room()))
    appends_file.write_text(json.dumps({"levels": []}))
    assert floor.main(["--one-room", str(room_file), "--appends", str(appends_file)]) == 2
    assert "no best level" in capsys.readouterr().err

    appends_file.write_text(json.dumps(appends()))
    assert floor.main(["--one-room", str(room_file), "--appends", str(appends_file)]) == 0
    assert "durable bids/s" in capsys.readouterr().out


def test_the_matrix_page_carries_the_floor_when_both_runs_are_there():
    assert "3,333 durable bids/s" in matrix.floor_section({"one-room-process": one_room(), "appends": appends()})
    assert matrix.floor_section({"one-room-process": one_room(), "appends": None}) == ""
