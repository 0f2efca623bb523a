"""Composition root of the gateway: `python -m gateway.main [serve|migrate|create-user]`.

- `serve` (default): migrate the gateway's tables (retrying while the database comes up), then serve
  HTTP with uvicorn on GAVEL_GATEWAY_HTTP_PORT (default 8080). SIGTERM/SIGINT: stop accepting, let
  in-flight requests finish within GAVEL_SHUTDOWN_GRACE_S, close the gRPC channels and the database,
  flush spans, exit 0.
- `migrate`: upgrade the gateway's tables to the newest revision and exit.
- `create-user --email E --password P --name N --roles seller,bidder`: create the account, or update
  the name, password and roles of the account with that email (idempotent; used to seed demo users).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import FrameType

import uvicorn
from fastapi import FastAPI
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from gateway.adapters.catalog_grpc import CatalogClient, GrpcHealthProbe
from gateway.adapters.http.app import create_app
from gateway.adapters.http.deps import Services
from gateway.adapters.users_sql import MIGRATIONS, VERSION_TABLE, SqlUserRepository
from gateway.app.accounts import Accounts
from gateway.app.passwords import PasswordHasher
from gavel_core.errors import InvalidArgument
from gavel_kit import garbage, telemetry
from gavel_kit import logging as gavel_logging
from gavel_kit import loop as event_loops
from gavel_kit import settings as gavel_settings
from gavel_kit.auth import TokenCodec
from gavel_kit.db import Database
from gavel_kit.grpc.client import channel as traced_channel
from gavel_kit.ids import new_id

SERVICE = "gateway"
log = gavel_logging.get_logger("gateway")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def token_codec(settings: gavel_settings.Settings) -> TokenCodec:
    return TokenCodec(settings.jwt_secret, settings.jwt_issuer, settings.jwt_ttl_s)


def accounts_for(
    db: Database, settings: gavel_settings.Settings, codec: TokenCodec, hasher: PasswordHasher | None = None
) -> Accounts:
    return Accounts(
        SqlUserRepository(db),
        hasher or PasswordHasher(),
        codec,
        token_ttl_s=settings.jwt_ttl_s,
        clock=_utcnow,
        new_id=new_id,
    )


def build_app(settings: gavel_settings.Settings, *, hasher: PasswordHasher | None = None) -> FastAPI:
    """The gateway's FastAPI app; its lifespan opens the database and the catalog channels and closes them."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        catalog_address = settings.service_addresses["catalog"]
        catalog_channel = traced_channel(catalog_address)
        catalog_health = GrpcHealthProbe(catalog_address, gavel_settings.GRPC_SERVICE_NAMES["catalog"])
        codec = token_codec(settings)
        app.state.services = Services(
            accounts=accounts_for(db, settings, codec, hasher),
            tokens=codec,
            catalog=CatalogClient(catalog_channel),
            readiness={"database": db.ping, "catalog": catalog_health.check},
        )
        log.info("gateway resources open", catalog=catalog_address)
        try:
            yield
        finally:
            await catalog_channel.close()
            await catalog_health.close()
            await db.dispose()
            log.info("gateway resources closed")

    return create_app(lifespan)


async def migrate(settings: gavel_settings.Settings, *, wait_s: float = 0) -> None:
    """Upgrade the gateway's tables; with `wait_s`, retry while the database is not reachable yet."""
    db = Database(settings.database_url)
    try:
        retry = AsyncRetrying(
            stop=stop_after_delay(wait_s),
            wait=wait_exponential(multiplier=0.2, max=3),
            retry=retry_if_exception_type(Exception),
            reraise=True,
        )
        async for attempt in retry:
            with attempt:
                await db.ping()
        await db.migrate(MIGRATIONS, VERSION_TABLE)
        log.info("migrated", service=SERVICE)
    finally:
        await db.dispose()


async def create_user(
    settings: gavel_settings.Settings, email: str, password: str, name: str, roles: str
) -> dict[str, object]:
    await migrate(settings)
    db = Database(settings.database_url)
    try:
        user, created = await accounts_for(db, settings, token_codec(settings)).save_user(email, password, name, roles)
    finally:
        await db.dispose()
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "roles": sorted(role.value for role in user.roles),
        "created": created,
    }


async def serve(settings: gavel_settings.Settings) -> None:
    await migrate(settings, wait_s=120)
    config = uvicorn.Config(
        build_app(settings),
        host=settings.grpc_host,
        port=settings.grpc_port,
        log_config=None,  # gavel_kit.logging owns the handlers: uvicorn's lines come out structured too
        access_log=False,  # ObservabilityMiddleware logs one line per request, with the trace id
        lifespan="on",
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
        server_header=False,
    )
    server = uvicorn.Server(config)

    # uvicorn traps SIGTERM/SIGINT while serving, shuts down gracefully, then re-raises the signal to
    # the handler that was installed before. Installing one that only logs makes the process finish
    # its own shutdown (span flush) and exit 0 instead of dying by the re-raised signal.
    def note(signum: int, _: FrameType | None) -> None:
        log.info("stopped by signal", signal=signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        await server.serve()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="Gavel gateway: HTTP/JSON API, login, web UI")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="migrate, then serve HTTP (the default)")
    commands.add_parser("migrate", help="upgrade the gateway's tables and exit")
    user = commands.add_parser("create-user", help="create or update an account (idempotent by email)")
    user.add_argument("--email", required=True)
    user.add_argument("--password", required=True)
    user.add_argument("--name", required=True, help="display name")
    user.add_argument("--roles", required=True, help="comma list: bidder, seller, crier, sale_admin, site_admin, …")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = gavel_settings.load(SERVICE)
    gavel_logging.configure(SERVICE, settings.log_level, settings.log_format)
    command = args.command or "serve"
    if command == "migrate":
        asyncio.run(migrate(settings, wait_s=30))
        return 0
    if command == "create-user":
        try:
            result = asyncio.run(create_user(settings, args.email, args.password, args.name, args.roles))
        except InvalidArgument as exc:
            for violation in exc.violations:
                print(f"create-user: {violation.field}: {violation.description}", file=sys.stderr)
            return 2
        print(json.dumps(result))
        return 0
    telemetry.configure(SERVICE)
    log.info(
        "starting", http=f"{settings.grpc_host}:{settings.grpc_port}", catalog=settings.service_addresses["catalog"]
    )
    garbage.configure(settings.gc_thresholds)
    try:
        event_loops.run(serve(settings), settings.event_loop)
    finally:
        telemetry.shutdown()
    log.info("stopped", service=SERVICE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
