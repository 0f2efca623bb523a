"""The life of a Gavel gRPC service process, shared by all of them (eShop's ServiceDefaults).

`main(definition)` is a service's whole `main()`: `python -m catalog.main [serve|migrate]`.
Serving goes: logging and tracing → metrics port → gRPC server up with health NOT_SERVING (calls
to the service answer UNAVAILABLE) → database reachable and migrated → NATS connected and streams
ensured → on-ready hooks → SERVING. SIGTERM/SIGINT: NOT_SERVING, stop background work, let
in-flight RPCs finish within the grace period, drain NATS, close the database, flush spans.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from prometheus_client import start_http_server
from sqlalchemy import MetaData
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from gavel_kit import garbage, telemetry
from gavel_kit import logging as gavel_logging
from gavel_kit import loop as event_loops
from gavel_kit import nats as gavel_nats
from gavel_kit import settings as gavel_settings
from gavel_kit.auth import ServiceCredential, TokenVerifier
from gavel_kit.db import Database, KitTables, OutboxRelay
from gavel_kit.grpc.interceptors import Readiness
from gavel_kit.grpc.server import HealthReporter, add_health_and_reflection, bind, build_server
from gavel_kit.keys import Jwks, KeyConfigError, SigningKey

log = gavel_logging.get_logger("gavel.service")

Hook = Callable[["Runtime"], Awaitable[None]]


class ReadinessConditions:
    """Named conditions a process must meet to do its work (a reader caught up, a dependency
    reachable, …). Health reports SERVING only while the process has started and every condition
    is met; a component sets its own condition and the health status follows at once. A condition
    starts unmet the moment it is first named, so a reader that has not caught up yet holds the
    process back (fail closed)."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        self._unmet: dict[str, str] = {}
        self._known: set[str] = set()
        self._on_change = on_change

    def set(self, name: str, met: bool, detail: str = "") -> None:
        was_met = name not in self._unmet  # a condition not named before held nothing back
        self._known.add(name)
        if met:
            self._unmet.pop(name, None)
        else:
            self._unmet[name] = detail or "not met"
        if met != was_met:
            log.info("readiness condition", condition=name, met=met, detail=detail)
            self._on_change()

    def require(self, name: str, detail: str = "starting") -> None:
        """Name a condition that is not met yet (a no-op if it is already known)."""
        if name not in self._known:
            self.set(name, False, detail)

    @property
    def all_met(self) -> bool:
        return not self._unmet

    def unmet(self) -> dict[str, str]:
        """The conditions not met now, with why."""
        return dict(self._unmet)


@dataclass(frozen=True)
class ServiceDefinition:
    """What makes one service different from the others; everything else is shared."""

    name: str  # catalog, room, tender, payment, notify
    wire: Hook  # register servicers on rt.server and on-ready hooks; called before the server starts
    metadata: MetaData | None = None
    migrations: str | None = None  # Alembic script location, e.g. "catalog.adapters:migrations"
    kit: KitTables | None = None  # idempotency + outbox tables (an outbox relay runs when set)
    streams: Sequence[gavel_nats.StreamSpec] = ()
    grpc_services: Sequence[str] = field(default_factory=tuple)  # defaults to the fixed service name
    process: str = ""  # a worker of the service (settings.DEFAULT_WORKER_PORTS), e.g. room-projector

    @property
    def version_table(self) -> str:
        return f"{self.name}_alembic_version"


def token_verifier(settings: gavel_settings.Settings) -> TokenVerifier:
    """Verifies bearer tokens with the deployment's public keys (KeyConfigError without a JWKS)."""
    return TokenVerifier(Jwks(settings.jwks_file), user_issuer=settings.jwt_issuer, audience=settings.jwt_audience)


