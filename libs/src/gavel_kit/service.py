"""The life of a Gavel gRPC service process, shared by all of them (eShop's ServiceDefaults).

`main(definition)` is a service's whole `main()`: `python -m catalog.main [serve|migrate]`.
Serving goes: logging and tracing → metrics port → gRPC server up, alive (health "" SERVING) but
not ready (the service's name NOT_SERVING; its calls answer UNAVAILABLE) → database reachable and
migrated → NATS connected and streams ensured → on-ready hooks → ready (SERVING) while every
readiness condition holds: `database` and `nats` (kept true by a probe and by the connection's
state, so readiness falls and rises with them) and whatever the service's components name.
SIGTERM/SIGINT: NOT_SERVING, new calls answer UNAVAILABLE with a retry hint, streams end with
UNAVAILABLE, in-flight calls finish (those still running after the grace period are answered
UNAVAILABLE, never CANCELLED), stop hooks, background work stops, NATS drains, the database
closes, spans flush — and the process exits as soon as that is done.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
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
DATABASE_PROBE_EVERY_S = 2.0  # how often readiness checks the database answers
DATABASE_PROBE_TIMEOUT_S = 2.0
QUIET_BEFORE_CLOSE_S = 0.1


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
            self.relay = OutboxRelay(
                self.db,
                definition.kit,
                self.publish,
                js=self.js,
                retention_s=settings.outbox_retention_s,
                idempotency_retention_s=settings.idempotency_retention_s,
            )
        self.port = 0
        self.conditions = ReadinessConditions(self._readiness_changed)
        self._started = False
        self._draining = False
        self._health_update: asyncio.Task[None] | None = None
        self._ready_hooks: list[Hook] = []
        self._stop_hooks: list[Hook] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopped = asyncio.Event()
        self.stop_requested = asyncio.Event()  # serve() stops the process when set (signal, or `fail`)
        self.failure: str | None = None

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

    def fail(self, reason: str) -> None:
        """A part of the process stopped for good and cannot recover by itself: liveness goes
        NOT_SERVING and the process stops (exit status 1), so that its supervisor (`gavel up`, or
        the orchestrator) starts a fresh one instead of leaving it up and useless."""
        if self.failure is not None:
            return
        self.failure = reason
        log.error("process failed; stopping", reason=reason)
        if self.health is not None:
            health = self.health
            self.spawn(health.set_live(False), "liveness")
        self.stop_requested.set()

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
        self.health = await add_health_and_reflection(
            self.server,
            names,
            reflection_enabled=settings.reflection,
            readiness_names=names or [settings.readiness_name],
        )
        self.conditions.require("database", "connecting")
        self.conditions.require("nats", "connecting")
        await definition.wire(self)
        self.port = bind(self.server, settings.grpc_address)
        await self.server.start()
        await self.health.set_live(True)  # alive while it waits for its dependencies
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
        self.conditions.set("database", True)
        if definition.migrations:
            await self.db.migrate(definition.migrations, definition.version_table)
        await gavel_nats.connect(
            settings.nats_url, f"gavel-{settings.process_name}", self.nc, credentials=settings.nats_credentials_file
        )
        await gavel_nats.ensure_streams(self.js, definition.streams, settings.nats_replicas, client=self.nc)
        gavel_nats.on_state(self.nc, lambda usable, detail: self.conditions.set("nats", usable, detail))
        self.spawn(self._probe_database(), "database-probe")
        if self.relay is not None:
            self.relay.max_payload = self.nc.max_payload
            self.spawn(self.relay.run(), "outbox-relay")
        for hook in self._ready_hooks:
            await hook(self)
        self._readiness.ready = True
        self._started = True
        await self.health.set_serving(self.ready)
        log.info("serving", service=settings.process_name, port=self.port, unmet=self.conditions.unmet())

    async def _probe_database(self) -> None:
        """Keep the `database` condition true to the database's answers."""
        while True:
            await asyncio.sleep(DATABASE_PROBE_EVERY_S)
            try:
                await asyncio.wait_for(self.db.ping(), DATABASE_PROBE_TIMEOUT_S)
            except Exception as exc:
                self.conditions.set("database", False, f"unreachable: {type(exc).__name__}")
            else:
                self.conditions.set("database", True)

    async def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        log.info("draining", service=self.definition.name, calls=len(self._readiness.calls))
        self._draining = True
        self._readiness.drain()  # new calls: UNAVAILABLE with a retry hint; streams end likewise
        if self.health is not None:
            await self.health.enter_graceful_shutdown()
        grace = self.settings.shutdown_grace_s
        deadline = time.monotonic() + grace
        if not await self._readiness.wait_idle(grace):
            log.warning("calls still running after the grace period: answering them UNAVAILABLE", grace_s=grace)
            self._readiness.end_calls()
            await self._readiness.wait_idle(1.0)
        # Clients were told to come back in DRAINING_RETRY_MS: once no call arrives for a moment the
        # server can close without gRPC answering a just-arrived call CANCELLED.
        await self._readiness.wait_quiet(QUIET_BEFORE_CLOSE_S, max(0.0, deadline - time.monotonic()))
        for hook in reversed(self._stop_hooks):
            try:
                await hook(self)
            except Exception:
                log.exception("stop hook failed")
        await self.server.stop(min(1.0, grace))  # only a stream stuck writing to its client is left
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


async def serve(definition: ServiceDefinition, settings: gavel_settings.Settings) -> int:
    """Serve until SIGTERM/SIGINT (exit status 0) or until a part of the process fails (1)."""
    runtime = Runtime(definition, settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runtime.stop_requested.set)
    try:
        await runtime.start()
        garbage.freeze_start_up()
        await runtime.stop_requested.wait()
    finally:
        await runtime.stop()
    return 0 if runtime.failure is None else 1


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
    return event_loops.run(serve(definition, settings), settings.event_loop)


async def _migrate(definition: ServiceDefinition, settings: gavel_settings.Settings) -> None:
    db = Database(settings.database_url)
    try:
        await db.migrate(definition.migrations or "", definition.version_table)
        log.info("migrated", service=definition.name)
    finally:
        await db.dispose()
