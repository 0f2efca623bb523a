"""Three room replicas as separate processes; one is SIGKILLed while bids flow.

What must hold: no acknowledged bid is lost (every acked bid id is in its lot's log); every lot's
log is one gapless sequence with no command twice; no lot is decided twice (the deadlines of the
dead replica's lots fire on their new owners, once); watchers see a gapless lot_sequence; bidding
on the moved partitions resumes within 2 s of the kill.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import nats
import pytest
from room_cluster import Events, RoomCluster, english_lot, new_id, room_cluster, token, usd

from gavel.room.v1 import room_service_pb2 as pb
from gavel.room.v1 import room_service_pb2_grpc as pb_grpc
from gavel_core.auth import Role
from room.app.partitions import partition_of

pytestmark = pytest.mark.integration

LOTS = 18
BIDDERS = [token(f"bidder-{i}", Role.BIDDER) for i in range(4)]
CRIER = token("crier-1", Role.CRIER)
LOT_DURATION_MS = 9_000  # long enough to bid through the failover, short enough to close in the test
BIDDING_AFTER_KILL_S = 4.0
RESUME_WITHIN_S = 2.0


@dataclass
class Acked:
    lot_id: str
    request_id: str
    lot_sequence: int
    at: float


@dataclass
class Bidding:
    stubs: dict[str, pb_grpc.RoomServiceStub]
    alive: set[str]
    acked: list[Acked] = field(default_factory=list)
    running: bool = True
    more_acked: asyncio.Event = field(default_factory=asyncio.Event)

    async def until_each_has(self, lot_ids: set[str], count: int) -> None:
        """Wait until every one of the lots has at least `count` acknowledged bids."""
        while any(sum(a.lot_id == lot_id for a in self.acked) < count for lot_id in lot_ids):
            self.more_acked.clear()
            await self.more_acked.wait()

    async def bid_on(self, lot_id: str, seed: int) -> None:
        """Keep raising on one lot; after a failed call, retry the same bid id on another replica."""
        rng = random.Random(seed)
        amount = 1_000
        for n in itertools.count():
            if not self.running:
                return
            request = pb.PlaceBidRequest(request_id=f"{lot_id}-{n}", lot_id=lot_id, max_amount=usd(amount))
            bidder = BIDDERS[n % len(BIDDERS)]
            for _attempt in range(50):
                name = rng.choice(sorted(self.alive))
                try:
                    reply = await self.stubs[name].PlaceBid(request, metadata=bidder, timeout=5)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                        break  # refused (too low, or the lot closed): a definite answer
                    await asyncio.sleep(0.02)
                    continue
                self.acked.append(Acked(lot_id, request.request_id, reply.lot_sequence, time.monotonic()))
                self.more_acked.set()
                break
            amount += 500
            await asyncio.sleep(rng.uniform(0.05, 0.15))


async def ready(stub: pb_grpc.RoomServiceStub, lot_id: str) -> None:
    for _ in range(200):
        try:
            await stub.GetLotState(pb.GetLotStateRequest(lot_id=lot_id))
            return
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            await asyncio.sleep(0.05)
    raise TimeoutError(lot_id)


async def watch(stub: pb_grpc.RoomServiceStub, lot_id: str, seen: list[int], stop: asyncio.Event) -> None:
    call = stub.Watch(pb.WatchRequest(lots=[pb.LotCursor(lot_id=lot_id)]))
    try:
        async for item in call:
            seen.append(item.lot_sequence)
            if stop.is_set():
                return
    finally:
        call.cancel()


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
        for lot in lots:
            await events.schedule(lot)
        for lot in lots:
            await ready(stubs["replica-0"], lot.id)
            await stubs["replica-0"].OpenLot(pb.OpenLotRequest(request_id=new_id(), lot_id=lot.id), metadata=CRIER)
        holders = await events.holders()
        owner_of = {lot.id: holders.get(partition_of(lot.id, 64)) for lot in lots}
        victim = max(("replica-1", "replica-2"), key=lambda name: list(owner_of.values()).count(name))
        moved = {lot.id for lot in lots if holders.get(partition_of(lot.id, 64)) == victim}
        assert moved, "the victim owns none of the lots"

        stop_watching = asyncio.Event()
        watched = {lot.id: [] for lot in lots[:6]}
        watch_tasks = [
            asyncio.create_task(watch(stubs["replica-0"], lot_id, seen, stop_watching))
            for lot_id, seen in watched.items()
        ]
        bidding = Bidding(stubs, alive={"replica-0", "replica-1", "replica-2"})
        bidders = [asyncio.create_task(bidding.bid_on(lot.id, seed)) for seed, lot in enumerate(lots)]
        await asyncio.wait_for(bidding.until_each_has(moved, 3), 30)  # bids flow on the lots about to move

        bidding.alive.discard(victim)
        killed_at = time.monotonic()
        cluster.kill(next(r for r in cluster.replicas if r.name == victim))
        await asyncio.sleep(BIDDING_AFTER_KILL_S)
        bidding.running = False
        await asyncio.gather(*bidders)

        resumed = {}
        for lot_id in moved:
            after = [a.at - killed_at for a in bidding.acked if a.lot_id == lot_id and a.at > killed_at]
            resumed[lot_id] = min(after) if after else None
        assert all(delay is not None and delay <= RESUME_WITHIN_S for delay in resumed.values()), resumed

        # The lots close on their own (their deadlines now fire on their new owners): wait for all.
        logs: dict[str, list] = {}
        deadline = time.monotonic() + LOT_DURATION_MS / 1000 + 10
        while time.monotonic() < deadline:
            logs = {lot.id: [batch for _, batch in await events.log(lot.id)] for lot in lots}
            if all(batch.after.phase in ("sold", "unsold") for batch in (log[-1] for log in logs.values())):
                break
            await asyncio.sleep(0.2)

        for lot_id, log in logs.items():
            assert [b.lot_sequence for b in log] == list(range(1, len(log) + 1)), lot_id
            commands = [b.command_id for b in log]
            assert len(commands) == len(set(commands)), lot_id
            outcomes = [e for b in log for e in b.events if e.WhichOneof("event") in ("lot_sold", "lot_unsold")]
            assert len(outcomes) == 1, (lot_id, outcomes)
        for acked in bidding.acked:
            stored = {b.command_id.partition("@")[0]: b.lot_sequence for b in logs[acked.lot_id]}
            assert stored.get(acked.request_id) == acked.lot_sequence, acked

        stop_watching.set()
        for lot_id, seen in watched.items():
            for _ in range(100):
                if len(seen) >= len(logs[lot_id]):
                    break
                await asyncio.sleep(0.05)
            assert seen == list(range(1, len(logs[lot_id]) + 1)), lot_id
        assert len(bidding.acked) > 100
    finally:
        for task in watch_tasks:
            task.cancel()
        for channel, _ in channels.values():
            await channel.close()
        await nc.close()