class Runtime:
    """The connected resources a service's adapters use. Attributes exist from `wire` on; they are
    connected when on-ready hooks run.

    No key, no start: without the JWKS (to verify callers) and the service's own private key (to
    sign its own identity), constructing the runtime raises KeyConfigError."""

    def __init__(self, definition: ServiceDefinition, settings: gavel_settings.Settings) -> None:
        self.definition = definition
        self.settings = settings
        self.codec = token_verifier(settings)
        self.credential = ServiceCredential(
            SigningKey(settings.signing_key_file, definition.name),
            definition.name,
            settings.jwt_audience,
            settings.access_token_ttl_s,
        )
        self.db = Database(settings.database_url)
        self.nc = Client()
        self.js: JetStreamContext = self.nc.jetstream()
        self._readiness = Readiness()
        self.server = build_server(self.codec, readiness=self._readiness)
        self.health: HealthReporter | None = None
        self.relay: OutboxRelay | None = None
        if definition.kit is not None:
            self.relay = OutboxRelay(self.db, definition.kit, self.publish)
        self.port = 0
        self.conditions = ReadinessConditions(self._readiness_changed)
        self._started = False
        self._draining = False
        self._health_update: asyncio.Task[None] | None = None
        self._ready_hooks: list[Hook] = []
        self._stop_hooks: list[Hook] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopped = asyncio.Event()

    @property
    def service_token(self) -> str:
        """A bearer token of this process's own service identity (`svc:<name>`), valid for a few
        minutes and renewed before it expires: read it per call (`lambda: rt.service_token`)."""
        return self.credential.token

    async def publish(
        self, subject: str, payload: bytes, *, msg_id: str, event_type: str | None = None, **kw: Any
    ) -> Any:
        return await gavel_nats.publish(self.js, subject, payload, msg_id=msg_id, event_type=event_type, **kw)

    def on_ready(self, hook: Hook) -> None:
        self._ready_hooks.append(hook)

    def on_stop(self, hook: Hook) -> None:
        self._stop_hooks.append(hook)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run background work for the life of the process; a crash is logged, not silent."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task failed", task=name, error=repr(t.exception()))

        task.add_done_callback(done)
        return task

    @property
    def ready(self) -> bool:
        """Started, every readiness condition met, and not draining."""
        return self._started and self.conditions.all_met and not self._draining

    def _readiness_changed(self) -> None:
        if self.health is None or not self._started:
            return
        previous = self._health_update

        async def update() -> None:
            if previous is not None:
                await previous
            if self.health is not None and not self._draining:
                await self.health.set_serving(self.ready)

        self._health_update = asyncio.get_running_loop().create_task(update())

    async def start(self) -> None:
        """Start serving: returns once started (SERVING if every readiness condition is met), or raises
        if dependencies never come up."""
        definition, settings = self.definition, self.settings
        names = list(definition.grpc_services) or [name for name in [settings.grpc_service_name] if name]
        self.health = await add_health_and_reflection(self.server, names, reflection_enabled=settings.reflection)
        await definition.wire(self)
        self.port = bind(self.server, settings.grpc_address)
        await self.server.start()
        log.info("grpc listening", address=f"{settings.grpc_host}:{self.port}", health="NOT_SERVING")
        retry = AsyncRetrying(
            stop=stop_after_delay(120),
            wait=wait_exponential(multiplier=0.2, max=3),
            retry=retry_if_exception_type(Exception),
            reraise=True,
        )
        async for attempt in retry:
            with attempt:
                await self.db.ping()
        if definition.migrations:
            await self.db.migrate(definition.migrations, definition.version_table)
        await gavel_nats.connect(
            settings.nats_url, f"gavel-{settings.process_name}", self.nc, credentials=settings.nats_credentials_file
        )
        await gavel_nats.ensure_streams(self.js, definition.streams)
        if self.relay is not None:
            self.spawn(self.relay.run(), "outbox-relay")
        for hook in self._ready_hooks:
            await hook(self)
        self._readiness.ready = True
        self._started = True
        await self.health.set_serving(self.ready)
        log.info("serving", service=settings.process_name, port=self.port, unmet=self.conditions.unmet())

    async def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        log.info("draining", service=self.definition.name)
        self._draining = True
        if self.health is not None:
            await self.health.enter_graceful_shutdown()
        for hook in reversed(self._stop_hooks):
            try:
                await hook(self)
            except Exception:
                log.exception("stop hook failed")
        await self.server.stop(self.settings.shutdown_grace_s)
        if self.relay is not None:
            self.relay.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.nc.is_connected:
            try:
                await asyncio.wait_for(self.nc.drain(), timeout=5)
            except Exception:
                log.warning("nats drain did not finish cleanly")
        await self.db.dispose()
        telemetry.shutdown()
        log.info("stopped", service=self.definition.name)


async def serve(definition: ServiceDefinition, settings: gavel_settings.Settings) -> None:
    runtime = Runtime(definition, settings)
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    try:
        await runtime.start()
        garbage.freeze_start_up()
        await stop_requested.wait()
    finally:
        await runtime.stop()


def _configure(definition: ServiceDefinition) -> gavel_settings.Settings:
    settings = gavel_settings.load(definition.name, process=definition.process)
    gavel_logging.configure(settings.process_name, settings.log_level, settings.log_format)
    telemetry.configure(settings.process_name)
    return settings


def main(definition: ServiceDefinition, argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"{definition.name}", description=f"Gavel {definition.name} service")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    settings = _configure(definition)
    if args.command == "migrate":
        if definition.migrations:
            asyncio.run(_migrate(definition, settings))
        return 0
    try:  # no key, no start: say so plainly instead of a traceback
        token_verifier(settings)
        SigningKey(settings.signing_key_file, definition.name)
    except KeyConfigError as exc:
        log.error("refusing to start", reason=str(exc))
        print(f"{settings.process_name}: refusing to start: {exc}", file=sys.stderr)
        return 2
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    garbage.configure(settings.gc_thresholds)
    event_loops.run(serve(definition, settings), settings.event_loop)
    return 0


async def _migrate(definition: ServiceDefinition, settings: gavel_settings.Settings) -> None:
    db = Database(settings.database_url)
    try:
        await db.migrate(definition.migrations or "", definition.version_table)
        log.info("migrated", service=definition.name)
    finally:
        await db.dispose()
