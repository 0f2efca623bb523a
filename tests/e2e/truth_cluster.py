"""The catalog and the room as separate processes on one nats-server, as `gavel up` runs them: one
catalog, two room replicas and the room-projector, over real gRPC, real NATS and a real database
(SQLite files, or PostgreSQL databases when GAVEL_TEST_DATABASE_URL is set). The catalog's own
lot-starting scheduler is off: tests start lots with StartLot as a crier or sale admin would.

`Actors` mints tokens the way the gateway does (the cluster's JWT secret) and gives each user a
`Caller` whose stub methods carry their token; `build_sale` makes a published sale with a crier, a
clerk and a sale admin assigned to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gavel.catalog.v1 import catalog_service_pb2 as cat
from gavel.catalog.v1 import catalog_service_pb2_grpc as cat_grpc
from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1.money_pb2 import Money
from gavel.room.v1 import room_service_pb2 as pb
from gavel.room.v1 import room_service_pb2_grpc as room_grpc
from gavel_core.auth import Role
from gavel_kit import natsserver
from gavel_kit.grpc.client import bearer
from gavel_kit.testing import identities
from gavel_kit.testing.plugin import POSTGRES_ENV, free_port

CATALOG_SERVICE = "gavel.catalog.v1.CatalogService"
ROOM_SERVICE = "gavel.room.v1.RoomService"


def new_id() -> str:
    return uuid.uuid4().hex


def usd(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="USD")


def _die_with_parent() -> None:
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


@dataclass
class Process:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                lines.append(json.loads(line))
        return lines


async def _postgres(base: str, statement: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    from gavel_kit.db import normalise_url

    connection = await asyncpg.connect(normalise_url(base).replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@dataclass
class TruthCluster:
    root: Path
    nats: natsserver.NatsServer
    catalog: Process | None = None
    rooms: list[Process] = field(default_factory=list)
    projector: Process | None = None
    databases: dict[str, str] = field(default_factory=dict)  # service → database URL
    dropped: list[str] = field(default_factory=list)  # PostgreSQL databases to drop at the end

    @property
    def nats_url(self) -> str:
        return self.nats.url

    def _database(self, service: str) -> str:
        if service not in self.databases:
            base = os.environ.get(POSTGRES_ENV)
            if base:
                name = f"gavel_truth_{service}_{uuid.uuid4().hex[:8]}"
                asyncio.run(_postgres(base, f'CREATE DATABASE "{name}"'))
                self.dropped.append(name)
                self.databases[service] = f"{base.rpartition('/')[0]}/{name}"
            else:
                self.databases[service] = f"sqlite+aiosqlite:///{self.root / f'{service}.sqlite'}"
        return self.databases[service]

    def environment(self, name: str, port: int, extra: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            GAVEL_VAR_DIR=str(self.root / name),
            GAVEL_NATS_URL=self.nats.url,
            GAVEL_LOG_FORMAT="json",
            GAVEL_SHUTDOWN_GRACE_S="1",
            PYTHONUNBUFFERED="1",
            GAVEL_CATALOG_DATABASE_URL=self._database("catalog"),
            GAVEL_ROOM_DATABASE_URL=self._database("room"),
            GAVEL_CATALOG_SCHEDULER_INTERVAL_S="0",
            GAVEL_ROOM_PROJECTIONS="false",
            GAVEL_ROOM_CLOSING_SOON_S="0",
            GAVEL_CATALOG_METRICS_PORT="0",
            GAVEL_ROOM_METRICS_PORT="0",
            GAVEL_ROOM_PROJECTOR_METRICS_PORT="0",
        )
        if self.catalog is not None:
            env["GAVEL_CATALOG_ADDR"] = self.catalog.address
        env.update(extra)
        return env

    def start(self, name: str, module: str, command: str, port_variable: str, **extra: str) -> Process:
        port = free_port()
        log_path = self.root / f"{name}.log"
        environment = self.environment(name, port, {port_variable: str(port), **extra})
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", module, command],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        return Process(name, port, process, log_path)

    def start_room(self, name: str, **extra: str) -> Process:
        replica = self.start(name, "room.main", "serve", "GAVEL_ROOM_GRPC_PORT", GAVEL_ROOM_REPLICA_ID=name, **extra)
        self.rooms.append(replica)
        return replica

    def wait_serving(self, process: Process, service: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not process.alive():
                raise RuntimeError(f"{process.name} exited:\n{process.log_path.read_text()[-3000:]}")
            try:
                with grpc.insecure_channel(process.address) as channel:
                    reply = health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(service=service), timeout=1
                    )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{process.name} not SERVING after {timeout_s}s")

    def stop_process(self, process: Process) -> None:
        if process.alive():
            process.process.send_signal(signal.SIGTERM)
            try:
                process.process.wait(15)
            except subprocess.TimeoutExpired:
                process.process.kill()
                process.process.wait(5)

    def stop(self) -> None:
        for process in [*self.rooms, *(p for p in (self.projector, self.catalog) if p is not None)]:
            self.stop_process(process)
        self.nats.stop()
        base = os.environ.get(POSTGRES_ENV)
        for name in self.dropped:
            if base:
                with contextlib.suppress(Exception):
                    asyncio.run(_postgres(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def truth_cluster(root: Path, rooms: int = 2, **room_env: str) -> Iterator[TruthCluster]:
    server = natsserver.start(root / "nats", server_name="truth-test")
    cluster = TruthCluster(root, server)
    try:
        cluster.catalog = cluster.start("catalog", "catalog.main", "serve", "GAVEL_CATALOG_GRPC_PORT")
        cluster.wait_serving(cluster.catalog, CATALOG_SERVICE)
        cluster.projector = cluster.start("room-projector", "room.main", "project", "GAVEL_ROOM_PROJECTOR_GRPC_PORT")
        cluster.wait_serving(cluster.projector, "")
        for index in range(rooms):
            cluster.wait_serving(cluster.start_room(f"room-{index}", **room_env), ROOM_SERVICE)
        yield cluster
    finally:
        cluster.stop()


class Caller:
    """A user: every stub method called on `caller.catalog` or `caller.room` carries the user's token."""

    def __init__(self, subject: str, roles: tuple[Role, ...], catalog: Any, room: Any) -> None:
        self.subject = subject
        self.roles = roles
        self.metadata: Sequence[tuple[str, str]] = identities.default().bearer(subject, *roles) if roles else ()
        self.catalog = _Signed(catalog, self.metadata)
        self.room = _Signed(room, self.metadata)


