"""The whole cluster as `gavel up` runs it: separate processes, real NATS, real gRPC and HTTP.

One cluster per module (starting it costs seconds): a seller logs in through the gateway, creates
and publishes a sale over gRPC, the event arrives on NATS, the schedule shows it; one HTTP request
makes one trace across the gateway and the catalog; Ctrl-C leaves nothing running; a restart keeps
the data.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import nats
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gavel.catalog.v1 import catalog_service_pb2 as catalog
from gavel.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1.money_pb2 import Money
from gavel.events.v1 import catalog_events_pb2
from gavel_kit import nats as gavel_nats
from gavel_kit.demo import demo_users
from gavel_kit.grpc.client import bearer
from gavel_kit.settings import GRPC_SERVICE_NAMES
from gavel_kit.testing.gavel_up import SERVICES, WORKERS, RunningCluster
from gavel_kit.testing.otlp import SpanCollector

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def ops_login(cluster: RunningCluster) -> dict:
    """NATS requires a login: the read-only operators' user `gavel up` made."""
    return gavel_nats.client_options(cluster.var_dir / "secrets" / "nats" / "ops.json")


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_json(url: str, body: dict | None = None, token: str | None = None) -> dict:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def collector():
    loop = asyncio.new_event_loop()
    spans = SpanCollector()
    endpoint = loop.run_until_complete(spans.start())
    runner = __import__("threading").Thread(target=loop.run_forever, daemon=True)
    runner.start()
    yield spans, endpoint
    asyncio.run_coroutine_threadsafe(spans.stop(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, collector):
    otlp = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector[1],
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    running = RunningCluster(tmp_path_factory.mktemp("gavel-up"), otlp)
    running.start()
    yield running
    if running.process and running.process.poll() is None:
        running.interrupt()


def test_every_grpc_service_reports_serving_under_its_fixed_name(cluster):
    for name in SERVICES:
        with grpc.insecure_channel(cluster.address(name)) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=GRPC_SERVICE_NAMES[name]), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, name


def test_the_room_projector_worker_reports_serving_without_serving_the_room_api(cluster):
    with grpc.insecure_channel(cluster.address("room-projector")) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status == (
            health_pb2.HealthCheckResponse.SERVING
        )
        with pytest.raises(grpc.RpcError) as refused:
            health.Check(health_pb2.HealthCheckRequest(service=GRPC_SERVICE_NAMES["room"]), timeout=5)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_fixed_service_names(cluster):
    for name in SERVICES:
        with grpc.insecure_channel(cluster.address(name)) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
            names = {s.name for s in next(replies).list_services_response.service}
            assert GRPC_SERVICE_NAMES[name] in names


def test_every_metrics_port_and_the_gateway_serve(cluster):
    for name in (*SERVICES, *WORKERS):
        with urllib.request.urlopen(f"http://127.0.0.1:{cluster.ports[name][1]}/metrics", timeout=5) as response:
            assert b"process_cpu_seconds_total" in response.read()
    assert http_json(cluster.http("/healthz"))
    with urllib.request.urlopen(cluster.http("/metrics"), timeout=5) as response:
        assert response.status == 200


def test_the_demo_sale_is_seeded_and_listed_through_the_gateway(cluster):
    sales = http_json(cluster.http("/api/v1/sales?query=demo"))["sales"]
    assert [s["title"] for s in sales] == ["Gavel demo evening sale"]


def test_the_demo_users_first_messages_reach_the_outbox_page_and_gavel_outbox(cluster):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # notify sends them moments after seeding
        with urllib.request.urlopen(f"http://127.0.0.1:{cluster.sms_port}/v1/messages", timeout=5) as response:
            if json.load(response)["messages"]:
                break
        time.sleep(0.2)
    with urllib.request.urlopen(f"http://127.0.0.1:{cluster.sms_port}/", timeout=5) as response:
        page = response.read().decode()
    assert "Gavel test message" in page  # the bidder's mail and SMS
    assert "Message de test Gavel" in page  # the seller's, in French
    gavel = Path(sys.executable).parent / "gavel"
    listing = subprocess.run([str(gavel), "outbox"], env=cluster.env, capture_output=True, text=True, check=True)
    assert "bidder@gavel.demo" in listing.stdout
    assert "sms   +15555550101" in listing.stdout


