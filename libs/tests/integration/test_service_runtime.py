"""The shared service runtime over real loopback gRPC, a real nats-server and a real SQLite/PostgreSQL."""

import asyncio
import functools
import uuid

import grpc
import nats
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy import Column, MetaData, String, Table, insert, select

from gavel.common.v1 import money_pb2
from gavel.tender.v1 import tender_service_pb2 as pb
from gavel.tender.v1 import tender_service_pb2_grpc as pb_grpc
from gavel_core.auth import Role
from gavel_core.errors import FailedPrecondition, NotFound
from gavel_kit import nats as gavel_nats
from gavel_kit import settings as gavel_settings
from gavel_kit import telemetry
from gavel_kit.db import Database, KitTables, OutboxRelay, SqlUnitOfWork, kit_tables, run_idempotent
from gavel_kit.grpc.client import bearer
from gavel_kit.grpc.errors import error_info_of
from gavel_kit.grpc.interceptors import CallInterceptor
from gavel_kit.nats import StreamSpec
from gavel_kit.service import Runtime, ServiceDefinition
from gavel_kit.testing import identities

pytestmark = pytest.mark.integration


def runtime_verifier():
    from gavel_kit.service import token_verifier

    return token_verifier(gavel_settings.load("tender", identities.default().env()))


class ExampleTenderServicer(pb_grpc.TenderServiceServicer):
    async def GetTenderLot(self, request, context):
        raise NotFound("lot", request.lot_id)

    async def SubmitTenderBid(self, request, context):
        raise FailedPrecondition("BID_TOO_LOW", "bid below the minimum", {"min_amount_minor": "1500"})


@pytest.fixture
async def runtime(nats_url, tmp_path):
    env = {
        "GAVEL_VAR_DIR": str(tmp_path),
        "GAVEL_NATS_URL": nats_url,
        "GAVEL_TENDER_GRPC_PORT": "0",
        "GAVEL_TENDER_METRICS_PORT": "0",
        **identities.default().env(),
    }

    async def wire(rt: Runtime) -> None:
        pb_grpc.add_TenderServiceServicer_to_server(ExampleTenderServicer(), rt.server)

    rt = Runtime(ServiceDefinition(name="tender", wire=wire), gavel_settings.load("tender", env))
    await rt.start()
    yield rt
    await rt.stop()


async def test_calls_answer_unavailable_until_the_service_is_ready_while_it_reports_alive(nats_url, tmp_path):
    env = {
        "GAVEL_VAR_DIR": str(tmp_path),
        "GAVEL_NATS_URL": nats_url,
        "GAVEL_TENDER_GRPC_PORT": "0",
        **identities.default().env(),
    }
    listening, may_finish_starting = asyncio.Event(), asyncio.Event()

    async def wire(rt: Runtime) -> None:
        pb_grpc.add_TenderServiceServicer_to_server(ExampleTenderServicer(), rt.server)

        async def slow_start(_: Runtime) -> None:  # on-ready hooks run once the port listens
            listening.set()
            await may_finish_starting.wait()

        rt.on_ready(slow_start)

    rt = Runtime(ServiceDefinition(name="tender", wire=wire), gavel_settings.load("tender", env))
    starting = asyncio.create_task(rt.start())
    try:
        await asyncio.wait_for(listening.wait(), timeout=30)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{rt.port}") as channel:
            stub = pb_grpc.TenderServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            for _ in range(2):
                with pytest.raises(grpc.aio.AioRpcError) as starting_up:
                    await stub.GetTenderLot(pb.GetTenderLotRequest(lot_id="nope"))
                assert starting_up.value.code() == grpc.StatusCode.UNAVAILABLE
            alive = await health.Check(health_pb2.HealthCheckRequest(service=""))
            assert alive.status == health_pb2.HealthCheckResponse.SERVING  # liveness: up, leave it be
            ready = await health.Check(health_pb2.HealthCheckRequest(service="gavel.tender.v1.TenderService"))
            assert ready.status == health_pb2.HealthCheckResponse.NOT_SERVING  # readiness: not yet
            may_finish_starting.set()
            await starting
            for _ in range(2):
                with pytest.raises(grpc.aio.AioRpcError) as served:
                    await stub.GetTenderLot(pb.GetTenderLotRequest(lot_id="nope"))
                assert served.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        may_finish_starting.set()
        await asyncio.gather(starting, return_exceptions=True)
        await rt.stop()


