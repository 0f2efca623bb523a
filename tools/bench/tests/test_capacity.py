"""The capacity model's arithmetic, from small hand-made results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gavel_bench import capacity
from gavel_bench.capacity import CapacityError, Targets, by_key, measured_from, model


def one_room(step_cpu: bool = True) -> dict[str, Any]:
    """A ramp without watchers: 100/s and 200/s kept up, 400/s did not. The kept-up 200/s step has the
    room at 80 % and nats-server at 20 %: 4 ms and 1 ms of CPU per bid."""
    steps = [
        {"target_rate": 100.0, "bids_per_s": 100.0, "skipped": False, "cpu_percent": {"room": 40.0, "nats-server": 10}},
        {"target_rate": 200.0, "bids_per_s": 200.0, "skipped": False, "cpu_percent": {"room": 80.0, "nats-server": 20}},
        {"target_rate": 400.0, "bids_per_s": 250.0, "skipped": False, "cpu_percent": {"room": 99.0, "nats-server": 25}},
    ]
    if not step_cpu:
        for step in steps:
            del step["cpu_percent"]
    return {
        "rooms": 1000,
        "watchers_per_room": 0,
        "room_replicas": 1,
        "duration_s": 10.0,
        "bids_per_s": 200.0,
        "cpu_percent": {"room": 50.0, "nats-server": 10.0, "client-0": 5.0},
        "ramp": steps,
        # 40 s of window, 4,000 bids acknowledged: 100 bids/s on average
        "per_second": [{"second": s, "acked": 100, "deliveries": 0} for s in range(40)],
    }


def watchers_run() -> dict[str, Any]:
    """100 bids/s with 5 watchers per room on one replica: 500 deliveries/s; the room at 60 %
    (40 % for the bids at 4 ms, 20 % left: 0.4 ms per delivery), nats-server at 15 % (10 % for the
    bids at 1 ms, 5 % left over 100 fan-out messages/s: 0.5 ms per message)."""
    return {
        "rooms": 100,
        "watchers_per_room": 5,
        "room_replicas": 1,
        "duration_s": 10.0,
        "bids_per_s": 100.0,
        "watcher_deliveries": 5200,
        "cpu_percent": {"room": 60.0, "nats-server": 15.0},
        "ramp": None,
        # the rows after the window (the drain) are not part of the measured interval
        "per_second": [{"second": s, "acked": 100, "deliveries": 500 if s < 10 else 100} for s in range(12)],
    }


def appends() -> dict[str, Any]:
    return {
        "benchmark": "appends",
        "best_appends_per_s": 2000.0,
        "best_in_flight": 64,
        "levels": [
            {"in_flight": 1, "appends_per_s": 500.0, "latency_ms": {"p50": 2.0, "p99": 3.0}},
            {"in_flight": 64, "appends_per_s": 2000.0, "latency_ms": {"p50": 30.0, "p99": 40.0}},
        ],
    }


DEFAULT = Targets()


def lines(targets: Targets = DEFAULT, **files: Any) -> dict[str, capacity.Line]:
    measured = measured_from(
        files.get("one_room", one_room()),
        "one.json",
        files.get("watchers", watchers_run()),
        "watch.json",
        files.get("appends", appends()),
        "appends.json",
    )
    return by_key(model(targets, measured))


def test_the_bid_cost_comes_from_the_highest_step_that_kept_up() -> None:
    found = lines()
    assert found["room_cpu_s_per_bid"].value == pytest.approx(0.004)
    assert found["nats_cpu_s_per_bid"].value == pytest.approx(0.001)
    assert "ramp step 2 (target 200/s" in found["room_cpu_s_per_bid"].extra["source"]
    assert found["room_cpu_s_per_bid"].formula == "room 80 % / 100 / 200.0 bids/s"


def test_without_per_step_cpu_the_whole_window_is_used_and_said() -> None:
    measured = measured_from(one_room(step_cpu=False), "one.json", watchers_run(), "watch.json")
    assert measured.room_per_bid.value == pytest.approx(0.5 / 100)  # 50 % over 100 bids/s on average
    assert "whole window (40 s" in measured.room_per_bid.source
    assert any("has no per-step CPU" in note for note in measured.notes)


def test_the_fanout_cost_is_what_the_bids_do_not_explain() -> None:
    found = lines()
    assert found["room_cpu_s_per_delivery"].value == pytest.approx(0.2 / 500)
    assert found["nats_cpu_s_per_fanout_message"].value == pytest.approx(0.05 / 100)


def test_a_fanout_cost_below_zero_is_floored_at_zero() -> None:
    quiet = watchers_run() | {"cpu_percent": {"room": 30.0, "nats-server": 5.0}}
    measured = measured_from(one_room(), "one.json", quiet, "watch.json")
    assert measured.room_per_delivery.value == 0
    assert measured.nats_per_fanout_message.value == 0
    assert any("fan-out cost is taken as 0" in note for note in measured.notes)


def test_bid_rates_and_deliveries_follow_the_targets() -> None:
    found = lines(Targets(rooms=1000, watchers=500, lots_per_watcher=10, bids_per_room_per_s=0.5, peak_factor=2))
    assert found["bids_per_s_mean"].value == 500
    assert found["bids_per_s_peak"].value == 1000
    assert found["watchers_per_lot"].value == 5
    assert found["deliveries_per_s_mean"].value == 2500
    assert found["deliveries_per_s_peak"].value == 5000


def test_room_cores_scale_with_peak_bid_rate() -> None:
    low = lines(Targets(rooms=1000, watchers=0, bids_per_room_per_s=1, peak_factor=1, cpu_headroom=0.5))
    high = lines(Targets(rooms=1000, watchers=0, bids_per_room_per_s=1, peak_factor=3, cpu_headroom=0.5))
    assert low["room_cores_for_bids"].value == pytest.approx(1000 * 0.004 / 0.5)  # 8 cores
    assert high["room_cores_for_bids"].value == pytest.approx(3 * low["room_cores_for_bids"].value)
    assert low["room_cores_for_fanout"].value == 0


def test_fanout_cores_count_every_delivery_at_peak() -> None:
    found = lines(Targets(rooms=100, watchers=100, lots_per_watcher=10, bids_per_room_per_s=1, peak_factor=1))
    # 100 bids/s x 10 watchers per lot = 1,000 deliveries/s x 0.4 ms / 0.5
    assert found["room_cores_for_fanout"].value == pytest.approx(0.8)
    assert found["room_cores"].value == pytest.approx(0.8 + 100 * 0.004 / 0.5)


def test_replicas_round_up_to_whole_processes() -> None:
    found = lines(Targets(rooms=1000, watchers=0, bids_per_room_per_s=1, peak_factor=1, cores_per_replica=3))
    assert found["room_cores"].value == pytest.approx(8)
    assert found["room_replicas"].value == 3  # ceil(8 / 3)


def test_too_few_partitions_recommend_the_next_power_of_two_above_four_per_replica() -> None:
    found = lines(Targets(rooms=10_000, watchers=0, bids_per_room_per_s=1, peak_factor=1, partitions=64))
    assert found["room_replicas"].value == 80  # 10,000 x 4 ms / 0.5
    assert found["partitions_needed"].value == 320
    assert found["partitions_enough"].value is False
    assert found["partitions_recommended"].value == 512


def test_enough_partitions_are_kept() -> None:
    found = lines(Targets(rooms=100, watchers=0, bids_per_room_per_s=1, peak_factor=1, partitions=64))
    assert found["partitions_enough"].value is True
    assert found["partitions_recommended"].value == 64


def test_streams_are_sized_by_the_measured_append_ceiling_at_the_headroom() -> None:
    found = lines(Targets(rooms=10_000, watchers=0, bids_per_room_per_s=1, peak_factor=1, cpu_headroom=0.5))
    assert found["appends_per_s_peak"].value == 10_000
    assert found["streams_needed"].value == 10  # 10,000 / (2,000 x 0.5)
    assert found["partitions_per_stream"].value == 52  # ceil(512 / 10)
    assert "split the event log into 10 streams" in capacity.proposal(list(found.values()))


def test_without_an_appends_file_streams_are_not_sized() -> None:
    measured = measured_from(one_room(), "one.json", watchers_run(), "watch.json")
    found = by_key(model(Targets(), measured))
    assert found["streams_needed"].value is None
    assert "stream_appends_per_s_ceiling" not in found


def test_each_announcement_goes_to_at_most_one_node_per_watcher() -> None:
    few = lines(Targets(rooms=100, watchers=20, lots_per_watcher=10, bids_per_room_per_s=1, peak_factor=1))
    assert few["watchers_per_lot"].value == 2
    assert few["fanout_nodes_per_bid"].value == 1  # one replica is all it takes
    many = lines(Targets(rooms=10_000, watchers=100_000, lots_per_watcher=10, bids_per_room_per_s=1, peak_factor=1))
    replicas = many["room_replicas"].value
    assert isinstance(replicas, int)
    assert replicas > 100
    assert many["fanout_nodes_per_bid"].value == 100
    assert many["nats_fanout_messages_per_s_peak"].value == 10_000 * 100


def test_nats_servers_are_at_least_the_streams() -> None:
    found = lines(Targets(rooms=10_000, watchers=0, bids_per_room_per_s=1, peak_factor=1))
    assert found["nats_servers"].value == 10


def test_a_ramp_with_no_cpu_at_all_is_refused() -> None:
    broken = one_room(step_cpu=False) | {"cpu_percent": None}
    with pytest.raises(CapacityError):
        measured_from(broken, "one.json", watchers_run(), "watch.json")


def test_extra_room_replicas_count_as_room_cpu() -> None:
    assert capacity.room_cpu({"room": 10.0, "extra-r2": 20.0, "room-2": 5.0, "nats-server": 50.0}) == 35.0


def test_the_command_prints_every_formula_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = {}
    for name, result in (("one", one_room()), ("watch", watchers_run()), ("appends", appends())):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(result))
    out = tmp_path / "model.json"
    inputs = [
        "--one-room",
        str(paths["one"]),
        "--watchers-run",
        str(paths["watch"]),
        "--appends",
        str(paths["appends"]),
    ]
    target = ["--rooms", "10000", "--watchers", "0", "--bids-per-room-per-s", "1", "--peak-factor", "1"]
    code = capacity.main([*inputs, *target, "--json", str(out), "--markdown"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| room cores for bids | 80 cores | 10,000 bids/s x 4 ms / 0.5 headroom |" in printed
    assert "from one.json" not in printed  # sources name the files as given
    assert str(paths["one"]) in printed
    written = json.loads(out.read_text())
    assert written["model"]["streams_needed"]["value"] == 10
    assert written["targets"]["rooms"] == 10_000
