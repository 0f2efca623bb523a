"""The NATS server is SIGKILLed mid-sale and started again (same port, same store) while two room
replicas take bids and watchers follow.

What must hold: the replicas recover by themselves (their memory-stored lease buckets are created
again, partitions claimed again) and bidding resumes on every lot within RESUME_WITHIN_S of NATS
answering again; bids in flight at the kill time out and are retried with their ids, and are
answered with what the log holds (the client library may have flushed one on reconnect: its retry
must say it stands, not fail); no acknowledged bid is lost or duplicated, every lot is decided
once by its timer, watchers see every lot_sequence once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nats
import pytest
from room_cluster import (
    Bidding,
    Events,
    RoomCluster,
    check_logs,
    english_lot,
    logs_when_decided,
    open_lots,
    resume_delays,
    room_cluster,
    token,
    watch_gapless,
)

from gavel_core.auth import Role
from gavel_kit.testing.faults import eventually

pytestmark = pytest.mark.integration

LOTS = 8
LOT_DURATION_MS = 14_000  # bids flow across the outage, then every lot closes on its own timer
NATS_DOWN_S = 4.0  # longer than a bidder's call timeout: bids in flight end ambiguous, then are retried
CALL_TIMEOUT_S = 2.0
RESUME_WITHIN_S = 5.0  # from NATS answering again to a bid acknowledged on every lot
BIDDERS = [token(f"bidder-{i}", Role.BIDDER) for i in range(4)]


@pytest.fixture
def cluster(tmp_path: Path):
    with room_cluster(tmp_path, replicas=2) as running:
        yield running


async def test_bidding_resumes_by_itself_after_nats_is_killed_and_restarted(cluster: RoomCluster):
    channels = {replica.name: cluster.stub(replica) for replica in cluster.replicas}
    stubs = {name: stub for name, (_, stub) in channels.items()}
    nc = await nats.connect(cluster.nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    events = Events(nc)
    stop_watching = asyncio.Event()
    tasks: list[asyncio.Task] = []
    try:
        lots = [english_lot(duration_ms=LOT_DURATION_MS) for _ in range(LOTS)]
        await open_lots(events, stubs["replica-0"], lots)
        lot_ids = {lot.id for lot in lots}
        alive = set(stubs)
        watched = {lot.id: [] for lot in lots[:4]}
        tasks += [
            asyncio.create_task(watch_gapless(stubs, alive, lot_id, seen, stop_watching))
            for lot_id, seen in watched.items()
        ]
        bidding = Bidding(stubs, alive, BIDDERS, call_timeout_s=CALL_TIMEOUT_S)
        tasks += [asyncio.create_task(bidding.bid_on(lot.id, seed)) for seed, lot in enumerate(lots)]
        await asyncio.wait_for(bidding.until_each_has(lot_ids, 3), 30)

        cluster.kill_nats()
        killed_at = time.monotonic()
        await asyncio.sleep(NATS_DOWN_S)  # the outage itself: nothing to wait for but time
        cluster.start_nats()
        answering_at = time.monotonic()
        await asyncio.wait_for(bidding.until_acked_after(answering_at, lot_ids), 30)
        resumed = resume_delays(bidding.acked, lot_ids, answering_at)
        assert max(resumed.values()) <= RESUME_WITHIN_S, resumed
        await asyncio.wait_for(bidding.until_each_has(lot_ids, 6), 30)
        bidding.running = False
        await asyncio.gather(*tasks[len(watched) :])

        logs = await logs_when_decided(events, sorted(lot_ids), LOT_DURATION_MS / 1000 + 20)
        check_logs(logs, bidding.acked, decided=True)
        across = [a for a in bidding.acked if killed_at < a.at and a.sent_at < answering_at]
        assert any(a.attempts > 1 for a in across), "no bid was caught by the outage and retried"
        failed = [code for at, code in bidding.codes if at > killed_at]
        stop_watching.set()
        for lot_id, seen in watched.items():
            expected = len(logs[lot_id])
            await eventually(lambda seen=seen, expected=expected: len(seen) >= expected, 15, f"watcher of {lot_id}")
            assert seen == list(range(1, len(logs[lot_id]) + 1)), lot_id
        print(
            f"\nNATS restart: down {answering_at - killed_at:.1f} s; bidding resumed within "
            f"{max(resumed.values()):.2f} s of NATS answering (per lot: min {min(resumed.values()):.2f} s); "
            f"{len(bidding.acked)} bids acknowledged, {len(across)} sent before NATS answered again and "
            f"acknowledged after ({sum(a.attempts > 1 for a in across)} after retries; failed attempts: {failed})"
        )
    finally:
        stop_watching.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for channel, _ in channels.values():
            await channel.close()
        await nc.close()
