"""Three room replicas as separate processes; one is SIGKILLed while bids flow.

What must hold: no acknowledged bid is lost (every acked bid id is in its lot's log); every lot's
log is one gapless sequence with no command twice; no lot is decided twice (the deadlines of the
dead replica's lots fire on their new owners, once); watchers see a gapless lot_sequence; bidding
on the moved partitions resumes within 2 s of the kill.
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
from room.app.partitions import partition_of

pytestmark = pytest.mark.integration

LOTS = 18
BIDDERS = [token(f"bidder-{i}", Role.BIDDER) for i in range(4)]
LOT_DURATION_MS = 9_000  # long enough to bid through the failover, short enough to close in the test
BIDDING_AFTER_KILL_S = 4.0
RESUME_WITHIN_S = 2.0


@pytest.fixture
def cluster(tmp_path: Path):
    with room_cluster(tmp_path, replicas=3) as running:
        yield running


async def test_sigkill_of_a_replica_while_bids_flow(cluster: RoomCluster):
    nc = await nats.connect(cluster.nats_url)
    events = Events(nc)
    channels = {replica.name: cluster.stub(replica) for replica in cluster.replicas}
    stubs = {name: stub for name, (_, stub) in channels.items()}
    watch_tasks: list[asyncio.Task] = []
    try:
        for _ in range(50):  # let the three replicas settle on a third of the partitions each
            holders = await events.holders()
            if len(holders) == 64 and len(set(holders.values())) == 3:
                break
            await asyncio.sleep(0.1)
        lots = [english_lot(duration_ms=LOT_DURATION_MS) for _ in range(LOTS)]
        await open_lots(events, stubs["replica-0"], lots)
        holders = await events.holders()
        owner_of = {lot.id: holders.get(partition_of(lot.id, 64)) for lot in lots}
        victim = max(("replica-1", "replica-2"), key=lambda name: list(owner_of.values()).count(name))
        moved = {lot.id for lot in lots if holders.get(partition_of(lot.id, 64)) == victim}
        assert moved, "the victim owns none of the lots"

        stop_watching = asyncio.Event()
        watched = {lot.id: [] for lot in lots[:6]}
        watch_tasks = [
            asyncio.create_task(watch_gapless(stubs, {"replica-0"}, lot_id, seen, stop_watching))
            for lot_id, seen in watched.items()
        ]
        bidding = Bidding(stubs, {"replica-0", "replica-1", "replica-2"}, BIDDERS)
        bidders = [asyncio.create_task(bidding.bid_on(lot.id, seed)) for seed, lot in enumerate(lots)]
        await asyncio.wait_for(bidding.until_each_has(moved, 3), 30)  # bids flow on the lots about to move

        bidding.alive.discard(victim)
        killed_at = time.monotonic()
        cluster.kill(next(r for r in cluster.replicas if r.name == victim))
        await asyncio.sleep(BIDDING_AFTER_KILL_S)
        bidding.running = False
        await asyncio.gather(*bidders)

        resumed = resume_delays(bidding.acked, moved, killed_at)
        assert all(delay is not None and delay <= RESUME_WITHIN_S for delay in resumed.values()), resumed

        # The lots close on their own (their deadlines now fire on their new owners): wait for all.
        logs = await logs_when_decided(events, [lot.id for lot in lots], LOT_DURATION_MS / 1000 + 10)
        check_logs(logs, bidding.acked, decided=True)

        stop_watching.set()
        for lot_id, seen in watched.items():
            expected = len(logs[lot_id])
            await eventually(lambda seen=seen, expected=expected: len(seen) >= expected, 5, f"watcher of {lot_id}")
            assert seen == list(range(1, expected + 1)), lot_id
        assert len(bidding.acked) > 100
    finally:
        for task in watch_tasks:
            task.cancel()
        for channel, _ in channels.values():
            await channel.close()
        await nc.close()
