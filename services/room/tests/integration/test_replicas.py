"""Two room replicas as separate processes on a real nats-server, with a room-projector process
writing the reports into the database they share (as `gavel up` runs them): any replica takes any
call and the lot's owner answers; refusals keep their status and details; eligibility from the
payment service's and the catalog's events; watchers join late and resume without gaps or
duplicates; two writers racing on one lot cannot both append; the reports of both replicas' lots."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import nats
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.js.api import DiscardPolicy
from room_cluster import Events, RoomCluster, english_lot, log_lines, new_id, room_cluster, token, usd

from gavel.catalog.v1 import resources_pb2 as res
from gavel.events.v1 import room_events_pb2 as ev
from gavel.room.v1 import room_service_pb2 as pb
from gavel.room.v1 import room_service_pb2_grpc as pb_grpc
from gavel_core.auth import Role
from gavel_core.errors import GavelError
from gavel_kit.grpc.errors import error_info_of
from room.adapters.codec import lot_from_message
from room.adapters.event_log import JetStreamEventLog, NatsAnnouncer, NatsLiveFeeds
from room.app.feeds import Feeds, Watcher
from room.app.lots import CommandRequest, LotDeps, LotDirectory, WithdrawLot
from room.app.model import Batch, LotConfigured, LotSummary, PublishedLot
from room.app.ports import WrongLastSequence
from room.app.timers import WakeUps
from room.app.views import Pseudonyms
from room.domain import OpenLot, PlaceBid
from room.main import draw_secret, wall_clock_ms

pytestmark = pytest.mark.integration
TEST_PSEUDONYMS = Pseudonyms(b"test-pseudonym-key-0123456789abcdef")

CRIER = token("crier-1", Role.CRIER)
ALICE = token("alice", Role.BIDDER)
BOB = token("bob", Role.BIDDER)
SELLER = token("seller-1", Role.BIDDER, Role.SELLER)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoomCluster]:
    with room_cluster(Path(tmp_path_factory.mktemp("room-replicas")), replicas=2, projector=True) as running:
        yield running


@pytest.fixture
async def events(cluster: RoomCluster) -> AsyncIterator[Events]:
    nc = await nats.connect(cluster.nats_url)
    try:
        yield Events(nc)
    finally:
        await nc.close()


@pytest.fixture
async def stubs(cluster: RoomCluster) -> AsyncIterator[list[pb_grpc.RoomServiceStub]]:
    channels = [cluster.stub(replica) for replica in cluster.replicas]
    try:
        yield [stub for _, stub in channels]
    finally:
        for channel, _ in channels:
            await channel.close()


async def ready(stub: pb_grpc.RoomServiceStub, lot_id: str, timeout_s: float = 10) -> pb.LotState:
    """Wait until the room has configured the lot from its LotScheduled event."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            return (await stub.GetLotState(pb.GetLotStateRequest(lot_id=lot_id))).state
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND or loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def open_lot(events: Events, stubs: list[pb_grpc.RoomServiceStub], lot: res.Lot) -> None:
    """The catalog starts the lot: the room runs it and opens it (a crier lot: its crier opens it)."""
    await events.start(lot)
    state = await ready(stubs[0], lot.id)
    if lot.english.close == res.ENGLISH_CLOSE_CRIER:
        await stubs[1].OpenLot(pb.OpenLotRequest(request_id=new_id(), lot_id=lot.id), metadata=CRIER)
    else:
        assert state.phase == pb.LOT_PHASE_OPEN


def bid(lot_id: str, amount: int, request_id: str | None = None) -> pb.PlaceBidRequest:
    return pb.PlaceBidRequest(request_id=request_id or new_id(), lot_id=lot_id, max_amount=usd(amount))


async def refusal(call) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    info = error_info_of(caught.value)
    return caught.value.code(), info.reason if info else "", dict(info.metadata) if info else {}


