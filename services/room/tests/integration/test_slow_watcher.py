"""A Watch client that stops reading while bids pour in, beside one that keeps up.

What must hold: the fast watcher gets every batch, in order, while the slow one lags; the slow one
is cut off with RESOURCE_EXHAUSTED once it lags more than GAVEL_ROOM_WATCHER_LIMIT batches (the
replica buffers no more than that for it), keeps what it was sent, and resuming from its last
lot_sequence brings the rest (older batches than the feed keeps come from the log; a resume still
further behind than the limit is cut off again after the next batches, so each resume makes
progress): its sequence is gapless too. (The gateway's WebSocket tier, issue 14, is not built yet; its slow consumer
follows the same rule when it is.)
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import nats
import pytest
from room_cluster import Events, RoomCluster, english_lot, lot_open, room_cluster, token, usd

from gavel.room.v1 import room_service_pb2 as pb
from gavel_core.auth import Role
from gavel_kit.testing.load import lot_log

pytestmark = pytest.mark.integration

LOTS = 4
BIDS_PER_LOT = 250
WATCHER_LIMIT = 50
BIDDERS = [token(f"bidder-{i}", Role.BIDDER) for i in range(2)]
# The slow client's HTTP/2 window is small, so the server's writes to it block soon and the batches
# pile up in the replica, where the limit applies.
SLOW_CHANNEL = (("grpc.http2.lookahead_bytes", 1024), ("grpc.http2.bdp_probe", 0))


@pytest.fixture
def cluster(tmp_path: Path):
    with room_cluster(tmp_path, replicas=1, env={"GAVEL_ROOM_WATCHER_LIMIT": str(WATCHER_LIMIT)}) as running:
        yield running


async def read_until_done(call, seen: dict[str, list[int]], expected: int) -> str:
    """Read a resumed stream until every lot is complete ("complete") or it is cut off (its code)."""
    try:
        while (item := await call.read()) is not grpc.aio.EOF:
            seen[item.lot_id].append(item.lot_sequence)
            if all(len(lot) == expected for lot in seen.values()):
                return "complete"
    except grpc.aio.AioRpcError as exc:
        return exc.code().name
    return "ended"


async def bid_burst(stub, lot_id: str) -> int:
    for n in range(BIDS_PER_LOT):
        request = pb.PlaceBidRequest(request_id=f"{lot_id}-{n}", lot_id=lot_id, max_amount=usd(1_000 + 100 * n))
        await stub.PlaceBid(request, metadata=BIDDERS[n % 2], timeout=10)
    return BIDS_PER_LOT


async def test_a_slow_watcher_is_cut_off_at_its_limit_and_resumes_gapless_while_a_fast_one_keeps_up(
    cluster: RoomCluster,
):
    replica = cluster.replicas[0]
    channel, stub = cluster.stub(replica)
    slow_channel = grpc.aio.insecure_channel(replica.address, options=SLOW_CHANNEL)
    slow_stub = type(stub)(slow_channel)
    nc = await nats.connect(cluster.nats_url)
    events = Events(nc)
    try:
        lots = [english_lot(duration_ms=3_600_000) for _ in range(LOTS)]
        for lot in lots:
            await events.start(lot)
        for lot in lots:
            await lot_open(stub, lot.id)  # timed: the room opens it from LotStarting
        cursors = [pb.LotCursor(lot_id=lot.id) for lot in lots]
        fast_seen: dict[str, list[int]] = {lot.id: [] for lot in lots}
        slow_seen: dict[str, list[int]] = {lot.id: [] for lot in lots}
        fast = stub.Watch(pb.WatchRequest(lots=cursors))
        slow = slow_stub.Watch(pb.WatchRequest(lots=cursors))
        first = await slow.read()  # subscribed; from now on it reads nothing until the burst is over
        slow_seen[first.lot_id].append(first.lot_sequence)
        expected = 2 + BIDS_PER_LOT  # configure, open, the bids

        async def follow_fast() -> None:
            async for item in fast:
                fast_seen[item.lot_id].append(item.lot_sequence)
                if all(len(seen) == expected for seen in fast_seen.values()):
                    return

        following = asyncio.create_task(follow_fast())
        started = time.monotonic()
        await asyncio.gather(*(bid_burst(stub, lot.id) for lot in lots))
        burst_s = time.monotonic() - started
        await asyncio.wait_for(following, 15)
        for seen in fast_seen.values():
            assert seen == list(range(1, expected + 1))  # the fast one was not held back by the slow one

        cut_off = await read_until_done(slow, slow_seen, expected)
        assert cut_off == "RESOURCE_EXHAUSTED"  # else its lag was not bounded
        lagged = sum(len(seen) for seen in slow_seen.values())
        assert lagged < LOTS * expected
        resumes = 0
        codes: list[str] = []
        while not all(len(seen) == expected for seen in slow_seen.values()):
            resumes += 1
            assert resumes <= 2 * LOTS * expected // WATCHER_LIMIT + 2, "resuming makes no progress"
            after = [pb.LotCursor(lot_id=lot_id, after_sequence=len(seen)) for lot_id, seen in slow_seen.items()]
            resumed = slow_stub.Watch(pb.WatchRequest(lots=after))
            codes.append(await read_until_done(resumed, slow_seen, expected))
            resumed.cancel()
        assert set(codes) <= {"RESOURCE_EXHAUSTED", "complete"}, codes
        for lot in lots:
            assert slow_seen[lot.id] == list(range(1, expected + 1)), lot.id
            assert len(await lot_log(nc, lot.id)) == expected
        print(
            f"\nslow watcher: {LOTS * BIDS_PER_LOT} bids in {burst_s:.1f} s; cut off after {lagged} batches "
            f"(limit {WATCHER_LIMIT} queued in the replica), caught up gapless in {resumes} resumes; "
            f"the fast watcher got all {LOTS * expected}"
        )
    finally:
        await slow_channel.close()
        await channel.close()
        await nc.close()