async def test_health_is_serving_once_database_and_nats_are_connected(runtime):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "gavel.tender.v1.TenderService"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_reports_not_serving_while_draining(runtime):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        await runtime.health.enter_graceful_shutdown()
        reply = await health.Check(health_pb2.HealthCheckRequest(service="gavel.tender.v1.TenderService"))
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_reflection_lists_the_fixed_service_name(runtime):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)

        async def requests():
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        async for reply in stub.ServerReflectionInfo(requests()):
            names = {s.name for s in reply.list_services_response.service}
            break
    assert "gavel.tender.v1.TenderService" in names


async def test_not_found_carries_resource_info_and_the_service_keeps_serving(runtime):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        stub = pb_grpc.TenderServiceStub(channel)
        for _ in range(2):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.GetTenderLot(pb.GetTenderLotRequest(lot_id="nope"))
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_without_span_recording_a_callers_trace_context_still_reaches_outgoing_messages():
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    outgoing: list[dict[str, str]] = []

    async def handle(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        outgoing.append(telemetry.inject_headers({}))  # what a NATS message published now would carry
        return request

    server = grpc.aio.server(interceptors=[CallInterceptor(runtime_verifier(), carry_trace_context=True)])
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(handle)}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            echo = channel.unary_unary("/test.Echo/Echo")
            await echo(b"x", metadata=(("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01"),))
            await echo(b"y")
    finally:
        await server.stop(None)
    with_context, without = outgoing
    assert with_context["traceparent"].split("-")[1] == trace_id
    assert trace_id not in without.get("traceparent", "")


