"""notify for real: its Runtime in-process on a free port, the session's nats-server, SQLite or
PostgreSQL (`database_url`), a real SMTP server (aiosmtpd, `MailSink`) and the SMS sandbox (served
by uvicorn on loopback), gRPC over loopback with tokens from the runtime's codec.

`notify` is the running service plus callers whose stub methods carry their bearer token, a
publisher of the events notify consumes (catalog, room log, payment), and a clock tests move.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import nats
import pytest
import uvicorn
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from gavel.events.v1 import room_events_pb2 as room
from gavel.notify.v1 import notify_service_pb2 as pb
from gavel.notify.v1 import notify_service_pb2_grpc
from gavel_core.auth import Role
from gavel_kit import settings as gavel_settings
from gavel_kit.consumers import ensure_stream_exists
from gavel_kit.grpc.client import bearer
from gavel_kit.nats import StreamSpec
from gavel_kit.service import Runtime
from gavel_kit.testing import identities
from gavel_kit.testing.plugin import free_port
from notify.main import NotifyComponents, definition
from notify.sandbox.sms import SmsBook, create_app
from notify.sandbox.smtp import MailSink

STREAMS = [
    StreamSpec("CATALOG", ["gavel.catalog.>"], extra={"allow_direct": True}),
    StreamSpec("ROOM_EVENTS", ["gavel.room.lot.>"], duplicate_window_s=120, extra={"allow_direct": True}),
    StreamSpec("PAYMENT_EVENTS", ["gavel.payment.>"]),
]


def stamp(value: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(value)
    return result


def new_id(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:16]}"


class Clock:
    """The service's clock: real time plus an offset tests move forward."""

    def __init__(self) -> None:
        self.offset = timedelta()
        self.fixed: datetime | None = None

    def __call__(self) -> datetime:
        return self.fixed if self.fixed is not None else datetime.now(UTC) + self.offset

    def set(self, value: datetime) -> None:
        self.fixed = value


class Caller:
    def __init__(self, stub: notify_service_pb2_grpc.NotifyServiceStub, subject: str, token: str | None) -> None:
        self.subject = subject
        self._stub = stub
        self._metadata = bearer(token) if token else ()

    def __getattr__(self, rpc: str) -> Callable[[Any], Awaitable[Any]]:
        method = getattr(self._stub, rpc)

        async def call(request: Any) -> Any:
            return await method(request, metadata=self._metadata, timeout=15)

        return call


class SmsSandbox:
    def __init__(self, tmp_path: Path) -> None:
        self._arrived = asyncio.Condition()
        self.book = SmsBook(tmp_path / "sms.jsonl", on_add=lambda record: asyncio.ensure_future(self._wake()))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(self.book, "test-key", tmp_path / "mail"),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def _wake(self) -> None:
        async with self._arrived:
            self._arrived.notify_all()

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:  # noqa: ASYNC110 — uvicorn offers no event for "listening"
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task

    async def wait_for(self, count: int, within_s: float = 15) -> list[dict[str, Any]]:
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.book.records) >= count), within_s)
        return self.book.records[:count]


@dataclass
class Publisher:
    """Publishes the events notify consumes, as their owners would."""

    js: Any
    sequences: dict[str, int] = field(default_factory=dict)

    async def event(self, subject: str, message: Message, msg_id: str | None = None) -> int:
        """Publish; the stream sequence it got."""
        ack = await self.js.publish(subject, message.SerializeToString(), headers={"Nats-Msg-Id": msg_id or new_id()})
        return int(ack.seq)

    async def consumed(self, stream: str, durable: str, sequence: int, within_s: float = 15) -> None:
        """Until notify's durable acknowledged everything up to `sequence` of `stream` — it acks a
        batch only after committing what the batch recorded, so notify knows it then."""

        async def acked() -> None:
            # JetStream offers no event for an advancing ack floor: ask for it.
            while (await self.js.consumer_info(stream, durable)).ack_floor.stream_seq < sequence:  # noqa: ASYNC110
                await asyncio.sleep(0.02)

        await asyncio.wait_for(acked(), within_s)

    async def room(self, lot_id: str, *events: room.RoomEvent, msg_id: str | None = None) -> int:
        """One batch on the lot's log (the room's layout, read back through gavel_kit.roomlog); its
        stream sequence."""
        sequence = self.sequences.get(lot_id, 0) + 1
        self.sequences[lot_id] = sequence
        batch = room.LotEventBatch(lot_id=lot_id, lot_sequence=sequence, command_id=new_id(), events=list(events))
        return await self.event(f"gavel.room.lot.{lot_id}", batch, msg_id or f"{lot_id}:{batch.command_id}")