class _Signed:
    def __init__(self, stub: Any, metadata: Sequence[tuple[str, str]]) -> None:
        self._stub = stub
        self._metadata = metadata

    def __getattr__(self, rpc: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._stub, rpc)

        def call(request: Any, timeout: float = 15) -> Any:
            return method(request, metadata=self._metadata, timeout=timeout)

        return call


class Actors:
    """Stubs to the catalog and to each room replica, and the people who call them."""

    def __init__(self, cluster: TruthCluster) -> None:
        assert cluster.catalog is not None
        self.channels = [grpc.aio.insecure_channel(cluster.catalog.address)]
        self.channels += [grpc.aio.insecure_channel(room.address) for room in cluster.rooms]
        self.catalog_stub = cat_grpc.CatalogServiceStub(self.channels[0])
        self.room_stubs = [room_grpc.RoomServiceStub(channel) for channel in self.channels[1:]]
        self.site_admin = self.user("site-admin", Role.SITE_ADMIN)
        self.anonymous = self.user("")

    def user(self, subject: str, *roles: Role, replica: int = 0) -> Caller:
        return Caller(subject, roles, self.catalog_stub, self.room_stubs[replica % len(self.room_stubs)])

    def service(self, name: str) -> Caller:
        caller = self.user(f"svc:{name}")
        caller.metadata = bearer(identities.default().service_token(name))
        caller.catalog = _Signed(self.catalog_stub, caller.metadata)
        caller.room = _Signed(self.room_stubs[0], caller.metadata)
        return caller

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


def english_terms(
    opening: int = 1_000, close: int = res.ENGLISH_CLOSE_CRIER, duration_ms: int = 0, **params: Any
) -> dict[str, Any]:
    timed = close in (res.ENGLISH_CLOSE_HARD, res.ENGLISH_CLOSE_SOFT)
    return {
        "currency": "USD",
        "format": res.FORMAT_ENGLISH,
        "english": res.EnglishParams(
            opening_bid=usd(opening),
            increments=[res.IncrementTier(from_amount=0, step=100)],
            close=close,  # type: ignore[arg-type]
            duration_ms=(duration_ms or 600_000) if timed else 0,
            **params,
        ),
    }


