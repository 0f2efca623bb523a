"""grpc.aio server bootstrap: interceptors, health (NOT_SERVING until ready) and reflection."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gavel_kit import telemetry
from gavel_kit.auth import TokenVerifier
from gavel_kit.grpc.interceptors import CallInterceptor, Readiness

# Keep idle streams (Watch) alive through proxies, and let clients ping without data.
SERVER_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_concurrent_streams", 100_000),
    ("grpc.so_reuseport", 0),
)


def _status(ok: bool) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
    return health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING


class HealthReporter:
    """Owns the health servicer: liveness on "" and readiness on each named service.

    Liveness ("") says the process is alive and should not be restarted: SERVING from the moment
    the server listens, also while it waits for NATS or its database; NOT_SERVING only once the
    process has given up (`set_live(False)`) or is shutting down. A process whose event loop is
    wedged cannot answer at all, so its probe times out, which is what an orchestrator restarts.
    Readiness (the service names) says it can do its work now (docs/operations.md)."""

    def __init__(self, service_names: Sequence[str]) -> None:
        self.servicer = health.aio.HealthServicer()
        self._names = list(service_names)

    async def set_live(self, alive: bool) -> None:
        await self.servicer.set("", _status(alive))

    async def set_serving(self, serving: bool) -> None:
        """Readiness of every named service."""
        for name in self._names:
            await self.servicer.set(name, _status(serving))

    async def enter_graceful_shutdown(self) -> None:
        await self.servicer.enter_graceful_shutdown()


def build_server(
    codec: TokenVerifier,
    *,
    readiness: Readiness | None = None,
    extra_interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> grpc.aio.Server:
    """The grpc.aio server with Gavel's call handling; with `readiness`, Gavel RPCs answer
    UNAVAILABLE until it says ready."""
    recording = telemetry.tracing_enabled()
    interceptors: list[grpc.aio.ServerInterceptor] = [
        *([telemetry.grpc_server_interceptor()] if recording else []),  # type: ignore[list-item]
        CallInterceptor(codec, carry_trace_context=not recording, readiness=readiness),
        *extra_interceptors,
    ]
    return grpc.aio.server(interceptors=interceptors, options=SERVER_OPTIONS)


async def add_health_and_reflection(
    server: grpc.aio.Server,
    service_names: Sequence[str],
    *,
    reflection_enabled: bool,
    readiness_names: Sequence[str] | None = None,
) -> HealthReporter:
    """Register health (everything NOT_SERVING for now) and, if enabled, reflection for
    `service_names` (the API services; `readiness_names` defaults to them)."""
    names = list(readiness_names) if readiness_names is not None else list(service_names)
    reporter = HealthReporter(names)
    health_pb2_grpc.add_HealthServicer_to_server(reporter.servicer, server)
    await reporter.set_live(False)
    await reporter.set_serving(False)
    if reflection_enabled:
        reflection.enable_server_reflection(
            [*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
            server,
        )
    return reporter


def bind(server: grpc.aio.Server, address: str) -> int:
    """Bind an insecure port (TLS terminates at the mesh/ingress); return the port actually bound."""
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind gRPC address {address}")
    return port