class RunningNotify:
    new_id = staticmethod(new_id)
    stamp = staticmethod(stamp)

    def __init__(self, rt: Runtime, components: NotifyComponents, channel: grpc.aio.Channel) -> None:
        self.rt = rt
        self.components = components
        self.channel = channel
        self.stub = notify_service_pb2_grpc.NotifyServiceStub(channel)
        self.service = Caller(self.stub, "svc:room", identities.service_token("room"))  # any service identity
        self.admin = self.user("admin-1", Role.SITE_ADMIN)
        self.anonymous = Caller(self.stub, "", None)
        self.stopped = False

    def user(self, subject: str, *roles: Role) -> Caller:
        return Caller(self.stub, subject, identities.user_token(subject, *(roles or (Role.BIDDER,))))

    async def reachable(
        self,
        user_id: str,
        *,
        email: str = "",
        phone: str = "",
        locale: str = "en",
        time_zone: str = "UTC",
        **fields: Any,
    ) -> pb.Preferences:
        """Give a user verified contact points (as the gateway or an admin would)."""
        preferences = pb.Preferences(
            locale=locale,
            time_zone=time_zone,
            email=pb.ContactPoint(address=email, verified=bool(email)),
            phone=pb.ContactPoint(address=phone, verified=bool(phone)),
            **fields,
        )
        reply = await self.service.SetPreferences(
            pb.SetPreferencesRequest(request_id=new_id(), user_id=user_id, preferences=preferences)
        )
        return reply.preferences

    async def deliveries(self, user_id: str = "") -> list[pb.Delivery]:
        reply = await self.admin.ListDeliveries(pb.ListDeliveriesRequest(user_id=user_id))
        return list(reply.deliveries)

    async def wait_deliveries(
        self, predicate: Callable[[list[pb.Delivery]], bool], user_id: str = "", within_s: float = 15
    ) -> list[pb.Delivery]:
        """Wait (on dispatcher rounds and consumed batches) until the deliveries satisfy `predicate`."""
        loop = self.components.loop
        last: list[pb.Delivery] = []

        async def until() -> list[pb.Delivery]:
            while True:
                found = last[:] = await self.deliveries(user_id)
                if predicate(found):
                    return found
                async with loop.round_done:
                    seen = loop.rounds
                    await asyncio.wait_for(loop.round_done.wait_for(lambda seen=seen: loop.rounds > seen), within_s)

        try:
            return await asyncio.wait_for(until(), within_s)
        except TimeoutError:
            seen = [(d.kind, pb.Channel.Name(d.channel), pb.DeliveryStatus.Name(d.status), d.reason) for d in last]
            raise AssertionError(f"deliveries never matched; last seen: {seen}") from None


StartNotify = Callable[..., Awaitable[RunningNotify]]


@pytest.fixture
async def mail_sink(tmp_path: Path) -> AsyncIterator[MailSink]:
    sink = MailSink(tmp_path / "mail").start()
    yield sink
    sink.stop()


@pytest.fixture
async def sms_sandbox(tmp_path: Path) -> AsyncIterator[SmsSandbox]:
    sandbox = SmsSandbox(tmp_path)
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
async def publisher(nats_url: str) -> AsyncIterator[Publisher]:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    for spec in STREAMS:
        await ensure_stream_exists(js, spec)
    yield Publisher(js)
    await nc.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def start_notify(
    nats_url: str,
    database_url: str,
    tmp_path: Path,
    mail_sink: MailSink,
    sms_sandbox: SmsSandbox,
    clock: Clock,
    publisher: Publisher,
) -> AsyncIterator[StartNotify]:
    """Start (or restart) notify on this test's database; everything started is stopped after the test.
    The durable consumers live on the session's nats-server, so a restart resumes where they left."""
    started: list[RunningNotify] = []

    async def start(env_extra: dict[str, str] | None = None, **options: str) -> RunningNotify:
        env = (
            {
                "GAVEL_VAR_DIR": str(tmp_path),
                "GAVEL_NATS_URL": nats_url,
                "GAVEL_NOTIFY_GRPC_PORT": "0",
                "GAVEL_NOTIFY_METRICS_PORT": "0",
                "GAVEL_NOTIFY_DATABASE_URL": database_url,
                "GAVEL_NOTIFY_SMTP_PORT": str(mail_sink.port),
                "GAVEL_NOTIFY_SMS_URL": sms_sandbox.url,
                "GAVEL_NOTIFY_SMS_KEY": "test-key",
                "GAVEL_NOTIFY_DIGEST_INTERVAL_S": "0",
                "GAVEL_NOTIFY_RECEIPT_INTERVAL_S": "0.2",
                "GAVEL_NOTIFY_RETRY_FIRST_WAIT_S": "0.01",
                "GAVEL_NOTIFY_RETRY_MAX_WAIT_S": "0.05",
                "GAVEL_NOTIFY_RUN_BACKOFF_S": "0.1",
                "GAVEL_NOTIFY_POLL_S": "0.2",
                "GAVEL_NOTIFY_SMTP_TIMEOUT_S": "2",
                "GAVEL_LOG_LEVEL": "WARNING",
                **identities.default().env(),
            }
            | {f"GAVEL_NOTIFY_{key.upper()}": value for key, value in options.items()}
            | (env_extra or {})
        )
        wired: list[NotifyComponents] = []
        rt = Runtime(definition(clock=clock, on_wired=wired.append), gavel_settings.load("notify", env))
        await rt.start()
        running = RunningNotify(rt, wired[0], grpc.aio.insecure_channel(f"127.0.0.1:{rt.port}"))
        started.append(running)
        return running

    yield start
    for running in started:
        await stop(running)


async def stop(running: RunningNotify) -> None:
    if running.stopped:
        return
    running.stopped = True
    await running.channel.close()
    await running.rt.stop()


@pytest.fixture
def stop_notify() -> Callable[[RunningNotify], Awaitable[None]]:
    return stop


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client