async def test_lots_are_shared_between_the_replicas(cluster, events):
    for _ in range(50):
        holders = await events.holders()
        if len(holders) == 64 and set(holders.values()) == {"replica-0", "replica-1"}:
            break
        await asyncio.sleep(0.1)
    counts = sorted(list(holders.values()).count(name) for name in ("replica-0", "replica-1"))
    assert counts == [32, 32]


async def test_any_replica_takes_a_bid_and_a_retry_gets_the_first_answer(events, stubs):
    lot = english_lot()
    await open_lot(events, stubs, lot)
    request = bid(lot.id, 5_000)
    first = await stubs[0].PlaceBid(request, metadata=ALICE)
    await stubs[1].PlaceBid(bid(lot.id, 3_000), metadata=BOB)
    again = [await stubs[i].PlaceBid(request, metadata=ALICE) for i in (0, 1)]
    assert (first.lot_sequence, first.leader_id, first.price.amount_minor, first.leading) == (3, "alice", 1_000, True)
    assert again == [first, first]
    log = await events.log(lot.id)
    assert [batch.command_id for _, batch in log].count(f"{request.request_id}@alice") == 1  # scoped by caller
    assert [batch.lot_sequence for _, batch in log] == [1, 2, 3, 4]


async def test_the_projector_process_reports_the_bids_taken_by_either_replica(events, stubs):
    lot = english_lot()
    await open_lot(events, stubs, lot)
    await stubs[0].PlaceBid(bid(lot.id, 5_000), metadata=ALICE)
    await stubs[1].PlaceBid(bid(lot.id, 3_000), metadata=BOB)
    expected = [("alice", 5_000, 1_000, "alice"), ("bob", 3_000, 3_100, "alice")]
    for stub in stubs:
        for _ in range(100):
            bids = (await stub.ListBids(pb.ListBidsRequest(lot_id=lot.id), metadata=CRIER)).bids
            if len(bids) == len(expected):
                break
            await asyncio.sleep(0.05)
        assert [(b.bidder_id, b.amount.amount_minor, b.price.amount_minor, b.leader_id) for b in bids] == expected
    actions = (await stubs[1].ListCrierActions(pb.ListCrierActionsRequest(lot_id=lot.id), metadata=CRIER)).actions
    assert [(a.action, a.actor_id) for a in actions] == [("LotOpened", "catalog")]


async def test_a_low_bid_is_refused_with_the_minimum_through_either_replica(events, stubs):
    lot = english_lot()
    await open_lot(events, stubs, lot)
    await stubs[0].PlaceBid(bid(lot.id, 2_000), metadata=ALICE)
    for stub in stubs:
        code, reason, metadata = await refusal(stub.PlaceBid(bid(lot.id, 1_000), metadata=BOB))
        assert (code, reason, metadata) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "BID_TOO_LOW",
            {"min_amount_minor": "1100"},
        )


async def test_a_seller_may_not_bid_on_their_own_lot(events, stubs):
    lot = english_lot(seller="seller-1")
    await open_lot(events, stubs, lot)
    code, reason, _ = await refusal(stubs[0].PlaceBid(bid(lot.id, 5_000), metadata=SELLER))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "OWN_LOT")


async def test_a_bidder_banned_by_payment_is_refused_on_every_replica(events, stubs):
    lot = english_lot()
    await open_lot(events, stubs, lot)
    carol = token("carol", Role.BIDDER)
    await stubs[0].PlaceBid(bid(lot.id, 2_000), metadata=carol)
    await events.ban("carol")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    amount = 3_000
    refused: grpc.aio.AioRpcError | None = None
    while refused is None:  # the ban reaches every replica's book shortly after it is published
        try:
            await stubs[1].PlaceBid(bid(lot.id, amount), metadata=carol)
        except grpc.aio.AioRpcError as exc:
            refused = exc
        amount += 1_000
        assert loop.time() < deadline, "the ban never reached the lot's owner"
        await asyncio.sleep(0.05)
    info = error_info_of(refused)
    assert (refused.code(), info.reason if info else "") == (grpc.StatusCode.PERMISSION_DENIED, "BIDDER_BANNED")
    code, reason, _ = await refusal(stubs[0].PlaceBid(bid(lot.id, 90_000), metadata=carol))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "BIDDER_BANNED")


