"""Room replicas as separate processes (`python -m room.main serve`) on their own nats-server, and
what the tests need around them: tokens, stubs, and the catalog's and payment's events (the tests
publish them the way those services will)."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import nats
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1.money_pb2 import Money
from gavel.events.v1 import catalog_events_pb2 as cev
from gavel.events.v1 import eligibility_events_pb2 as eev
from gavel.events.v1 import room_events_pb2 as ev
from gavel.room.v1 import room_service_pb2_grpc as pb_grpc
from gavel_core.auth import Role
from gavel_kit import natsperms, natsserver
from gavel_kit.nats import StreamSpec
from gavel_kit.streamread import read_subject
from gavel_kit.testing import identities
from gavel_kit.testing.load import Acked, Bidding, check_logs, lot_ready, resume_delays, watch_gapless
from gavel_kit.testing.load import logs_when_decided as _logs_when_decided
from gavel_kit.testing.plugin import free_port
from room.adapters.leases import KvLeaseStore

LEASE_TTL_S = 1.2  # the replicas' default; only used if the buckets did not exist yet

SERVICE = "gavel.room.v1.RoomService"
CATALOG_SPEC = StreamSpec(name="CATALOG", subjects=["gavel.catalog.>"], description="the catalog's stream (tests)")


def usd(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="USD")


def token(subject: str, *roles: Role) -> identities.LiveBearer:
    """A user's call metadata, signed like a gateway login (renewed before it expires)."""
    return identities.default().bearer(subject, *roles)


def new_id() -> str:
    return uuid.uuid4().hex


def english_lot(
    lot_id: str | None = None,
    *,
    seller: str = "seller-1",
    sale: str = "sale-1",
    close: int = res.ENGLISH_CLOSE_HARD,
    duration_ms: int = 600_000,
    opening: int = 1_000,
    rooms: int = 1,
    room_index: int = 0,
    group: str = "",
    **params: Any,
) -> res.Lot:
    lot_id = lot_id or new_id()
    return res.Lot(
        id=lot_id,
        group_id=group or lot_id,
        sale_id=sale,
        product_id="product-1",
        seller_id=seller,
        room_index=room_index,
        room_count=rooms,
        currency="USD",
        format=res.FORMAT_ENGLISH,
        english=res.EnglishParams(
            opening_bid=usd(opening),
            increments=[res.IncrementTier(from_amount=0, step=100)],
            close=close,
            duration_ms=duration_ms if close in (res.ENGLISH_CLOSE_HARD, res.ENGLISH_CLOSE_SOFT) else 0,
            **params,
        ),
    )


def _die_with_parent() -> None:
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


@dataclass
class Replica:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class RoomCluster:
    root: Path
    nats: natsserver.NatsServer
    replicas: list[Replica] = field(default_factory=list)
    # With a projector: one room database for every process, and the reports written only by the
    # `room.main project` process (as `gavel up` runs them); otherwise each replica projects into its own.
    projector: Replica | None = None
    shared_database: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    servers: list[natsserver.NatsServer] = field(default_factory=list)  # a NATS cluster: every node
    # The generated auth config (the single server; the routed cluster runs without): user → file.
    credentials: dict[str, Path] = field(default_factory=dict)
    users: list[natsperms.User] = field(default_factory=list)

    @property
    def server_url(self) -> str:
        """Where the replicas connect (they log in with their own credentials files)."""
        return ",".join(server.url for server in self.servers) if self.servers else self.nats.url

    @property
    def nats_url(self) -> str:
        """For the tests' own clients: as the superuser (the replicas log in as `room`, the projector
        as `room-projector`)."""
        if self.servers or not self.credentials:
            return self.server_url
        user, password = natsserver.read_credentials(self.credentials[identities.SUPERUSER])
        return self.nats.url.replace("nats://", f"nats://{user}:{password}@", 1)

    def environment(self, name: str, port: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            GAVEL_VAR_DIR=str(self.root / name),
            GAVEL_NATS_URL=self.server_url,
            GAVEL_ROOM_GRPC_PORT=str(port),
            GAVEL_ROOM_METRICS_PORT="0",
            GAVEL_ROOM_PROJECTOR_GRPC_PORT=str(port),
            GAVEL_ROOM_PROJECTOR_METRICS_PORT="0",
            GAVEL_ROOM_REPLICA_ID=name,
            GAVEL_ROOM_CATALOG_CALLS="false",
            GAVEL_ROOM_CLOSING_SOON_S="0",
            GAVEL_LOG_FORMAT="json",
            GAVEL_SHUTDOWN_GRACE_S="1",
            PYTHONUNBUFFERED="1",
        )
        if "room" in self.credentials:
            env["GAVEL_NATS_CREDENTIALS_FILE"] = str(self.credentials["room"])
        env.update(self.extra_env)
        if self.shared_database:
            env["GAVEL_ROOM_DATABASE_URL"] = f"sqlite+aiosqlite:///{self.root / 'room.sqlite'}"
            env["GAVEL_ROOM_PROJECTIONS"] = "false"
        return env

    def start(self, name: str, command: str = "serve") -> Replica:
        port = free_port()
        log_path = self.root / f"{name}.log"
        env = self.environment(name, port)
        if command == "project" and "room-projector" in self.credentials:
            env["GAVEL_NATS_CREDENTIALS_FILE"] = str(self.credentials["room-projector"])
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "room.main", command],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        replica = Replica(name, port, process, log_path)
        if command == "project":
            self.projector = replica
        else:
            self.replicas.append(replica)
        return replica

    def wait_serving(self, replica: Replica, timeout_s: float = 60, service: str = SERVICE) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not replica.alive():
                raise RuntimeError(f"{replica.name} exited:\n{replica.log_path.read_text()[-3000:]}")
            try:
                with grpc.insecure_channel(replica.address) as channel:
                    reply = health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(service=service), timeout=1
                    )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{replica.name} not SERVING after {timeout_s}s")

    def kill_nats(self) -> None:
        """SIGKILL the nats-server (its store stays on disk; memory-stored buckets are gone)."""
        self.nats.kill()

    def start_nats(self) -> None:
        """Start the nats-server again on the same port and store."""
        self.nats = natsserver.start(
            self.root / "nats", port=self.nats.port, server_name="room-test", users=self.users or None
        )

    def kill(self, replica: Replica) -> None:
        if replica.alive():
            replica.process.send_signal(signal.SIGKILL)
            replica.process.wait(10)

    def stop(self) -> None:
        processes = [*self.replicas, *([self.projector] if self.projector else [])]
        for replica in processes:
            if replica.alive():
                replica.process.send_signal(signal.SIGTERM)
        for replica in processes:
            try:
                replica.process.wait(15)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait(5)
        for server in self.servers or [self.nats]:
            server.stop()

    def stub(self, replica: Replica) -> tuple[grpc.aio.Channel, pb_grpc.RoomServiceStub]:
        channel = grpc.aio.insecure_channel(replica.address)
        return channel, pb_grpc.RoomServiceStub(channel)


