"""The runtime under faults: readiness follows NATS and the database away and back, what a NATS
restart loses is ensured again, and a graceful stop answers every call (never CANCELLED) and ends
as soon as it has drained. Real nats-server, real PostgreSQL behind a proxy that can cut it, real
gRPC on loopback."""

from __future__ import annotations

import asyncio
import shutil
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gavel.tender.v1 import tender_service_pb2 as pb
from gavel.tender.v1 import tender_service_pb2_grpc as pb_grpc
from gavel_core.errors import NotFound
from gavel_kit import nats as gavel_nats
from gavel_kit import natsserver, service
from gavel_kit import settings as gavel_settings
from gavel_kit.grpc.errors import retry_info_of
from gavel_kit.leases import ExpiringKeys
from gavel_kit.nats import StreamSpec
from gavel_kit.service import Runtime, ServiceDefinition
from gavel_kit.testing import identities
from gavel_kit.testing.faults import TcpProxy, eventually
from gavel_kit.testing.plugin import free_port

pytestmark = pytest.mark.integration

READY = "gavel.tender.v1.TenderService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
STREAM = StreamSpec(name="FAULTTEST", subjects=["gavel.faulttest.>"])


class SlowServicer(pb_grpc.TenderServiceServicer):
    """GetTenderLot takes `delay_s` (a call in flight when the stop begins)."""

    def __init__(self) -> None:
        self.delay_s = 0.0
        self.started = asyncio.Event()

    async def GetTenderLot(self, request, context):
        self.started.set()
        await asyncio.sleep(self.delay_s)
        raise NotFound("lot", request.lot_id)


def tender(env: dict[str, str], servicer: SlowServicer | None = None) -> Runtime:
    async def wire(rt: Runtime) -> None:
        pb_grpc.add_TenderServiceServicer_to_server(servicer or SlowServicer(), rt.server)

    return Runtime(ServiceDefinition(name="tender", wire=wire, streams=[STREAM]), gavel_settings.load("tender", env))


async def health_of(rt: Runtime, name: str = READY) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{rt.port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=name), timeout=2)
        return reply.status


@pytest.fixture
def own_nats(tmp_path):
    """A nats-server of this test's own (it is killed and restarted), on a fixed port."""
    port = free_port()
    server = natsserver.start(tmp_path / "nats", port=port, server_name="fault-test")
    holder = {"server": server}
    yield holder
    holder["server"].stop()


def restart(holder: dict, tmp_path, *, wipe: bool = False) -> None:
    port = holder["server"].port
    holder["server"].kill()
    if wipe:  # a server that comes back with an empty store (its volume lost)
        shutil.rmtree(tmp_path / "nats" / "jetstream", ignore_errors=True)
    holder["server"] = natsserver.start(tmp_path / "nats", port=port, server_name="fault-test")


def env_for(tmp_path, nats_url: str, **extra: str) -> dict[str, str]:
    return {
        "GAVEL_VAR_DIR": str(tmp_path),
        "GAVEL_NATS_URL": nats_url,
        "GAVEL_TENDER_GRPC_PORT": "0",
        "GAVEL_TENDER_METRICS_PORT": "0",
        **identities.default().env(),
        **extra,
    }


async def test_readiness_falls_while_nats_is_down_and_everything_is_ensured_again_after_a_restart(own_nats, tmp_path):
    rt = tender(env_for(tmp_path, own_nats["server"].url))
    await rt.start()
    keys = ExpiringKeys(rt.nc, rt.js, "FAULTTEST_KEYS", 0)  # memory storage: gone with the server
    await keys.put("a", b"1")
    try:
        assert await health_of(rt) == SERVING
        restart(own_nats, tmp_path, wipe=True)
        await eventually(lambda: not rt.ready, 10, "readiness falls with NATS")
        took = await eventually(lambda: rt.ready, 15, "readiness comes back once NATS answers")
        assert await health_of(rt) == SERVING
        assert await health_of(rt, "") == SERVING  # liveness never wavered
        assert (await rt.js.stream_info("FAULTTEST")).config.subjects == ["gavel.faulttest.>"]
        assert "a" not in await keys.entries()  # the bucket is back (empty: memory storage)
        assert await keys.put("b", b"2") > 0
        assert took < 10
    finally:
        await rt.stop()