async def test_a_replica_behind_on_eligibility_refuses_bids_until_it_catches_up(cluster, events, stubs):
    """An unreadable ban stops every replica's follower there (never skipped): bids are UNAVAILABLE
    and health NOT_SERVING until the event is removed from the stream; then bidding resumes."""
    lot = english_lot()
    await open_lot(events, stubs, lot)
    ack = await events.js.publish("gavel.payment.bidder.banned.dave", b"\xff\xff not a BidderBanned")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        try:
            await stubs[0].PlaceBid(bid(lot.id, 2_000), metadata=ALICE)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                break
        assert loop.time() < deadline, "a replica kept taking bids with an unreadable eligibility event"
        await asyncio.sleep(0.05)
    code, _, _ = await refusal(stubs[1].PlaceBid(bid(lot.id, 9_000), metadata=BOB))
    assert code == grpc.StatusCode.UNAVAILABLE
    assert not any(_serving(replica) for replica in cluster.replicas)
    stopped = [line for line in log_lines(cluster.replicas[0]) if line.get("event", "").startswith("follower stopped")]
    assert [line["stream_sequence"] for line in stopped][:1] == [ack.seq]

    await events.js.delete_msg("PAYMENT_EVENTS", ack.seq)
    deadline = loop.time() + 30
    accepted = None
    while accepted is None:
        try:
            accepted = await stubs[1].PlaceBid(bid(lot.id, 9_000), metadata=BOB)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)
    assert accepted.leading
    for replica in cluster.replicas:
        cluster.wait_serving(replica, timeout_s=30)


async def test_a_tick_that_cannot_be_appended_fires_later(cluster, events, stubs):
    """The lot's deadline passes while the log refuses appends (the stream is full): the tick
    fails, is logged, and is tried again with backoff; once the log takes appends again it fires."""
    lot = english_lot(duration_ms=6_000)  # time to fill the log before the close, even on a busy machine
    await open_lot(events, stubs, lot)
    await stubs[0].PlaceBid(bid(lot.id, 5_000), metadata=ALICE)
    info = await events.js.stream_info("ROOM_EVENTS")
    full = dataclasses.replace(info.config, max_msgs=info.state.messages, discard=DiscardPolicy.NEW)
    await events.js.update_stream(full)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while not any(
            "due wake-up failed" in line.get("event", "") for replica in cluster.replicas for line in log_lines(replica)
        ):
            assert loop.time() < deadline, "the tick never ran into the full log"
            await asyncio.sleep(0.1)
        assert (await ready(stubs[1], lot.id)).phase == pb.LOT_PHASE_OPEN  # not closed: nothing was stored
    finally:
        await events.js.update_stream(info.config)
    state = await ready(stubs[1], lot.id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while state.phase != pb.LOT_PHASE_SOLD:
        assert loop.time() < deadline, f"the failed tick never fired: {state}"
        await asyncio.sleep(0.1)
        state = await ready(stubs[1], lot.id)
    assert state.hammer_price.amount_minor == 1_000
    assert (
        state.buyer_id
        == (await stubs[1].GetLotState(pb.GetLotStateRequest(lot_id=lot.id), metadata=ALICE)).state.viewer_alias
    )


def _serving(replica) -> bool:
    with grpc.insecure_channel(replica.address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="gavel.room.v1.RoomService"), timeout=2
        )
    return reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_bidder_bids_only_in_the_room_they_are_seated_in(events, stubs):
    group = new_id()
    rooms = [english_lot(rooms=2, room_index=i, group=group, lot_id=group if i == 0 else None) for i in range(2)]
    for lot in rooms:
        await open_lot(events, stubs, lot)
    dave = token("dave", Role.BIDDER)
    await events.seat(rooms[0], "dave")
    accepted = await stubs[1].PlaceBid(bid(rooms[0].id, 2_000), metadata=dave)
    assert accepted.leading
    code, reason, _ = await refusal(stubs[0].PlaceBid(bid(rooms[1].id, 2_000), metadata=dave))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_SEATED")