@contextlib.contextmanager
def room_cluster(
    root: Path, replicas: int, *, projector: bool = False, env: dict[str, str] | None = None
) -> Iterator[RoomCluster]:
    credentials = natsserver.write_credentials(root / "nats-credentials", [*natsperms.USERS, identities.SUPERUSER])
    users = natsserver.users_for(credentials, superusers=[identities.SUPERUSER])
    server = natsserver.start(root / "nats", server_name="room-test", users=users)
    cluster = RoomCluster(
        root, server, shared_database=projector, extra_env=dict(env or {}), credentials=credentials, users=users
    )
    try:
        _run(_create_catalog_stream(cluster.nats_url))
        if projector:  # the first process migrates the shared database before the others open it
            cluster.wait_serving(cluster.start("projector", "project"), service="room-projector")
        started = [cluster.start(f"replica-{i}") for i in range(replicas)]
        for replica in started:
            cluster.wait_serving(replica)
        yield cluster
    finally:
        cluster.stop()


def start_nats_cluster(root: Path, nodes: int = 3, timeout_s: float = 30) -> list[natsserver.NatsServer]:
    """`nodes` nats-servers routed into one JetStream cluster (fsync always), each with its own store."""
    client_ports = [free_port() for _ in range(nodes)]
    route_ports = [free_port() for _ in range(nodes)]
    routes = ", ".join(f"nats-route://127.0.0.1:{port}" for port in route_ports)
    servers = []
    for index in range(nodes):
        data = root / f"nats-{index}"
        data.mkdir(parents=True, exist_ok=True)
        config = data / "nats-server.conf"
        config.write_text(
            f"""server_name: node-{index}
listen: 127.0.0.1:{client_ports[index]}
jetstream {{
  store_dir: "{data / "jetstream"}"
  sync_interval: always
}}
cluster {{
  name: gavel-test
  listen: 127.0.0.1:{route_ports[index]}
  routes: [{routes}]
}}
"""
        )
        log_path = data / "nats-server.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [natsserver.binary(), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        servers.append(
            natsserver.NatsServer(
                process, f"nats://127.0.0.1:{client_ports[index]}", client_ports[index], data / "jetstream", log_path
            )
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all("Server is ready" in s.log_path.read_text(errors="replace") for s in servers) and any(
            "JetStream cluster new metadata leader" in s.log_path.read_text(errors="replace") for s in servers
        ):
            return servers
        time.sleep(0.1)
    for server in servers:
        server.kill()
    raise TimeoutError("the NATS cluster did not form")


def _run(coro: Any) -> Any:
    import asyncio

    return asyncio.run(coro)


# Who works the tests' default sale: its crier, its floor device and its sale admin.
DEFAULT_STAFF = (
    ("crier-1", res.STAFF_ROLE_CRIER),
    ("device-7", res.STAFF_ROLE_CLERK),
    ("admin-1", res.STAFF_ROLE_SALE_ADMIN),
)