def test_a_seller_logs_in_publishes_a_sale_and_the_event_reaches_nats(cluster):
    email, password = demo_users()["seller"]
    token = http_json(cluster.http("/api/v1/auth/login"), {"email": email, "password": password})["access_token"]

    async def scenario() -> tuple[catalog_events_pb2.SalePublished, dict]:
        nc = await nats.connect(cluster.nats_url, **ops_login(cluster))
        received: asyncio.Queue = asyncio.Queue()
        subscription = await nc.subscribe("gavel.catalog.sale_published.*", cb=received.put)
        day = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).date().isoformat()
        async with grpc.aio.insecure_channel(cluster.address("catalog")) as channel:
            stub = catalog_grpc.CatalogServiceStub(channel)
            product = await stub.CreateProduct(
                catalog.CreateProductRequest(
                    request_id="e2e-product", product=res.Product(title="Oak sideboard", quantity=1)
                ),
                metadata=bearer(token),
            )
            sale = await stub.CreateSale(
                catalog.CreateSaleRequest(
                    request_id="e2e-sale",
                    sale=res.Sale(
                        title="E2E morning sale",
                        time_zone="UTC",
                        kind=res.SALE_KIND_LIVE_SESSION,
                        live_session=res.LiveSession(date=day, time_slots=[res.TimeSlot(start="09:00", end="11:00")]),
                        registration=res.RegistrationPolicy(rule=res.APPROVAL_RULE_AUTO_ALL),
                    ),
                ),
                metadata=bearer(token),
            )
            await stub.AddLot(
                catalog.AddLotRequest(
                    request_id="e2e-lot",
                    sale_id=sale.sale.id,
                    lot=res.Lot(
                        product_id=product.product.id,
                        currency="USD",
                        format=res.FORMAT_ENGLISH,
                        duration_slots=1,
                        english=res.EnglishParams(
                            opening_bid=Money(amount_minor=5_000, currency="USD"),
                            increment_preset="auction_house",
                            close=res.ENGLISH_CLOSE_CRIER,
                        ),
                    ),
                ),
                metadata=bearer(token),
            )
            await stub.PublishSale(
                catalog.PublishSaleRequest(request_id="e2e-publish", sale_id=sale.sale.id), metadata=bearer(token)
            )
        message = await asyncio.wait_for(received.get(), timeout=15)
        await subscription.unsubscribe()
        await nc.close()
        event = catalog_events_pb2.SalePublished.FromString(message.data)
        schedule = http_json(cluster.http(f"/api/v1/schedule?date={day}&view=day"))
        return event, {"sale_id": sale.sale.id, "schedule": schedule}

    event, facts = asyncio.run(scenario())
    assert event.sale_id == facts["sale_id"]
    rows = json.dumps(facts["schedule"])
    assert "Oak sideboard" in rows or facts["sale_id"] in rows


def test_one_gateway_request_makes_one_trace_across_gateway_and_catalog(cluster, collector):
    spans, _ = collector
    http_json(cluster.http("/api/v1/sales"))
    joined = spans.wait_for_trace_spanning({"gavel-gateway", "gavel-catalog"}, timeout_s=20)
    assert joined, f"no trace spans both services: {dict(spans.services_by_trace)}"


def test_nats_refuses_strangers_and_a_service_cannot_touch_another_domain(cluster):
    async def scenario() -> tuple[bool, bool]:
        try:
            await nats.connect(cluster.nats_url, allow_reconnect=False, max_reconnect_attempts=0)
            anonymous = True
        except Exception:
            anonymous = False
        notify = await nats.connect(
            cluster.nats_url, **gavel_nats.client_options(cluster.var_dir / "secrets" / "nats" / "notify.json")
        )
        try:
            await notify.jetstream().publish("gavel.catalog.sale_published.forged", b"x", timeout=1)
            forged = True
        except Exception:
            forged = False
        await notify.close()
        return anonymous, forged

    assert asyncio.run(scenario()) == (False, False)


def test_the_logs_of_a_full_run_hold_no_secrets(cluster):
    email, password = demo_users()["seller"]
    token = http_json(cluster.http("/api/v1/auth/login"), {"email": email, "password": password})["access_token"]
    secrets = {password, token, token.split(".")[2]}
    secrets |= {p for _, p in demo_users().values()}
    for path in (cluster.var_dir / "secrets" / "nats").glob("*.json"):
        secrets.add(json.loads(path.read_text())["password"])
    for path in (cluster.var_dir / "keys").glob("*.pem"):
        secrets |= {line for line in path.read_text().splitlines() if line and not line.startswith("-----")}
    logs = {path.name: path.read_text(errors="replace") for path in (cluster.var_dir / "log").glob("*.log")}
    # (`gavel up`'s own banner prints the demo logins on purpose: it is the operator's terminal, not a log)
    leaks = [(name, secret[:6]) for name, text in logs.items() for secret in secrets if secret and secret in text]
    assert leaks == []
    assert all("PRIVATE KEY" not in text and "eyJhbGciOiJFZERTQSIs" not in text for text in logs.values())


def test_ctrl_c_stops_everything_and_a_restart_keeps_the_data(cluster):
    assert cluster.interrupt() == 0  # `gavel up` exits only after every child it started has exited
    assert [p for p in cluster.all_ports() if port_open(p)] == []

    cluster.start()
    sales = http_json(cluster.http("/api/v1/sales"))["sales"]
    titles = sorted(s["title"] for s in sales)
    assert titles == ["E2E morning sale", "Gavel demo evening sale"]  # nothing lost, nothing seeded twice
    assert cluster.interrupt() == 0