async def test_a_call_without_a_token_is_unauthenticated(runtime):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await pb_grpc.TenderServiceStub(channel).SubmitTenderBid(pb.SubmitTenderBidRequest(lot_id="l"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_seller_may_not_call_a_bidder_rpc(runtime):
    token = identities.user_token("seller-1", Role.SELLER)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await pb_grpc.TenderServiceStub(channel).SubmitTenderBid(
                pb.SubmitTenderBidRequest(lot_id="l"), metadata=bearer(token)
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_failed_precondition_carries_the_reason_and_minimum_amount(runtime):
    token = identities.user_token("bidder-1", Role.BIDDER)
    request = pb.SubmitTenderBidRequest(
        request_id="r1", lot_id="l", amount=money_pb2.Money(amount_minor=1, currency="USD")
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await pb_grpc.TenderServiceStub(channel).SubmitTenderBid(request, metadata=bearer(token))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info_of(caught.value)
    assert info is not None
    assert (info.reason, info.metadata["min_amount_minor"]) == ("BID_TOO_LOW", "1500")


# --- idempotency store and outbox on a real database -------------------------------------------

metadata = MetaData()
things = Table("kittest_things", metadata, Column("id", String(50), primary_key=True))
tables: KitTables = kit_tables(metadata, "kittest")


@pytest.fixture
async def database(database_url):
    db = Database(database_url)
    async with db.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield db
    await db.dispose()


async def count_things(db: Database) -> int:
    async with db.sessions() as session:
        return len((await session.execute(select(things))).all())


async def test_a_repeated_request_id_returns_the_first_answer_without_a_second_effect(database):
    calls = 0

    async def create(uow: SqlUnitOfWork) -> bytes:
        nonlocal calls
        calls += 1
        await uow.session.execute(insert(things).values(id=f"thing-{calls}"))
        return f"created thing-{calls}".encode()

    def uow():
        return SqlUnitOfWork(database, tables)

    first = await run_idempotent(uow, caller="u1", method="/m", request_id="req-1", request_bytes=b"a", action=create)
    again = await run_idempotent(uow, caller="u1", method="/m", request_id="req-1", request_bytes=b"a", action=create)
    assert first == again == b"created thing-1"
    assert await count_things(database) == 1


async def test_a_request_id_reused_for_a_different_request_is_refused(database):
    async def create(uow: SqlUnitOfWork) -> bytes:
        return b"ok"

    def uow():
        return SqlUnitOfWork(database, tables)

    await run_idempotent(uow, caller="u1", method="/m", request_id="req-2", request_bytes=b"a", action=create)
    with pytest.raises(FailedPrecondition) as caught:
        await run_idempotent(uow, caller="u1", method="/m", request_id="req-2", request_bytes=b"b", action=create)
    assert caught.value.reason == "REQUEST_ID_REUSED"


async def test_concurrent_twins_of_one_request_have_one_effect_and_one_answer(database):
    async def create(uow: SqlUnitOfWork) -> bytes:
        await uow.session.execute(insert(things).values(id=uuid.uuid4().hex))
        await asyncio.sleep(0.05)  # both twins get past the lookup before either stores its answer
        return b"twin"

    def uow():
        return SqlUnitOfWork(database, tables)

    results = await asyncio.gather(
        *(
            run_idempotent(uow, caller="u", method="/m", request_id="req-3", request_bytes=b"x", action=create)
            for _ in range(2)
        )
    )
    assert results == [b"twin", b"twin"]
    assert await count_things(database) == 1


async def test_outbox_events_reach_jetstream_once_with_msg_id_and_trace_context(database, nats_url, span_exporter):
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream = StreamSpec(name="KITTEST_EVENTS", subjects=["gavel.kittest.>"]).config()
    await js.add_stream(stream)
    relay = OutboxRelay(database, tables, functools.partial(gavel_nats.publish, js))
    with telemetry.tracer("test").start_as_current_span("request") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        async with SqlUnitOfWork(database, tables, relay) as uow:
            await uow.emit("gavel.kittest.happened.1", b"payload", msg_id="evt-1", event_type="Happened")
            await uow.commit()
    async with SqlUnitOfWork(database, tables, relay) as uow:
        await uow.emit("gavel.kittest.happened.2", b"lost", msg_id="evt-2", event_type="Happened")
        # no commit: a rolled-back transaction emits nothing
    assert await relay.drain_once() == 1
    assert await relay.drain_once() == 0
    info = await js.stream_info("KITTEST_EVENTS")
    assert info.state.messages == 1
    message = await js.get_msg("KITTEST_EVENTS", seq=1)
    assert message.headers["Nats-Msg-Id"] == "evt-1"
    assert message.headers["Gavel-Event-Type"] == "Happened"
    assert message.headers["traceparent"].split("-")[1] == trace_id
    await js.delete_stream("KITTEST_EVENTS")
    await nc.close()


async def test_a_publish_failing_mid_run_keeps_the_published_part_and_the_rest_follows_in_order(database):
    sent: list[str] = []
    failed: list[str] = []

    async def publish(subject: str, payload: bytes, *, msg_id: str, event_type: str | None) -> None:
        if msg_id == "evt-2" and not failed:
            failed.append(msg_id)
            raise TimeoutError("no PubAck")
        sent.append(msg_id)

    relay = OutboxRelay(database, tables, publish)
    async with SqlUnitOfWork(database, tables, relay) as uow:
        for number in range(1, 4):
            await uow.emit(f"gavel.kittest.happened.{number}", b"x", msg_id=f"evt-{number}", event_type="Happened")
        await uow.commit()
    with pytest.raises(TimeoutError):
        await relay.drain_once()
    assert await relay.drain_once() == 2
    assert await relay.drain_once() == 0
    assert sent == ["evt-1", "evt-2", "evt-3"]


async def test_health_follows_the_readiness_conditions_of_the_process(runtime):
    name = "gavel.tender.v1.TenderService"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)

        async def status() -> int:
            return (await health.Check(health_pb2.HealthCheckRequest(service=name))).status

        runtime.conditions.set("example-reader", False, "catching up")
        assert not runtime.ready
        await runtime._health_update
        assert await status() == health_pb2.HealthCheckResponse.NOT_SERVING
        assert runtime.conditions.unmet() == {"example-reader": "catching up"}
        runtime.conditions.set("example-reader", True)
        await runtime._health_update
        assert runtime.ready
        assert await status() == health_pb2.HealthCheckResponse.SERVING
