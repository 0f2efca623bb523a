"""gavel_kit.healthcheck: the image's HEALTHCHECK asks the local process's gRPC health."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from gavel_kit import healthcheck

pytestmark = pytest.mark.integration
ROOM = "gavel.room.v1.RoomService"


@pytest.fixture
def health_server() -> Iterator[tuple[int, health.HealthServicer]]:
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port, servicer
    finally:
        server.stop(None)


def test_alive_means_serving_for_the_empty_name_and_ready_means_the_services(health_server, monkeypatch):
    port, servicer = health_server
    monkeypatch.setenv("GAVEL_ROOM_GRPC_PORT", str(port))
    monkeypatch.setenv("GAVEL_HOST", "0.0.0.0")  # noqa: S104 — as in the image; the check asks loopback
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set(ROOM, health_pb2.HealthCheckResponse.NOT_SERVING)
    assert healthcheck.main(["room"]) == 0
    assert healthcheck.main(["room", "--ready"]) == 1
    servicer.set(ROOM, health_pb2.HealthCheckResponse.SERVING)
    assert healthcheck.main(["room", "--ready"]) == 0


def test_a_stopped_process_is_unhealthy(monkeypatch):
    server = grpc.server(ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    server.stop(None).wait()
    monkeypatch.setenv("GAVEL_ROOM_PROJECTOR_GRPC_PORT", str(port))
    assert healthcheck.main(["room", "--process", "room-projector"]) == 1


def test_a_worker_is_ready_when_its_process_name_is_serving(health_server, monkeypatch):
    port, servicer = health_server
    monkeypatch.setenv("GAVEL_ROOM_PROJECTOR_GRPC_PORT", str(port))
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("room-projector", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert healthcheck.main(["room", "--process", "room-projector", "--ready"]) == 1
    servicer.set("room-projector", health_pb2.HealthCheckResponse.SERVING)
    assert healthcheck.main(["room", "--process", "room-projector", "--ready"]) == 0