async def watch(stub: pb_grpc.RoomServiceStub, lot_id: str, after: int, count: int) -> list[pb.WatchResponse]:
    got: list[pb.WatchResponse] = []
    call = stub.Watch(pb.WatchRequest(lots=[pb.LotCursor(lot_id=lot_id, after_sequence=after)]))
    try:
        async with asyncio.timeout(10):
            async for item in call:
                got.append(item)
                if len(got) == count:
                    break
    finally:
        call.cancel()
    return got


async def test_watchers_join_late_and_resume_without_gaps_or_duplicates(events, stubs):
    lot = english_lot()
    await open_lot(events, stubs, lot)
    for amount, who in ((2_000, ALICE), (9_000, BOB), (5_000, ALICE)):
        with contextlib.suppress(grpc.aio.AioRpcError):
            await stubs[0].PlaceBid(bid(lot.id, amount), metadata=who)
    length = len(await events.log(lot.id))
    late = await watch(stubs[1], lot.id, 0, length)
    assert [item.lot_sequence for item in late] == list(range(1, length + 1))
    assert late[0].events == []  # the terms batch: nothing public in it
    bids = [e.bid_accepted for item in late for e in item.events if e.WhichOneof("event") == "bid_accepted"]
    assert bids
    assert all(not b.HasField("amount") for b in bids)

    resumed_task = asyncio.create_task(watch(stubs[0], lot.id, 3, length - 3 + 1))
    await asyncio.sleep(0.3)
    await stubs[1].PlaceBid(bid(lot.id, 20_000), metadata=ALICE)  # arrives live
    resumed = await resumed_task
    assert [item.lot_sequence for item in resumed] == list(range(4, length + 2))


async def test_two_writers_racing_on_one_lot_exactly_one_append_wins(cluster):
    connections = [await nats.connect(cluster.nats_url) for _ in range(2)]
    try:
        logs = [JetStreamEventLog(nc, nc.jetstream()) for nc in connections]
        lot = english_lot()
        info, terms = lot_from_message(lot)

        def first_batch(writer: str) -> Batch:
            configured = LotConfigured(lot.id, 1, info, terms)
            return Batch(
                lot.id,
                1,
                f"configure-{writer}",
                "Configure",
                writer,
                "",
                1,
                (configured,),
                LotSummary("scheduled", 0, None, None),
                "USD",
            )

        outcomes = await asyncio.gather(
            *(log.append(first_batch(f"w{i}"), 0) for i, log in enumerate(logs)), return_exceptions=True
        )
        assert sum(isinstance(o, WrongLastSequence) for o in outcomes) == 1
        winner = next(o for o in outcomes if not isinstance(o, BaseException))
        stored = await logs[0].read(lot.id)
        assert [s.stream_sequence for s in stored] == [winner.stream_sequence]
        with pytest.raises(WrongLastSequence):
            await logs[1].append(first_batch("late"), 0)
    finally:
        for nc in connections:
            await nc.close()


class _NoIndex:
    async def mark(self, partition: int, lot_id: str) -> None:
        return None

    async def unmark(self, partition: int, lot_id: str) -> None:
        return None

    async def list(self, partition: int) -> list[str]:
        return []


class _Terms:
    def __init__(self, lot: res.Lot) -> None:
        self.found = PublishedLot(*lot_from_message(lot), lot.SerializeToString())

    async def started(self, lot_id: str):
        return self.found


def _owner(nc, lot: res.Lot, announcer, spawn) -> LotDirectory:
    """A replica's lot directory on its own connection that believes it owns every partition."""
    deps = LotDeps(
        log=JetStreamEventLog(nc, nc.jetstream()),
        announcer=announcer,
        active=_NoIndex(),
        terms=_Terms(lot),
        clock=wall_clock_ms,
        wakeups=WakeUps(wall_clock_ms, lambda lot_id: None),
        append_slots=asyncio.Semaphore(8),
        spawn=spawn,
        draw_secret=draw_secret,
    )
    return LotDirectory(deps, 64, lambda partition: True)


