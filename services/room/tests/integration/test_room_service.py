"""One room replica in-process (the shared Runtime on a free port) with the session's nats-server,
SQLite, and a stand-in catalog gRPC server: the crier and the floor, a multi-room product,
confirmation, the lucky secret, timers, the projections and CloseLot, migrations."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import nats
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from room_cluster import CATALOG_SPEC, DEFAULT_STAFF, Events, english_lot, new_id, token, usd
from sqlalchemy import inspect

from gavel.catalog.v1 import catalog_service_pb2 as cat
from gavel.catalog.v1 import catalog_service_pb2_grpc as cat_grpc
from gavel.catalog.v1 import resources_pb2 as res
from gavel.room.v1 import room_service_pb2 as pb
from gavel.room.v1 import room_service_pb2_grpc as pb_grpc
from gavel_core.auth import Role
from gavel_kit import settings as gavel_settings
from gavel_kit.consumers import ensure_stream_exists
from gavel_kit.db import Database
from gavel_kit.grpc.errors import error_info_of
from gavel_kit.service import Runtime
from gavel_kit.testing import identities
from room.adapters.orm import metadata
from room.domain.draws import verify
from room.main import MIGRATIONS, definition

pytestmark = pytest.mark.integration

CRIER = token("crier-1", Role.CRIER)
DEVICE = token("device-7", Role.DEVICE)
SELLER = token("seller-1", Role.SELLER)
OTHER_SELLER = token("seller-2", Role.SELLER)
ADMIN = token("admin-1", Role.SALE_ADMIN)
VERSION_TABLE = definition().version_table


@dataclass
class FakeCatalog(cat_grpc.CatalogServiceServicer):
    """The catalog as the room calls it: the GetLot (is it live?) and GetSeat fallbacks, CloseLot."""

    lots: dict[str, res.Lot] = field(default_factory=dict)  # the published lots, with their state
    seats: set[tuple[str, str]] = field(default_factory=set)
    closed: dict[str, cat.CloseLotRequest] = field(default_factory=dict)
    refuse_closes: bool = False

    async def GetLot(self, request, context):
        if request.lot_id not in self.lots:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"lot {request.lot_id!r} not found")
        lot = self.lots[request.lot_id]
        return cat.GetLotResponse(lot=lot, published=lot if lot.state != res.LOT_STATE_DRAFT else None)

    async def GetSeat(self, request, context):
        return cat.GetSeatResponse(seated=(request.lot_id, request.bidder_id) in self.seats)

    async def CloseLot(self, request, context):
        if self.refuse_closes:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the lot is not live")
        self.closed.setdefault(request.lot_id, request)
        return cat.CloseLotResponse()


@dataclass
class Room:
    runtime: Runtime
    stub: pb_grpc.RoomServiceStub
    events: Events
    catalog: FakeCatalog

    async def ready(self, lot_id: str) -> pb.LotState:
        for _ in range(200):
            try:
                return (await self.stub.GetLotState(pb.GetLotStateRequest(lot_id=lot_id))).state
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                await asyncio.sleep(0.05)
        raise TimeoutError(lot_id)

    async def scheduled(self, lot: res.Lot) -> pb.LotState:
        """The catalog starts the lot; the room runs it (and opens it unless a crier does)."""
        await self.events.start(lot)
        return await self.ready(lot.id)

    async def open(self, lot_id: str, asking: int | None = None) -> pb.OpenLotResponse:
        """The crier opens the lot; a timed lot the room opened from its LotStarting answers as it stands."""
        request = pb.OpenLotRequest(request_id=new_id(), lot_id=lot_id)
        if asking is not None:
            request.asking.CopyFrom(usd(asking))
        try:
            return await self.stub.OpenLot(request, metadata=CRIER)
        except grpc.aio.AioRpcError as exc:
            info = error_info_of(exc)
            if info is None or info.reason != "LOT_ALREADY_OPENED":
                raise
        state = (await self.stub.GetLotState(pb.GetLotStateRequest(lot_id=lot_id))).state
        return pb.OpenLotResponse(result=pb.LotCommandResult(lot_sequence=state.lot_sequence, state=state))

    async def until(self, predicate, timeout_s: float = 10):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            result = await predicate()
            if result:
                return result
            assert loop.time() < deadline, "timed out"
            await asyncio.sleep(0.1)

    async def phase(self, lot_id: str) -> int:
        return (await self.stub.GetLotState(pb.GetLotStateRequest(lot_id=lot_id))).state.phase


@pytest.fixture
async def room(nats_url: str, tmp_path: Path) -> AsyncIterator[Room]:
    catalog = FakeCatalog()
    catalog_server = grpc.aio.server()
    cat_grpc.add_CatalogServiceServicer_to_server(catalog, catalog_server)
    catalog_port = catalog_server.add_insecure_port("127.0.0.1:0")
    await catalog_server.start()
    nc = await nats.connect(nats_url)
    await ensure_stream_exists(nc.jetstream(), CATALOG_SPEC)
    await Events(nc).staff("sale-1", *DEFAULT_STAFF)
    env = {
        "GAVEL_VAR_DIR": str(tmp_path),
        "GAVEL_NATS_URL": nats_url,
        "GAVEL_ROOM_GRPC_PORT": "0",
        "GAVEL_ROOM_METRICS_PORT": "0",
        "GAVEL_CATALOG_ADDR": f"127.0.0.1:{catalog_port}",
        "GAVEL_ROOM_REPLICA_ID": f"in-process-{new_id()[:8]}",
        "GAVEL_ROOM_CLOSING_SOON_S": "1",
        **identities.default().env(),
    }
    runtime = Runtime(definition(), gavel_settings.load("room", env))
    await runtime.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}")
    try:
        yield Room(runtime, pb_grpc.RoomServiceStub(channel), Events(nc), catalog)
    finally:
        await channel.close()
        await runtime.stop()
        await nc.close()
        await catalog_server.stop(0)


async def refusal(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    info = error_info_of(caught.value)
    return caught.value.code(), info.reason if info else ""


def bid(lot_id: str, amount: int) -> pb.PlaceBidRequest:
    return pb.PlaceBidRequest(request_id=new_id(), lot_id=lot_id, max_amount=usd(amount))


async def test_a_crier_lot_with_floor_and_online_bids_is_hammered_reported_and_projected(room: Room):
    lot = english_lot(close=res.ENGLISH_CLOSE_CRIER, reopen_grace_ms=300, opening=5_000)
    await room.scheduled(lot)
    await room.stub.RegisterPaddle(
        pb.RegisterPaddleRequest(request_id=new_id(), sale_id=lot.sale_id, paddle="12", bidder_id="floor-bidder"),
        metadata=CRIER,
    )
    opened = await room.open(lot.id, asking=5_000)
    assert opened.result.state.phase == pb.LOT_PHASE_OPEN
    assert opened.result.state.asking.amount_minor == 5_000
    floor = await room.stub.FloorBid(
        pb.FloorBidRequest(request_id=new_id(), lot_id=lot.id, paddle="12", force=900, press_ms=200), metadata=DEVICE
    )
    assert (floor.bidder_id, floor.jumps, floor.amount.amount_minor) == ("floor-bidder", 3, 5_200)
    online = await room.stub.PlaceBid(bid(lot.id, 100_000), metadata=token("alice", Role.BIDDER))
    assert online.leading
    assert online.price.amount_minor == 5_300
    code, reason = await refusal(
        room.stub.FloorBid(
            pb.FloorBidRequest(request_id=new_id(), lot_id=lot.id, paddle="99", force=10, press_ms=10), metadata=DEVICE
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PADDLE_NOT_REGISTERED")
    for rpc, request in (
        (room.stub.Pause, pb.PauseRequest),
        (room.stub.Resume, pb.ResumeRequest),
        (room.stub.GoingOnce, pb.GoingOnceRequest),
        (room.stub.GoingTwice, pb.GoingTwiceRequest),
        (room.stub.Hammer, pb.HammerRequest),
    ):
        await rpc(request(request_id=new_id(), lot_id=lot.id), metadata=CRIER)
    await room.until(lambda: _is(room, lot.id, pb.LOT_PHASE_SOLD))  # final once the reopen grace ran out

    async def projected():
        result = await room.stub.GetLotResult(pb.GetLotResultRequest(lot_id=lot.id), metadata=ADMIN)
        return result.result

    result = await room.until(lambda: _found(projected))
    assert (result.outcome, result.buyer_id, result.hammer_price.amount_minor) == ("sold", "alice", 5_300)
    bids = (await room.stub.ListBids(pb.ListBidsRequest(lot_id=lot.id), metadata=CRIER)).bids
    assert [(b.source, b.bidder_id, b.paddle) for b in bids] == [
        ("floor", "floor-bidder", "12"),
        ("online", "alice", ""),
    ]
    actions = (await room.stub.ListCrierActions(pb.ListCrierActionsRequest(lot_id=lot.id), metadata=CRIER)).actions
    assert [a.action for a in actions] == [
        "LotOpened",
        "LotPaused",
        "LotResumed",
        "GoingOnce",
        "GoingTwice",
        "Hammered",
    ]
    assert all(a.actor_id == "crier-1" for a in actions)
    closed = await room.until(lambda: _value(room.catalog.closed.get(lot.id)))
    assert (closed.request_id, closed.outcome, closed.winner_id) == (f"{lot.id}:close", res.LOT_OUTCOME_SOLD, "alice")
    assert (
        closed.room_sequence == (await room.stub.GetLotState(pb.GetLotStateRequest(lot_id=lot.id))).state.lot_sequence
    )


async def _is(room: Room, lot_id: str, phase: int) -> bool:
    return await room.phase(lot_id) == phase


async def _found(read):
    try:
        return await read()
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


async def _value(value):
    return value


async def test_a_product_of_three_runs_as_three_independent_rooms(room: Room):
    group = new_id()
    lots = [
        english_lot(lot_id=group if i == 0 else None, group=group, rooms=3, room_index=i, duration_ms=2_500)
        for i in range(3)
    ]
    for i, lot in enumerate(lots):
        await room.scheduled(lot)
        await room.events.seat(lot, f"bidder-{i}")
    room.catalog.seats.add((lots[2].id, "late-bidder"))  # seated, but its event has not arrived
    for lot in lots:
        await room.open(lot.id)
    for i, lot in enumerate(lots):
        reply = await room.stub.PlaceBid(bid(lot.id, 2_000 + i), metadata=token(f"bidder-{i}", Role.BIDDER))
        assert reply.leading
    code, reason = await refusal(room.stub.PlaceBid(bid(lots[1].id, 9_000), metadata=token("bidder-0", Role.BIDDER)))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_SEATED")
    late = await room.stub.PlaceBid(bid(lots[2].id, 5_000), metadata=token("late-bidder", Role.BIDDER))
    assert late.leading
    for lot in lots:
        await room.until(lambda lot=lot: _is(room, lot.id, pb.LOT_PHASE_SOLD))
    buyers = [
        (await room.stub.GetLotState(pb.GetLotStateRequest(lot_id=lot.id), metadata=ADMIN)).state.buyer_id
        for lot in lots
    ]
    assert buyers == ["bidder-0", "bidder-1", "late-bidder"]  # staff see accounts; the public a pseudonym
    public = (await room.stub.GetLotState(pb.GetLotStateRequest(lot_id=lots[0].id))).state.buyer_id
    assert public.startswith("bidder-")
    assert public != "bidder-0"
    log = await room.events.log(lots[0].id)
    assert any(e.WhichOneof("event") == "closing_soon" for _, b in log for e in b.events)


async def test_a_live_lot_whose_start_has_not_arrived_comes_from_the_catalog_and_a_draft_never(room: Room):
    draft = english_lot()
    draft.state = res.LOT_STATE_DRAFT
    scheduled = english_lot()
    scheduled.state = res.LOT_STATE_SCHEDULED
    live = english_lot(close=res.ENGLISH_CLOSE_CRIER)
    live.state = res.LOT_STATE_LIVE
    for lot in (draft, scheduled, live):
        room.catalog.lots[lot.id] = lot
    for lot in (draft, scheduled):
        code, _ = await refusal(room.stub.GetLotState(pb.GetLotStateRequest(lot_id=lot.id)))
        assert code == grpc.StatusCode.NOT_FOUND
        code, _ = await refusal(
            room.stub.OpenLot(pb.OpenLotRequest(request_id=new_id(), lot_id=lot.id), metadata=CRIER)
        )
        assert code == grpc.StatusCode.NOT_FOUND
    state = await room.ready(live.id)
    assert (state.phase, state.format) == (pb.LOT_PHASE_SCHEDULED, "english")
    opened = await room.open(live.id)
    assert opened.result.lot_sequence == 2
    [(_, first), *_] = await room.events.log(live.id)
    assert first.events[0].lot_configured.lot.SerializeToString(deterministic=True) == live.SerializeToString(
        deterministic=True
    )


async def test_watchers_never_see_the_lucky_option_until_the_close_reveals_it_as_committed(room: Room):
    lot = res.Lot(
        id=new_id(),
        sale_id="sale-1",
        seller_id="seller-1",
        room_count=1,
        currency="USD",
        format=res.FORMAT_LUCKY,
        lucky=res.LuckyParams(options=["red", "green", "blue"], price=usd(2_500), window_ms=60_000),
    )
    lot.group_id = lot.id
    await room.scheduled(lot)
    await room.open(lot.id)
    picks: dict[str, int] = {}
    last = None
    for bidder, option in (("eve", 0), ("frank", 1), ("gina", 2)):  # the room drew one of these
        last = await room.stub.PickOption(
            pb.PickOptionRequest(request_id=new_id(), lot_id=lot.id, option=option), metadata=token(bidder, Role.BIDDER)
        )
        picks[bidder] = option
        if last.correct:
            break
    assert last is not None
    assert last.correct
    assert last.state.phase == pb.LOT_PHASE_SOLD
    winner = last.state.buyer_id
    seen = []
    call = room.stub.Watch(pb.WatchRequest(lots=[pb.LotCursor(lot_id=lot.id)]))
    async with asyncio.timeout(10):
        async for item in call:
            seen.extend(item.events)
            if item.lot_sequence == last.lot_sequence:
                break
    call.cancel()
    kinds = [e.WhichOneof("event") for e in seen]
    window = next(e.lucky_window_opened for e in seen if e.WhichOneof("event") == "lucky_window_opened")
    revealed = next(e.lucky_draw_revealed for e in seen if e.WhichOneof("event") == "lucky_draw_revealed")
    shown_picks = [e.option_picked for e in seen if e.WhichOneof("event") == "option_picked"]
    assert not window.HasField("winning_option")
    aliases = [
        (
            await room.stub.GetLotState(pb.GetLotStateRequest(lot_id=lot.id), metadata=token(who, Role.BIDDER))
        ).state.viewer_alias
        for who in picks
    ]
    assert [p.bidder for p in shown_picks] == aliases  # watchers see per-sale pseudonyms; each bidder knows theirs
    assert not set(picks) & set(aliases)
    assert not any(p.HasField("option") or p.HasField("correct") for p in shown_picks)
    assert kinds.index("lucky_window_opened") < kinds.index("option_picked") < kinds.index("lucky_draw_revealed")
    # any bidder can now check that the option was fixed before the first pick
    assert revealed.option == picks[winner]
    assert verify(lot.id, revealed.draw, revealed.option, revealed.nonce, window.commitment)


async def test_a_declined_win_passes_to_the_runner_up_who_confirms(room: Room):
    lot = english_lot(duration_ms=1_500)
    lot.confirmation_timeout_ms = 60_000
    await room.scheduled(lot)
    await room.open(lot.id)
    grace, hank = token("grace", Role.BIDDER), token("hank", Role.BIDDER)
    await room.stub.PlaceBid(bid(lot.id, 3_000), metadata=hank)
    await room.stub.PlaceBid(bid(lot.id, 8_000), metadata=grace)
    await room.until(lambda: _is(room, lot.id, pb.LOT_PHASE_AWAITING_CONFIRMATION))
    code, reason = await refusal(
        room.stub.ConfirmWin(pb.ConfirmWinRequest(request_id=new_id(), lot_id=lot.id), metadata=hank)
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NOT_OFFERED_TO_BIDDER")
    await room.stub.DeclineWin(pb.DeclineWinRequest(request_id=new_id(), lot_id=lot.id), metadata=grace)
    confirmed = await room.stub.ConfirmWin(pb.ConfirmWinRequest(request_id=new_id(), lot_id=lot.id), metadata=hank)
    assert confirmed.result.state.phase == pb.LOT_PHASE_SOLD
    assert confirmed.result.state.buyer_id == "hank"

    async def projected():
        return (await room.stub.GetLotResult(pb.GetLotResultRequest(lot_id=lot.id), metadata=ADMIN)).result

    result = await room.until(lambda: _found(projected))
    assert (result.buyer_id, list(result.penalised)) == ("hank", ["grace"])


async def test_only_the_lots_vendor_decides_as_vendor(room: Room):
    lot = english_lot(seller="seller-1")
    await room.scheduled(lot)
    await room.open(lot.id)
    code, reason = await refusal(
        room.stub.AcceptByVendor(pb.AcceptByVendorRequest(request_id=new_id(), lot_id=lot.id), metadata=OTHER_SELLER)
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_VENDOR")
    code, reason = await refusal(
        room.stub.AcceptByVendor(pb.AcceptByVendorRequest(request_id=new_id(), lot_id=lot.id), metadata=SELLER)
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "VENDOR_CANNOT_ACCEPT")


async def test_migrations_build_exactly_the_mapped_schema(database_url, tmp_path):
    env = {**os.environ, "GAVEL_VAR_DIR": str(tmp_path), "GAVEL_ROOM_DATABASE_URL": database_url}
    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "room.main", "migrate", env=env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(migrate.communicate(), 60)
    assert migrate.returncode == 0, stderr.decode()
    db = Database(database_url)
    try:
        await db.migrate(MIGRATIONS, VERSION_TABLE)  # again: already at head
        async with db.engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            differences = await connection.run_sync(
                lambda c: [
                    d
                    for d in compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), metadata)
                    if VERSION_TABLE not in str(d)
                ]
            )
    finally:
        await db.dispose()
    assert tables == {*metadata.tables, VERSION_TABLE}
    assert differences == []


async def test_memory_held_for_watchers_is_released_when_they_leave(room: Room):
    """2,000 Watch streams — most on lots that do not exist (NOT_FOUND at once), the rest on a real
    lot and then cancelled — leave the replica's traced memory within 10 % of where it was."""
    import gc
    import tracemalloc

    lot = english_lot(close=res.ENGLISH_CLOSE_CRIER)
    await room.scheduled(lot)
    unknown = [f"ghost-{i}" for i in range(100)]

    async def one(index: int) -> None:
        if index % 4:
            request = pb.WatchRequest(lots=[pb.LotCursor(lot_id=unknown[index % 100])])
            code, _ = await refusal(_drain(room.stub.Watch(request, timeout=60)))
            assert code == grpc.StatusCode.NOT_FOUND
            return
        stream = room.stub.Watch(pb.WatchRequest(lots=[pb.LotCursor(lot_id=lot.id)]), timeout=60)
        async for _ in stream:
            break
        stream.cancel()

    async def streams(count: int, start: int) -> None:
        for first in range(start, start + count, 25):  # 25 streams at a time: the shared machine is busy
            await asyncio.gather(*(one(i) for i in range(first, first + 25)))

    tracemalloc.start()
    try:
        await streams(400, 0)  # warm up: caches, channels, the feed of the real lot
        await _quiet(room)
        gc.collect()
        baseline = _held_by_the_service()
        await streams(2_000, 400)
        await _quiet(room)
        for _ in range(50):  # what the last streams left in flight (catalog lookups, timers) finishes
            gc.collect()
            after = _held_by_the_service()
            if after <= baseline * 1.10:
                break
            await asyncio.sleep(0.2)
    finally:
        tracemalloc.stop()
    assert after <= baseline * 1.10, f"{after} bytes traced after 2,000 streams closed, {baseline} before"


def _held_by_the_service() -> int:
    """Bytes allocated by the room and the kit's code (not by pytest's captured logs of the run)."""
    import tracemalloc

    kept = [tracemalloc.Filter(True, "*/room/*"), tracemalloc.Filter(True, "*/gavel_kit/*")]
    return sum(stat.size for stat in tracemalloc.take_snapshot().filter_traces(kept).statistics("filename"))


async def _quiet(room: Room) -> None:
    """Wait until the replica streams to no watcher any more (cancelled streams end server side)."""
    from room.adapters.metrics import WATCH_STREAMS

    for _ in range(100):
        if WATCH_STREAMS._value.get() == 0:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)


async def _drain(stream) -> None:
    async for _ in stream:
        pass