async def _create_catalog_stream(url: str) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_stream(CATALOG_SPEC.config())
        await Events(nc).staff("sale-1", *DEFAULT_STAFF)
    finally:
        await nc.close()


class Events:
    """Publishes what the catalog and payment services would, and reads the room's log."""

    def __init__(self, nc: nats.NATS) -> None:
        self.nc = nc
        self.js = nc.jetstream()

    async def start(self, lot: res.Lot) -> None:
        """The catalog published and started the lot (LotStarting carries the published lot)."""
        event = cev.LotStarting(event_id=new_id(), lot_id=lot.id, sale_id=lot.sale_id, format=lot.format, lot=lot)
        await self.js.publish(f"gavel.catalog.lot_starting.{lot.id}", event.SerializeToString())

    async def withdraw(self, lot: res.Lot, reason: str = "withdrawn", sale_cancelled: bool = False) -> None:
        event = cev.LotWithdrawn(
            event_id=new_id(), lot_id=lot.id, sale_id=lot.sale_id, reason=reason, sale_cancelled=sale_cancelled, lot=lot
        )
        await self.js.publish(f"gavel.catalog.lot_withdrawn.{lot.id}", event.SerializeToString())

    async def staff(self, sale: str, *people: tuple[str, int]) -> None:
        """The sale's whole staff: (user id, res.STAFF_ROLE_*) pairs."""
        event = cev.SaleStaffChanged(
            event_id=new_id(),
            sale_id=sale,
            staff=[res.StaffAssignment(sale_id=sale, user_id=user, role=role) for user, role in people],
        )
        await self.js.publish(f"gavel.catalog.sale_staff_changed.{sale}", event.SerializeToString())

    async def registration(self, sale: str, bidder: str, approved: bool = True) -> None:
        status = res.REGISTRATION_STATUS_APPROVED if approved else res.REGISTRATION_STATUS_REJECTED
        event = cev.RegistrationDecided(event_id=new_id(), sale_id=sale, bidder_id=bidder, status=status)
        await self.js.publish(f"gavel.catalog.registration_decided.{sale}", event.SerializeToString())

    async def seat(self, lot: res.Lot, bidder: str) -> None:
        event = cev.SeatAssigned(
            event_id=new_id(), group_id=lot.group_id, lot_id=lot.id, sale_id=lot.sale_id, bidder_id=bidder
        )
        await self.js.publish(f"gavel.catalog.seat_assigned.{lot.id}", event.SerializeToString())

    async def ban(self, bidder: str, sale: str = "") -> None:
        event = eev.BidderBanned(event_id=new_id(), bidder_id=bidder, sale_id=sale, reason="unpaid invoices")
        await self.js.publish(
            f"gavel.payment.bidder.banned.{bidder}", event.SerializeToString(), headers={"Nats-Msg-Id": event.event_id}
        )

    async def log(self, lot_id: str) -> list[tuple[int, ev.LotEventBatch]]:
        messages = await read_subject(self.nc, "ROOM_EVENTS", f"gavel.room.lot.{lot_id}")
        return [(m.sequence, ev.LotEventBatch.FromString(m.data)) for m in messages]

    async def holders(self) -> dict[int, str]:
        """Partition → live replica holding it, as the buckets show it now."""
        return await KvLeaseStore(self.nc, self.nc.jetstream(), LEASE_TTL_S).holders()


def log_lines(replica: Replica) -> list[dict[str, Any]]:
    lines = []
    for line in replica.log_path.read_text(errors="replace").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            lines.append(json.loads(line))
    return lines


# The load and the invariants the fault tests share live in gavel_kit.testing.load.
__all__ = [
    "Acked",
    "Bidding",
    "check_logs",
    "logs_when_decided",
    "lot_open",
    "lot_ready",
    "resume_delays",
    "watch_gapless",
]


async def logs_when_decided(events: Events, lot_ids: list[str], timeout_s: float) -> dict[str, list[ev.LotEventBatch]]:
    return await _logs_when_decided(events.nc, lot_ids, timeout_s)


async def open_lots(events: Events, stub: Any, lots: list[res.Lot]) -> None:
    """Start the lots the way the catalog does (LotStarting); the room opens timed lots by itself."""
    for lot in lots:
        await events.start(lot)
    for lot in lots:
        await lot_open(stub, lot.id)


async def lot_open(stub, lot_id: str, timeout_s: float = 20) -> None:
    """Wait until the room has run the lot from its LotStarting and opened it (a timed lot)."""
    import asyncio

    from gavel.room.v1 import room_service_pb2 as room_pb

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            state = (await stub.GetLotState(room_pb.GetLotStateRequest(lot_id=lot_id), timeout=5)).state
            if state.phase == room_pb.LOT_PHASE_OPEN:
                return
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
                raise
        if loop.time() > deadline:
            raise TimeoutError(f"lot {lot_id} never opened")
        await asyncio.sleep(0.05)