async def test_two_owners_bidding_on_one_lot_leave_one_gapless_log(cluster, events):
    """Both replicas believe they own the lot (a lease changed hands under one of them): every
    command lands exactly once, in one sequence, and each answer matches the log."""
    lot = english_lot()
    connections = [await nats.connect(cluster.nats_url) for _ in range(2)]
    tasks: set[asyncio.Task] = set()

    def spawn(coro):
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    try:
        owners = [_owner(nc, lot, NatsAnnouncer(nc, TEST_PSEUDONYMS), spawn) for nc in connections]
        actors = [await owner.loaded(lot.id) for owner in owners]
        await actors[0].execute(CommandRequest("open", "OpenLot", "crier", "open", OpenLot("crier")))

        def request(i: int) -> CommandRequest:
            bidder = f"bidder-{i % 4}"
            return CommandRequest(
                f"bid-{i}", "PlaceBid", bidder, f"fp-{i}", PlaceBid(f"bid-{i}", bidder, 1_000 + 300 * i)
            )

        outcomes = await asyncio.gather(*(actors[i % 2].execute(request(i)) for i in range(20)), return_exceptions=True)
        log = await events.log(lot.id)
        sequences = [batch.lot_sequence for _, batch in log]
        assert sequences == list(range(1, len(log) + 1))
        by_command = {batch.command_id: batch.lot_sequence for _, batch in log}
        assert len(by_command) == len(log)
        for i, outcome in enumerate(outcomes):
            if isinstance(outcome, BaseException):
                assert isinstance(outcome, GavelError), outcome  # a refusal, never a crash
            else:
                assert by_command[f"bid-{i}"] == outcome.lot_sequence
    finally:
        for task in list(tasks):
            task.cancel()
        for nc in connections:
            await nc.close()


class _DroppingAnnouncer:
    """The owner's announcements, except those of batches that end a lot (lost without a trace)."""

    def __init__(self, nc) -> None:
        self._real = NatsAnnouncer(nc, TEST_PSEUDONYMS)

    async def announce(self, lot_id: str, stream_sequence: int, encoded: bytes, sale_id: str = "") -> None:
        if ev.LotEventBatch.FromString(encoded).after.phase in ("sold", "unsold"):
            return
        await self._real.announce(lot_id, stream_sequence, encoded, sale_id)


async def test_a_watcher_whose_last_announcement_was_dropped_still_receives_lot_sold(cluster):
    """On the real NATS: an owner whose final announcement never leaves, a watcher's feed on
    another connection; the feed's tail check reads the final batch from the log."""
    lot = english_lot()
    owner_nc, watcher_nc = await nats.connect(cluster.nats_url), await nats.connect(cluster.nats_url)
    tasks: set[asyncio.Task] = set()

    def spawn(coro):
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    feeds = Feeds(NatsLiveFeeds(watcher_nc, TEST_PSEUDONYMS), spawn, wall_clock_ms, tail_check_ms=300)
    runner = spawn(feeds.run(every_s=0.1))
    try:
        owner = await _owner(owner_nc, lot, _DroppingAnnouncer(owner_nc), spawn).loaded(lot.id)
        watcher = Watcher()
        feeds.watch(watcher, lot.id, 0)
        await owner.execute(CommandRequest("open", "OpenLot", "crier", "open", OpenLot("crier")))
        await owner.execute(CommandRequest("b1", "PlaceBid", "alice", "b1", PlaceBid("b1", "alice", 5_000)))
        stop = CommandRequest("w", "Withdraw", "admin", "w", WithdrawLot("admin", "ends the lot"))
        await owner.execute(stop)
        seen = []
        while not seen or seen[-1].after.phase != "unsold":
            _, item = await asyncio.wait_for(watcher.next(), timeout=10)
            seen.append(item.payload)
        assert [response.lot_sequence for response in seen] == [1, 2, 3, 4]
    finally:
        runner.cancel()
        await feeds.close_all()
        for task in list(tasks):
            task.cancel()
        await owner_nc.close()
        await watcher_nc.close()
