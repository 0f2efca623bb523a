"""Composition root of the gateway: `python -m gateway.main [serve|migrate|create-user]`.

- `serve` (default): migrate the gateway's tables (retrying while the database comes up), then serve
  HTTP with uvicorn on GAVEL_GATEWAY_HTTP_PORT (default 8080). SIGTERM/SIGINT: stop accepting, let
  in-flight requests finish within GAVEL_SHUTDOWN_GRACE_S, close the gRPC channels and the database,
  flush spans, exit 0.
- `migrate`: upgrade the gateway's tables to the newest revision and exit.
- `create-user --email E --name N --roles seller,bidder [--password-file F]`: create the account, or
  update the name, password and roles of the account with that email (idempotent; used to seed demo
  users). The password is read from the file, else from standard input — never from argv, where
  every user of the machine could read it.
- `disable-user --email E` / `enable-user --email E`: a disabled account cannot log in or refresh,
  and its tokens are revoked (AccountRevoked on NATS, published by the serving gateway's outbox).

The gateway signs user tokens with its own key (GAVEL_GATEWAY_SIGNING_KEY_FILE, default
var/keys/gateway.pem) and verifies with the JWKS; without them it refuses to start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from nats.aio.client import Client as NatsClient
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from gateway.adapters.catalog_grpc import CatalogClient, GrpcHealthProbe
from gateway.adapters.http.app import create_app
from gateway.adapters.http.deps import Services
from gateway.adapters.http.guards import GuardSettings
from gateway.adapters.users_sql import (
    EVENTS_STREAM,
    MIGRATIONS,
    VERSION_TABLE,
    SqlRefreshTokens,
    SqlUserRepository,
    tables,
)
from gateway.app.accounts import Accounts
from gateway.app.passwords import PasswordHasher
from gateway.app.throttle import Limits, Throttle
from gavel_core.errors import InvalidArgument
from gavel_kit import garbage, telemetry
from gavel_kit import logging as gavel_logging
from gavel_kit import loop as event_loops
from gavel_kit import nats as gavel_nats
from gavel_kit import settings as gavel_settings
from gavel_kit.auth import TokenSigner, TokenVerifier
from gavel_kit.db import Database, OutboxRelay
from gavel_kit.grpc.client import channel as traced_channel
from gavel_kit.ids import new_id
from gavel_kit.keys import GATEWAY, Jwks, KeyConfigError, SigningKey

SERVICE = "gateway"
log = gavel_logging.get_logger("gateway")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


EVENTS = gavel_nats.StreamSpec(
    name=EVENTS_STREAM,
    subjects=["gavel.gateway.>"],
    description="The gateway's account events (AccountRevoked): docs/security.md",
    max_age_s=7 * 24 * 3600,  # revocations matter for one token lifetime; a week is plenty to catch up
)


def token_signer(settings: gavel_settings.Settings) -> TokenSigner:
    """Signs user tokens with the gateway's own key (KeyConfigError without it)."""
    return TokenSigner(SigningKey(settings.signing_key_file, GATEWAY), settings.jwt_issuer, settings.jwt_audience)


def token_verifier(settings: gavel_settings.Settings) -> TokenVerifier:
    return TokenVerifier(Jwks(settings.jwks_file), user_issuer=settings.jwt_issuer, audience=settings.jwt_audience)


def limits_of(settings: gavel_settings.Settings) -> Limits:
    defaults = Limits()
    return Limits(
        login_per_ip=int(settings.option("LOGIN_PER_IP", str(defaults.login_per_ip))),
        login_per_account=int(settings.option("LOGIN_PER_ACCOUNT", str(defaults.login_per_account))),
        register_per_ip=int(settings.option("REGISTER_PER_IP", str(defaults.register_per_ip))),
        refresh_per_ip=int(settings.option("REFRESH_PER_IP", str(defaults.refresh_per_ip))),
    )


def guards_of(settings: gavel_settings.Settings) -> GuardSettings:
    return GuardSettings(
        max_body_bytes=int(settings.option("MAX_BODY_BYTES", str(GuardSettings.max_body_bytes))),
        max_json_depth=int(settings.option("MAX_JSON_DEPTH", str(GuardSettings.max_json_depth))),
        trust_forwarded=settings.option("TRUST_FORWARDED", "false").lower() in ("1", "true", "yes"),
        hsts=settings.option("HSTS", "false").lower() in ("1", "true", "yes"),
    )


def accounts_for(
    db: Database,
    settings: gavel_settings.Settings,
    signer: TokenSigner | None = None,
    hasher: PasswordHasher | None = None,
) -> Accounts:
    return Accounts(
        SqlUserRepository(db),
        hasher or PasswordHasher(),
        signer or token_signer(settings),
        token_ttl_s=settings.access_token_ttl_s,
        clock=_utcnow,
        new_id=new_id,
        refresh_tokens=SqlRefreshTokens(db),
        refresh_ttl_s=int(settings.option("REFRESH_TOKEN_TTL_S", str(14 * 24 * 3600))),
        throttle=Throttle(limits_of(settings)),
    )


