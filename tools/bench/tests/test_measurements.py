"""The harness's own arithmetic: histograms, the event-log audit, failover gaps, bids, watch groups."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gavel_bench.eventlog import audit
from gavel_bench.failover import Kill, failover_gaps, longest_gap
from gavel_bench.fixture import INCREMENT_MINOR, LOTS_PER_SALE, OPENING_BID_MINOR, PreparedLot, session_slots
from gavel_bench.histograms import Latency, merged
from gavel_bench.runner import _chosen_step, split_lots
from gavel_bench.workload import WATCH_GROUP, LotLive, plan_watch_groups


def test_percentiles_are_reported_in_milliseconds() -> None:
    latency = Latency()
    for micros in range(1, 10_001):  # 1 µs … 10 ms, evenly
        latency.record_s(micros / 1_000_000)
    summary = latency.summary()
    assert summary["count"] == 10_000
    assert summary["p50"] == pytest.approx(5.0, rel=0.01)
    assert summary["p99"] == pytest.approx(9.9, rel=0.01)
    assert summary["max"] == pytest.approx(10.0, rel=0.01)


def test_an_empty_histogram_has_no_percentiles() -> None:
    assert Latency().summary()["p50"] is None
    assert Latency().distribution() == []


def test_histograms_merge_through_their_encoding() -> None:
    fast, slow = Latency(), Latency()
    for _ in range(90):
        fast.record_ms(1.0)
    for _ in range(10):
        slow.record_ms(100.0)
    total = merged([fast.encode(), slow.encode(), b""])
    assert total.count == 100
    assert total.percentile_ms(50) == pytest.approx(1.0, rel=0.01)
    assert total.percentile_ms(95) == pytest.approx(100.0, rel=0.01)


def test_take_ships_an_interval_and_starts_again() -> None:
    interval = Latency()
    interval.record_ms(3.0)
    shipped = interval.take()
    assert interval.count == 0
    assert Latency.decode(shipped).count == 1
    assert interval.take() == b""


def test_the_audit_counts_lost_and_duplicated_bids() -> None:
    acknowledged = {"lot-a": ["b1", "b2", "b3"], "lot-b": ["b4"]}
    logged = {"lot-a": ["b1", "b2", "b2"], "lot-b": ["b4", "b9"]}
    found = audit(acknowledged, logged)
    assert found.lost == 1
    assert found.lost_examples == ["lot-a/b3"]
    assert found.duplicated == 1
    assert found.bids_in_log == 5


def test_the_longest_gap_starts_at_the_last_ack_before_the_kill() -> None:
    acks = [0.0, 0.1, 0.2, 2.7, 2.8, 2.9]
    assert longest_gap(acks, since=0.25, until=5.0) == pytest.approx(2.5)  # 0.2 → 2.7
    assert longest_gap(acks, since=3.0, until=5.0) == pytest.approx(2.1)  # still stalled at the end
    assert longest_gap([], since=1.0, until=2.0) is None


def test_failover_gaps_only_look_at_the_moved_partitions() -> None:
    from room.app.partitions import partition_of

    lots = [f"lot-{n}" for n in range(200)]
    moved = partition_of(lots[0], 64)
    kill = Kill(at=10.0, replica_id="bench-room-1", partitions=(moved,))
    acks = {}
    for lot in lots:
        if partition_of(lot, 64) == moved:
            acks[lot] = [9.9, *(12.0 + k / 10 for k in range(80))]  # a 2.1 s stall, then acks again
        else:
            acks[lot] = [9.9, 10.0, 10.1]  # the others did not stall
    assert failover_gaps([kill], acks, 64, window_end=20.0) == [pytest.approx(2.1)]


def test_bids_start_at_the_opening_bid_and_follow_the_price() -> None:
    lot = LotLive(PreparedLot(0, "lot-1", 2), ("alice", "bob", "carol"))
    rng = random.Random(7)
    bidder, amount = lot.next_bid(rng)
    assert OPENING_BID_MINOR <= amount <= OPENING_BID_MINOR + 3 * INCREMENT_MINOR
    lot.observe(3, 5_000, "alice")
    for _ in range(20):
        bidder, amount = lot.next_bid(rng)
        assert bidder != "alice"  # the leader does not outbid themself
        assert amount >= 5_000 + INCREMENT_MINOR
        assert (amount - OPENING_BID_MINOR) % INCREMENT_MINOR == 0
    lot.observe(2, 1, None)  # an older state changes nothing
    assert lot.price == 5_000


def test_a_refusal_raises_what_the_client_bids_next() -> None:
    lot = LotLive(PreparedLot(0, "lot-1", 2), ("alice", "bob"))
    lot.refused("bob", "BID_TOO_LOW", 9_000)
    assert lot.min_bid == 9_000
    lot.refused("alice", "BID_NOT_ABOVE_OWN_MAX", 12_001)
    assert lot.maxima["alice"] == 12_000


def test_each_watcher_stream_follows_at_most_ten_lots_and_each_lot_has_w_watchers() -> None:
    lots = [f"lot-{n}" for n in range(35)]
    groups = plan_watch_groups(lots, watchers_per_room=5)
    assert all(1 <= len(group) <= WATCH_GROUP for group in groups)
    assert len(groups) == 5 * 4
    for lot in lots:
        assert sum(lot in group for group in groups) == 5
    assert plan_watch_groups(lots, 0) == []


def test_lots_are_shared_out_in_contiguous_nearly_equal_parts() -> None:
    lots = [PreparedLot(n, f"lot-{n}", 2) for n in range(11)]
    shares = split_lots(lots, 3)
    assert [len(share) for share in shares] == [4, 4, 3]
    assert [lot for share in shares for lot in share] == lots


def test_a_day_of_sessions_holds_the_lots_of_one_sale() -> None:
    slots = session_slots()
    assert len(slots) == 12
    assert slots[0].start == "00:00"
    assert slots[-1].end == "24:00"
    assert LOTS_PER_SALE == 12 * 12


def test_the_ramp_reports_the_fastest_step_that_kept_up() -> None:
    steps = [
        {"target_rate": 100, "bids_per_s": 100},
        {"target_rate": 200, "bids_per_s": 199},
        {"target_rate": 400, "bids_per_s": 260},  # fell behind: not "kept up", though faster
    ]
    assert _chosen_step(steps) == 1
    assert _chosen_step([{"target_rate": 100, "bids_per_s": 50}]) == 0


def test_the_cpu_meter_sees_this_process_work() -> None:
    import os

    from gavel_bench.cpu import CpuMeter, Tracked, cpu_seconds

    assert (cpu_seconds(os.getpid()) or 0) > 0
    meter = CpuMeter([Tracked("me", os.getpid()), Tracked("gone", 2**22 + 12345)])
    meter.start()
    total = 0
    for n in range(300_000):  # a little real work
        total += n * n
    shares = meter.stop()
    assert total > 0
    assert shares["me"] > 0
    assert "gone" not in shares


def test_a_profile_summary_ranks_frames_by_self_and_inclusive_share(tmp_path: Path) -> None:
    from gavel_bench.profile import summarize

    raw = tmp_path / "room.raw"
    raw.write_text("main;serve;place_bid;append 30\nmain;serve;place_bid;decide 10\nmain;serve;watch 60\n")
    summary = summarize(raw)
    assert summary["samples"] == 100
    assert summary["self_percent"][0] == [60.0, "watch"]
    assert [40.0, "place_bid"] in summary["inclusive_percent"]


def test_the_memory_meter_reports_growth_over_the_second_half_of_the_window():
    from gavel_bench.cpu import MemoryMeter
    from gavel_bench.matrix import soak_section

    meter = MemoryMeter([])
    mb = 2**20
    meter.samples["room:1"] = [(t, 100 * mb + (t * mb if t < 30 else 30 * mb)) for t in range(0, 60, 5)]
    meter.samples["catalog:2"] = [(t, 50 * mb + t * mb // 10) for t in range(0, 60, 5)]
    summary = meter.summary(bids_per_s=100)
    assert summary["room:1"]["growth_mb_per_min_second_half"] == 0  # warmed up, then flat
    assert summary["room:1"]["max_mb"] == 130
    assert summary["catalog:2"]["growth_mb_per_min_second_half"] == 6.0
    assert summary["catalog:2"]["growth_bytes_per_bid_second_half"] == round(mb / 10 / 100, 1)
    page = soak_section(
        {"memory": summary, "bids_acknowledged": 60_000, "bids_lost": 0, "bids_duplicated": 0, "nats_kills_at_s": [120]}
    )
    assert "| room:1 | 100.0 | 130.0 | 130.0 | 0.0 |" in page
