"""The room's trust boundary, tried from outside against two replicas as processes on a nats-server
running the generated auth config: what a stranger on the bus or the API could do before, refused.

- nobody connects to NATS without credentials; a service other than the room cannot forward a
  command, announce a batch or append to ROOM_EVENTS; a forwarded call's credential is verified by
  the owner (a token from another key is refused);
- announcements carry only the public projection (no proxy maxima, actors or request ids);
- a request id belongs to its caller; request ids, forces and amounts are bounded; garbage
  protobuf is INVALID_ARGUMENT; a revoked account stops bidding at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import nats
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from room_cluster import Events, RoomCluster, english_lot, new_id, room_cluster, token, usd

from gavel.events.v1 import account_events_pb2 as aev
from gavel.events.v1 import room_events_pb2 as ev
from gavel.room.v1 import forwarding_pb2 as fw
from gavel.room.v1 import room_service_pb2 as pb
from gavel.room.v1 import room_service_pb2_grpc as pb_grpc
from gavel_core.auth import Role
from gavel_kit import nats as gavel_nats
from gavel_kit.grpc.errors import bad_request_of
from gavel_kit.testing.identities import Identities
from room.app.partitions import partition_of

pytestmark = pytest.mark.integration

CRIER = token("crier-1", Role.CRIER)
ALICE = token("alice", Role.BIDDER)
BOB = token("bob", Role.BIDDER)
DEVICE = token("device-1", Role.DEVICE)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoomCluster]:
    with room_cluster(Path(tmp_path_factory.mktemp("room-trust")), replicas=2) as running:
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


async def connect_as(cluster: RoomCluster, user: str) -> nats.NATS:
    return await gavel_nats.connect(
        cluster.server_url, f"test-{user}", credentials=cluster.credentials[user], first_connect_timeout_s=5
    )


async def open_lot(events: Events, stubs: list[pb_grpc.RoomServiceStub]) -> str:
    """The catalog starts a timed lot: the room runs it and opens it."""
    lot = english_lot()
    await events.start(lot)
    for _ in range(200):
        try:
            state = (await stubs[0].GetLotState(pb.GetLotStateRequest(lot_id=lot.id))).state
            if state.phase == pb.LOT_PHASE_OPEN:
                break
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.05)
    return lot.id


def bid(lot_id: str, amount: int, request_id: str | None = None) -> pb.PlaceBidRequest:
    return pb.PlaceBidRequest(
        request_id=new_id() if request_id is None else request_id, lot_id=lot_id, max_amount=usd(amount)
    )


async def code_of(call) -> tuple[grpc.StatusCode, list[str]]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    details = bad_request_of(caught.value)
    return caught.value.code(), [v.field for v in details.field_violations] if details else []


async def test_a_client_without_credentials_cannot_connect_to_nats(cluster):
    with pytest.raises(Exception, match="Authorization"):
        await nats.connect(cluster.server_url, allow_reconnect=False, max_reconnect_attempts=0)


async def test_only_room_replicas_may_forward_announce_or_append(cluster, events, stubs):
    lot_id = await open_lot(events, stubs)
    before = len(await events.log(lot_id))
    intruder = await connect_as(cluster, "catalog")
    try:
        forged = fw.ForwardedCall(
            method="PlaceBid", request=bid(lot_id, 50_000).SerializeToString(), credential="not-a-token"
        )
        with pytest.raises(nats.errors.Error):  # the server refuses the publish: nobody answers
            await intruder.request(f"gavel.room.cmd.{partition_of(lot_id, 64)}", forged.SerializeToString(), timeout=1)
        batch = ev.LotEventBatch(lot_id=lot_id, lot_sequence=before + 1, command="Hammer")
        await intruder.publish(
            f"gavel.room.live.{lot_id}", batch.SerializeToString(), headers={"Gavel-Stream-Sequence": "999"}
        )
        with pytest.raises((nats.errors.Error, TimeoutError)):  # a permissions violation: no ack ever comes
            await intruder.jetstream().publish(f"gavel.room.lot.{lot_id}", batch.SerializeToString(), timeout=1)
    finally:
        await intruder.close()
    assert len(await events.log(lot_id)) == before  # nothing stored
    state = (await stubs[0].GetLotState(pb.GetLotStateRequest(lot_id=lot_id))).state
    assert state.phase == pb.LOT_PHASE_OPEN


async def test_the_owner_verifies_a_forwarded_credential_itself(cluster, events, stubs, tmp_path):
    lot_id = await open_lot(events, stubs)
    elsewhere = Identities(tmp_path / "other-keys")  # a key this deployment does not know
    forged = fw.ForwardedCall(
        method="PlaceBid",
        request=bid(lot_id, 50_000).SerializeToString(),
        credential=elsewhere.user_token("mallory", Role.BIDDER),
    )
    before = [b.command for _, b in await events.log(lot_id)]
    replica = await connect_as(cluster, "room")  # even a room replica's credentials do not forge a caller
    try:
        reply = fw.ForwardedReply.FromString(
            (
                await replica.request(
                    f"gavel.room.cmd.{partition_of(lot_id, 64)}", forged.SerializeToString(), timeout=5
                )
            ).data
        )
    finally:
        await replica.close()
    assert reply.WhichOneof("outcome") == "error"
    assert reply.error.kind == "Unauthenticated"
    assert [b.command for _, b in await events.log(lot_id)] == before


async def test_announcements_carry_only_the_public_projection(cluster, events, stubs):
    lot_id = await open_lot(events, stubs)
    seen: asyncio.Queue = asyncio.Queue()
    subscription = await events.nc.subscribe(f"gavel.room.live.{lot_id}", cb=seen.put)
    await events.nc.flush()
    request = bid(lot_id, 77_000)
    await stubs[0].PlaceBid(request, metadata=ALICE)
    message = await asyncio.wait_for(seen.get(), 10)
    await subscription.unsubscribe()
    announced = ev.LotEventBatch.FromString(message.data)
    assert (announced.command_id, announced.actor_id, announced.request_fingerprint) == ("", "", "")
    accepted = next(e.bid_accepted for e in announced.events if e.WhichOneof("event") == "bid_accepted")
    assert not accepted.HasField("amount")  # alice's maximum stays in the stream
    assert b"77000" not in message.data


async def test_the_same_request_id_from_two_callers_is_two_requests(cluster, events, stubs):
    lot_id = await open_lot(events, stubs)
    shared = new_id()
    first = await stubs[0].PlaceBid(bid(lot_id, 5_000, shared), metadata=ALICE)
    second = await stubs[1].PlaceBid(bid(lot_id, 9_000, shared), metadata=BOB)
    assert (first.leader_id, second.leader_id) == ("alice", "bob")
    assert second.lot_sequence == first.lot_sequence + 1


@pytest.mark.parametrize("request_id", ["evil\r\nNats-Msg-Id: x", "nul\x00byte", "x" * 129, "", "spaces are out"])
async def test_request_ids_outside_the_safe_charset_are_invalid_arguments(cluster, events, stubs, request_id):
    lot_id = await open_lot(events, stubs)
    code, fields = await code_of(stubs[0].PlaceBid(bid(lot_id, 5_000, request_id), metadata=ALICE))
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["request_id"])


async def test_floor_forces_and_amounts_are_bounded(cluster, events, stubs):
    lot_id = await open_lot(events, stubs)
    floor = pb.FloorBidRequest(request_id=new_id(), lot_id=lot_id, paddle="7", force=1_000_000, press_ms=-5)
    assert await code_of(stubs[0].FloorBid(floor, metadata=DEVICE)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["force", "press_ms"],
    )
    huge = bid(lot_id, 10**18)
    assert await code_of(stubs[0].PlaceBid(huge, metadata=ALICE)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["max_amount.amount_minor"],
    )
    asking = pb.SetAskingRequest(request_id=new_id(), lot_id=lot_id, asking=usd(10**16))
    assert (await code_of(stubs[0].SetAsking(asking, metadata=CRIER)))[0] == grpc.StatusCode.INVALID_ARGUMENT


async def test_garbage_protobuf_is_an_invalid_argument_and_the_replica_keeps_serving(cluster, events, stubs):
    channel = grpc.aio.insecure_channel(cluster.replicas[0].address)
    try:
        raw = channel.unary_unary("/gavel.room.v1.RoomService/PlaceBid")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await raw(b"\xff\xff\xff\xff\x0f garbage", metadata=ALICE)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "Error" not in (caught.value.details() or "")  # no Python class names
    finally:
        await channel.close()
    await open_lot(events, stubs)  # still serving


async def test_a_revoked_account_stops_bidding_at_once(cluster, events, stubs):
    lot_id = await open_lot(events, stubs)
    carol = token("carol", Role.BIDDER)
    await stubs[0].PlaceBid(bid(lot_id, 5_000), metadata=carol)
    now = Timestamp()
    now.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    revoked = aev.AccountRevoked(event_id=new_id(), user_id="carol", revoked_at=now, reason="disabled")
    gateway = await connect_as(cluster, "gateway")
    try:
        await gateway.jetstream().publish("gavel.gateway.account.revoked.carol", revoked.SerializeToString())
    finally:
        await gateway.close()
    for stub in stubs:
        codes = []
        for _ in range(100):
            try:
                await stub.PlaceBid(bid(lot_id, 90_000), metadata=carol)
            except grpc.aio.AioRpcError as exc:
                codes.append(exc.code())
                break
            await asyncio.sleep(0.05)
        assert codes == [grpc.StatusCode.UNAUTHENTICATED], "the revoked account could still bid"


ROOM_SERVICE = pb.DESCRIPTOR.services_by_name["RoomService"]


async def test_every_room_method_answers_hostile_requests_with_documented_codes_only(cluster, events, stubs):
    from hypothesis import strategies as st

    from gavel_kit.testing.fuzz import DOCUMENTED_CODES, examples, messages

    lot_id = await open_lot(events, stubs)
    callers = [(), (("authorization", "Bearer junk"),), ALICE, CRIER, DEVICE, token("admin-1", Role.SALE_ADMIN)]
    channel = grpc.aio.insecure_channel(cluster.replicas[0].address)
    undocumented: list[tuple[str, str, str | None]] = []
    try:
        for method in ROOM_SERVICE.methods:
            request_type = getattr(pb, method.input_type.name)
            call = (channel.unary_stream if method.server_streaming else channel.unary_unary)(
                f"/gavel.room.v1.RoomService/{method.name}",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=lambda b: b,
            )
            strategy = st.tuples(messages(method.input_type, request_type), st.sampled_from(callers), st.booleans())
            for request, who, real_lot in examples(strategy, 6):
                if real_lot and "lot_id" in request.DESCRIPTOR.fields_by_name:
                    request.lot_id = lot_id
                try:
                    if method.server_streaming:
                        stream = call(request, metadata=who, timeout=1)
                        async for _ in stream:
                            break
                        stream.cancel()
                    else:
                        await call(request, metadata=who, timeout=10)
                except grpc.aio.AioRpcError as exc:
                    code = exc.code().name
                    if code not in DOCUMENTED_CODES and not (method.server_streaming and code == "CANCELLED"):
                        undocumented.append((method.name, code, exc.details()))
    finally:
        await channel.close()
    assert undocumented == []
    await open_lot(events, stubs)  # both replicas still serve