async def relay_account_events(
    nc: NatsClient, db: Database, settings: gavel_settings.Settings, relay_box: list[OutboxRelay]
) -> None:
    """Connect to NATS (retrying for as long as it takes), then publish the outbox's account events."""
    await gavel_nats.connect(
        settings.nats_url,
        "gavel-gateway",
        nc,
        credentials=settings.nats_credentials_file,
        first_connect_timeout_s=float("inf"),
    )
    js = nc.jetstream()
    await gavel_nats.ensure_streams(js, [EVENTS])

    async def publish(subject: str, payload: bytes, *, msg_id: str, event_type: str) -> object:
        return await gavel_nats.publish(js, subject, payload, msg_id=msg_id, event_type=event_type)

    relay = OutboxRelay(db, tables, publish)
    relay_box.append(relay)
    await relay.run()


def build_app(settings: gavel_settings.Settings, *, hasher: PasswordHasher | None = None) -> FastAPI:
    """The gateway's FastAPI app; its lifespan opens the database and the catalog channels and closes them."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        catalog_address = settings.service_addresses["catalog"]
        catalog_channel = traced_channel(catalog_address)
        catalog_health = GrpcHealthProbe(catalog_address, gavel_settings.GRPC_SERVICE_NAMES["catalog"])
        app.state.services = Services(
            accounts=accounts_for(db, settings, token_signer(settings), hasher),
            tokens=token_verifier(settings),
            catalog=CatalogClient(catalog_channel),
            readiness={"database": db.ping, "catalog": catalog_health.check},
        )
        relays: list[OutboxRelay] = []
        nc = NatsClient()
        relaying = asyncio.create_task(relay_account_events(nc, db, settings, relays), name="account-events")
        log.info("gateway resources open", catalog=catalog_address)
        try:
            yield
        finally:
            for relay in relays:
                relay.stop()
            if relays:  # let the relay publish what is left, briefly
                await asyncio.wait([relaying], timeout=2)
            relaying.cancel()
            await asyncio.wait([relaying], timeout=2)  # nats-py may sit in a reconnect loop: do not hang
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), timeout=2)
            await catalog_channel.close()
            await catalog_health.close()
            await db.dispose()
            log.info("gateway resources closed")

    origins = tuple(o.strip() for o in settings.option("CORS_ORIGINS", "").split(",") if o.strip())
    return create_app(lifespan, guards=guards_of(settings), cors_origins=origins)


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
        user, created = await accounts_for(db, settings).save_user(email, password, name, roles)
    finally:
        await db.dispose()
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "roles": sorted(role.value for role in user.roles),
        "created": created,
    }


async def set_disabled(settings: gavel_settings.Settings, email: str, disabled: bool) -> dict[str, object]:
    await migrate(settings)
    db = Database(settings.database_url)
    try:
        user = await accounts_for(db, settings).set_disabled(email, disabled)
    finally:
        await db.dispose()
    return {"id": user.id, "email": user.email, "disabled": user.disabled}


def read_password(path: str | None) -> str:
    """The password from a file, else the first line of standard input (never argv)."""
    if path:
        with open(path, encoding="utf-8") as source:
            return source.read().rstrip("\r\n")
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("password: ")
    return sys.stdin.readline().rstrip("\r\n")


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
    parser = argparse.ArgumentParser(
        prog="gateway", description="Gavel gateway: HTTP/JSON API, login, web UI", allow_abbrev=False
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="migrate, then serve HTTP (the default)")
    commands.add_parser("migrate", help="upgrade the gateway's tables and exit")
    user = commands.add_parser(
        "create-user",
        help="create or update an account (idempotent by email); the password comes from stdin",
        allow_abbrev=False,
    )
    user.add_argument("--email", required=True)
    user.add_argument("--password-file", help="read the password from this file instead of standard input")
    user.add_argument("--name", required=True, help="display name")
    user.add_argument("--roles", required=True, help="comma list: bidder, seller, crier, sale_admin, site_admin, …")
    for name, what in (("disable-user", "disable an account and revoke its tokens"), ("enable-user", "enable it")):
        command = commands.add_parser(name, help=what)
        command.add_argument("--email", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = gavel_settings.load(SERVICE)
    gavel_logging.configure(SERVICE, settings.log_level, settings.log_format)
    command = args.command or "serve"
    if command == "migrate":
        asyncio.run(migrate(settings, wait_s=30))
        return 0
    if command in ("create-user", "disable-user", "enable-user"):
        try:
            if command == "create-user":
                password = read_password(args.password_file)
                result = asyncio.run(create_user(settings, args.email, password, args.name, args.roles))
            else:
                result = asyncio.run(set_disabled(settings, args.email, command == "disable-user"))
        except InvalidArgument as exc:
            for violation in exc.violations:
                print(f"{command}: {violation.field}: {violation.description}", file=sys.stderr)
            return 2
        except (KeyConfigError, OSError) as exc:
            print(f"{command}: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(result))
        return 0
    try:  # no key, no start
        token_signer(settings)
        token_verifier(settings)
    except KeyConfigError as exc:
        log.error("refusing to start", reason=str(exc))
        print(f"gateway: refusing to start: {exc}", file=sys.stderr)
        return 2
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