@dataclass
class SaleUnderTest:
    sale: res.Sale
    lots: list[res.Lot]
    seller: Caller
    crier: Caller
    clerk: Caller
    admin: Caller

    @property
    def lot(self) -> res.Lot:
        return self.lots[0]


def session_day(days_ahead: int = 2) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days_ahead)).date().isoformat()


async def draft_sale(
    actors: Actors, tag: str, lots: list[dict[str, Any]], *, rule: int = res.APPROVAL_RULE_AUTO_ALL
) -> SaleUnderTest:
    """A draft live sale of `seller-<tag>` with one lot per terms dict, and its staff assigned."""
    seller = actors.user(f"seller-{tag}", Role.SELLER)
    sale = (
        await seller.catalog.CreateSale(
            cat.CreateSaleRequest(
                request_id=new_id(),
                sale=res.Sale(
                    title=f"Sale {tag}",
                    time_zone="UTC",
                    live_session=res.LiveSession(
                        date=session_day(), time_slots=[res.TimeSlot(start="08:00", end="20:00")]
                    ),
                    registration=res.RegistrationPolicy(rule=rule),  # type: ignore[arg-type]
                ),
            )
        )
    ).sale
    added: list[res.Lot] = []
    for index, terms in enumerate(lots):
        product = (
            await seller.catalog.CreateProduct(
                cat.CreateProductRequest(
                    request_id=new_id(), product=res.Product(title=f"Item {tag}-{index}", quantity=1)
                )
            )
        ).product
        reply = await seller.catalog.AddLot(
            cat.AddLotRequest(
                request_id=new_id(),
                sale_id=sale.id,
                lot=res.Lot(product_id=product.id, duration_slots=1, **terms),
            )
        )
        added.extend(reply.lots)
    crier = actors.user(f"crier-{tag}", Role.CRIER)
    clerk = actors.user(f"device-{tag}", Role.DEVICE)
    admin = actors.user(f"sale-admin-{tag}", Role.SALE_ADMIN)
    for person, role in (
        (crier, res.STAFF_ROLE_CRIER),
        (clerk, res.STAFF_ROLE_CLERK),
        (admin, res.STAFF_ROLE_SALE_ADMIN),
    ):
        await actors.site_admin.catalog.AssignStaff(
            cat.AssignStaffRequest(request_id=new_id(), sale_id=sale.id, user_id=person.subject, role=role)
        )
    return SaleUnderTest(sale, added, seller, crier, clerk, admin)


async def published_sale(
    actors: Actors, tag: str, lots: list[dict[str, Any]], *, publish: bool = True, **kwargs: Any
) -> SaleUnderTest:
    under_test = await draft_sale(actors, f"{tag}-{new_id()[:6]}", lots, **kwargs)
    if not publish:
        return under_test
    published = await under_test.seller.catalog.PublishSale(
        cat.PublishSaleRequest(request_id=new_id(), sale_id=under_test.sale.id)
    )
    under_test.sale = published.sale
    under_test.lots = list(published.lots)
    return under_test


async def eventually(check: Callable[[], Awaitable[Any]], timeout_s: float = 20, every_s: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy (an observable outcome, not a sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last: Any = None
    while loop.time() < deadline:
        try:
            last = await check()
        except grpc.aio.AioRpcError as exc:
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(every_s)
    raise AssertionError(f"not reached within {timeout_s}s; last: {last!r}")


async def lot_state(caller: Caller, lot_id: str) -> pb.LotState | None:
    try:
        return (await caller.room.GetLotState(pb.GetLotStateRequest(lot_id=lot_id))).state
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


async def start_in_room(actors: Actors, sale: SaleUnderTest, lot_id: str) -> pb.LotState:
    """The crier starts the lot in the catalog; wait until the room runs it."""
    await sale.crier.catalog.StartLot(cat.StartLotRequest(request_id=new_id(), lot_id=lot_id))
    return await eventually(lambda: lot_state(sale.crier, lot_id))


async def register(actors: Actors, sale: SaleUnderTest, bidder: Caller) -> res.Registration:
    reply = await bidder.catalog.RegisterForSale(cat.RegisterForSaleRequest(request_id=new_id(), sale_id=sale.sale.id))
    return reply.registration


async def refusal(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str]:
    from gavel_kit.grpc.errors import error_info_of

    try:
        await call
    except grpc.aio.AioRpcError as exc:
        info = error_info_of(exc)
        return exc.code(), info.reason if info else ""
    raise AssertionError("the call was accepted")