async def test_an_operation_that_finds_its_bucket_missing_creates_it_again_and_succeeds(own_nats, tmp_path):
    rt = tender(env_for(tmp_path, own_nats["server"].url))
    await rt.start()
    try:
        keys = ExpiringKeys(rt.nc, rt.js, "FAULTTEST_GONE", 0)
        await keys.put("a", b"1")
        await rt.js.delete_key_value("FAULTTEST_GONE")  # lost behind the client's back
        assert await keys.create("b", b"2") is not None
        assert keys.recreated == 1
    finally:
        await rt.stop()


@pytest.mark.postgres
async def test_readiness_falls_while_the_database_is_unreachable_and_comes_back(tmp_path, monkeypatch):
    import os

    base = os.environ.get("GAVEL_TEST_DATABASE_URL")
    if not base:
        pytest.skip("PostgreSQL tests skipped: set GAVEL_TEST_DATABASE_URL")
    from urllib.parse import urlsplit

    target = urlsplit(base)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    monkeypatch.setattr(service, "DATABASE_PROBE_EVERY_S", 0.2)
    url = base.replace(f"{target.hostname}:{target.port or 5432}", f"127.0.0.1:{proxy.port}")
    nats = natsserver.start(tmp_path / "nats", server_name="db-fault")
    rt = tender(env_for(tmp_path, nats.url, GAVEL_TENDER_DATABASE_URL=url))
    try:
        await rt.start()
        assert rt.ready
        await proxy.cut()
        await eventually(lambda: not rt.ready, 10, "readiness falls with the database")
        assert "database" in rt.conditions.unmet()
        assert await health_of(rt) == NOT_SERVING
        assert await health_of(rt, "") == SERVING
        await proxy.restore()
        await eventually(lambda: rt.ready, 10, "readiness comes back with the database")
    finally:
        await rt.stop()
        await proxy.close()
        nats.stop()


async def test_a_graceful_stop_answers_every_call_and_ends_as_soon_as_it_has_drained(nats_url, tmp_path):
    servicer = SlowServicer()
    grace = 5.0
    rt = tender(env_for(tmp_path, nats_url, GAVEL_SHUTDOWN_GRACE_S=str(grace)), servicer)
    await rt.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{rt.port}") as channel:
        stub = pb_grpc.TenderServiceStub(channel)
        servicer.delay_s = 0.5
        in_flight = asyncio.ensure_future(stub.GetTenderLot(pb.GetTenderLotRequest(lot_id="x")))
        await servicer.started.wait()
        started = time.monotonic()
        stopping = asyncio.create_task(rt.stop())
        await eventually(lambda: rt._draining, 5, "the drain begins")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetTenderLot(pb.GetTenderLotRequest(lot_id="late"))
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # new calls: elsewhere, please
        assert retry_info_of(refused.value) is not None
        with pytest.raises(grpc.aio.AioRpcError) as answered:
            await in_flight
        assert answered.value.code() == grpc.StatusCode.NOT_FOUND  # the call in flight got its real answer
        await stopping
    assert time.monotonic() - started < grace - 2  # it did not wait out the grace period


async def test_a_call_still_running_when_the_grace_period_ends_is_answered_unavailable_not_cancelled(
    nats_url, tmp_path
):
    servicer = SlowServicer()
    rt = tender(env_for(tmp_path, nats_url, GAVEL_SHUTDOWN_GRACE_S="0.3"), servicer)
    await rt.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{rt.port}") as channel:
        servicer.delay_s = 30
        stub = pb_grpc.TenderServiceStub(channel)
        stuck = asyncio.ensure_future(stub.GetTenderLot(pb.GetTenderLotRequest(lot_id="x")))
        await servicer.started.wait()
        await rt.stop()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stuck
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert retry_info_of(caught.value) is not None


async def test_a_failed_part_makes_the_process_report_dead_and_stop(nats_url, tmp_path):
    rt = tender(env_for(tmp_path, nats_url))
    await rt.start()
    try:
        rt.fail("the lease thread stopped")
        assert rt.stop_requested.is_set()
        assert await health_of(rt, "") == NOT_SERVING
    finally:
        await rt.stop()


def test_several_nats_servers_can_be_named_in_one_url():
    assert gavel_nats.servers("nats://a:1, nats://b:2,nats://c:3") == ["nats://a:1", "nats://b:2", "nats://c:3"]
