"""The payment service for real: its Runtime in-process on a free port, the sandbox provider on
another (uvicorn, in-process), the session's nats-server, SQLite or PostgreSQL, gRPC over loopback.

`payment` is the running service with callers whose stub calls carry their tokens, a tap on
`gavel.payment.>`, the sandbox, and `room(...)`, which appends room batches to ROOM_EVENTS the way
the room does (LotConfigured first, then LotSold or PenaltyAssessed).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import nats
import pytest
import uvicorn
from google.protobuf.timestamp_pb2 import Timestamp
from nats.js.errors import NotFoundError

from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1.money_pb2 import Money
from gavel.events.v1 import catalog_events_pb2, room_events_pb2
from gavel.payment.v1 import payment_service_pb2 as pb
from gavel.payment.v1 import payment_service_pb2_grpc
from gavel_core.auth import Role
from gavel_kit import settings as gavel_settings
from gavel_kit.nats import StreamSpec
from gavel_kit.service import Runtime
from gavel_kit.testing import identities
from gavel_kit.testing.clients import Caller, EventTap
from gavel_kit.testing.plugin import free_port
from payment import sandbox as sandbox_module
from payment.main import definition

API_KEY = "test-provider-key"
WEBHOOK_SECRET = "test-webhook-secret"
SUCCESS, DECLINE, INSUFFICIENT, THREE_DS, SLOW = (
    sandbox_module.SUCCESS,
    sandbox_module.DECLINE,
    sandbox_module.INSUFFICIENT,
    sandbox_module.THREE_DS,
    sandbox_module.SLOW,
)


def request_id() -> str:
    return uuid.uuid4().hex


def eur(amount: int) -> Money:
    return Money(amount_minor=amount, currency="EUR")


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.up = asyncio.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.up.set()


def ts() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


class Room:
    """Appends batches to the room's log as the room would (one lot's gapless sequence)."""

    def __init__(self, js: Any) -> None:
        self._js = js
        self._sequences: dict[str, itertools.count[int]] = {}

    async def append(self, lot_id: str, *events: room_events_pb2.RoomEvent) -> None:
        sequence = next(self._sequences.setdefault(lot_id, itertools.count(1)))
        batch = room_events_pb2.LotEventBatch(
            lot_id=lot_id, lot_sequence=sequence, command_id=f"c{sequence}", events=list(events)
        )
        await self._js.publish(
            f"gavel.room.lot.{lot_id}", batch.SerializeToString(), headers={"Nats-Msg-Id": f"{lot_id}:{sequence}"}
        )

    async def configure(
        self,
        lot_id: str,
        *,
        sale_id: str,
        seller_id: str = "seller-1",
        product_id: str = "",
        premium_bp: int = 0,
        tax_bp: int = 0,
    ) -> None:
        lot = res.Lot(
            id=lot_id,
            sale_id=sale_id,
            seller_id=seller_id,
            product_id=product_id or f"p-{lot_id}",
            currency="EUR",
            buyer_premium_bp=premium_bp,
            tax_bp=tax_bp,
        )
        await self.append(
            lot_id, room_events_pb2.RoomEvent(at=ts(), lot_configured=room_events_pb2.LotConfigured(lot=lot))
        )

    async def sold(self, lot_id: str, buyer: str, hammer: int, discount_bp: int | None = None) -> None:
        sold = room_events_pb2.LotSold(buyer=buyer, hammer_price=eur(hammer), source="online")
        if discount_bp is not None:
            sold.discount_bp = discount_bp
        await self.append(lot_id, room_events_pb2.RoomEvent(at=ts(), lot_sold=sold))

    async def unsold(self, lot_id: str) -> None:
        await self.append(
            lot_id, room_events_pb2.RoomEvent(at=ts(), lot_unsold=room_events_pb2.LotUnsold(reason="NO_BIDS"))
        )

    async def penalty(self, lot_id: str, bidder: str, price: int, reason: str = "timeout") -> None:
        await self.append(
            lot_id,
            room_events_pb2.RoomEvent(
                at=ts(),
                penalty_assessed=room_events_pb2.PenaltyAssessed(bidder=bidder, price=eur(price), reason=reason),
            ),
        )


class RunningPayment:
    request_id = staticmethod(request_id)
    eur = staticmethod(eur)

    def __init__(
        self, rt: Runtime, channel: grpc.aio.Channel, events: EventTap, js: Any, sandbox: Any, sandbox_url: str
    ) -> None:
        self.rt = rt
        self.channel = channel
        self.stub = payment_service_pb2_grpc.PaymentServiceStub(channel)
        self.events = events
        self.js = js
        self.room = Room(js)
        self.sandbox = sandbox
        self.sandbox_url = sandbox_url
        self.admin = self.user("admin-1", Role.SITE_ADMIN)
        self.sale_admin = self.user("sale-admin-1", Role.SALE_ADMIN)
        self.seller = self.user("seller-1", Role.SELLER)
        self.service = Caller(self.stub, "svc:tender", identities.service_token("tender"))

    def user(self, subject: str, *roles: Role) -> Caller:
        if roles == (Role.SERVICE,) and subject.startswith("svc:"):  # a service signs its own identity
            return Caller(self.stub, subject, identities.service_token(subject.removeprefix("svc:")))
        return Caller(self.stub, subject, identities.user_token(subject, *roles))

    def bidder(self, n: int) -> Caller:
        return self.user(f"bidder-{n}", Role.BIDDER)

    async def sandbox_post(self, path: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.sandbox_url) as client:
            return await client.post(path, headers={"authorization": f"Bearer {API_KEY}"})

    async def terms(self, sale_id: str, **fields: Any) -> pb.SaleTerms:
        terms = pb.SaleTerms(sale_id=sale_id, currency="EUR", **fields)
        reply = await self.sale_admin.SetSaleTerms(pb.SetSaleTermsRequest(request_id=request_id(), terms=terms))
        return reply.terms

    async def wait_invoice(self, lot_id: str, within_s: float = 15) -> pb.Invoice:
        async def find() -> pb.Invoice:
            while True:
                seen = len(self.events.messages)  # an event arriving while we list wakes the wait below
                listed = await self.admin.ListInvoices(pb.ListInvoicesRequest(page={"page_size": 500}))
                for invoice in listed.invoices:
                    if invoice.lot_id == lot_id:
                        return invoice
                async with self.events.arrived:
                    await self.events.arrived.wait_for(lambda seen=seen: len(self.events.messages) > seen)

        return await asyncio.wait_for(find(), within_s)

    async def verify(self) -> pb.VerifyLedgerResponse:
        return await self.admin.VerifyLedger(pb.VerifyLedgerRequest())


StartPayment = Callable[..., Awaitable[RunningPayment]]


@pytest.fixture
async def start_payment(nats_url: str, database_url: str, tmp_path: Path) -> AsyncIterator[StartPayment]:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    for stream in ("ROOM_EVENTS", "PAYMENT_EVENTS", "CATALOG"):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream)
    await js.add_stream(StreamSpec(name="ROOM_EVENTS", subjects=["gavel.room.lot.>"]).config())
    await js.add_stream(StreamSpec(name="CATALOG", subjects=["gavel.catalog.>"]).config())
    started: list[tuple[RunningPayment, _Server, asyncio.Task[Any]]] = []

    async def start(
        *,
        provider_timeout_s: float = 3,
        slow_s: float = 10,
        strikes_to_ban: int = 3,
        extra: dict[str, str] | None = None,
    ) -> RunningPayment:
        webhook_port, sandbox_port = free_port(), free_port()
        box = sandbox_module.Sandbox(
            api_key=API_KEY,
            webhook_secret=WEBHOOK_SECRET,
            webhook_url=f"http://127.0.0.1:{webhook_port}/webhooks/provider",
            public_url=f"http://127.0.0.1:{sandbox_port}",
            slow_s=slow_s,
        )
        server = _Server(
            uvicorn.Config(
                sandbox_module.build(box), host="127.0.0.1", port=sandbox_port, log_level="warning", lifespan="off"
            )
        )
        serving = asyncio.create_task(server.serve())
        await asyncio.wait_for(server.up.wait(), 10)
        env = {
            "GAVEL_VAR_DIR": str(tmp_path),
            "GAVEL_NATS_URL": nats_url,
            "GAVEL_PAYMENT_GRPC_PORT": "0",
            "GAVEL_PAYMENT_METRICS_PORT": "0",
            "GAVEL_PAYMENT_DATABASE_URL": database_url,
            "GAVEL_PAYMENT_PROVIDER_URL": f"http://127.0.0.1:{sandbox_port}",
            "GAVEL_PAYMENT_PROVIDER_KEY": API_KEY,
            "GAVEL_PAYMENT_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "GAVEL_PAYMENT_WEBHOOK_PORT": str(webhook_port),
            "GAVEL_PAYMENT_PROVIDER_TIMEOUT_S": str(provider_timeout_s),
            "GAVEL_PAYMENT_RECONCILE_S": "0.3",
            "GAVEL_PAYMENT_OVERDUE_SCAN_S": "0.3",
            "GAVEL_PAYMENT_STRIKES_TO_BAN": str(strikes_to_ban),
            "GAVEL_LOG_LEVEL": "WARNING",
            **identities.default().env(),
            **(extra or {}),
        }
        rt = Runtime(definition(), gavel_settings.load("payment", env))
        await rt.start()
        events = EventTap("gavel.payment")
        await events.open(nats_url)
        running = RunningPayment(
            rt, grpc.aio.insecure_channel(f"127.0.0.1:{rt.port}"), events, js, box, f"http://127.0.0.1:{sandbox_port}"
        )
        started.append((running, server, serving))
        return running

    yield start
    for running, server, serving in started:
        await running.channel.close()
        await running.events.close()
        await running.rt.stop()
        server.should_exit = True
        await serving
    await nc.close()


@pytest.fixture
def catalog_event() -> Callable[..., catalog_events_pb2.LotOutcomeRecorded]:
    def build(
        lot_id: str, sale_id: str, winner: str = "", closed: bool = False
    ) -> catalog_events_pb2.LotOutcomeRecorded:
        return catalog_events_pb2.LotOutcomeRecorded(
            event_id=uuid.uuid4().hex,
            lot_id=lot_id,
            sale_id=sale_id,
            outcome=res.LOT_OUTCOME_SOLD if winner else res.LOT_OUTCOME_PASSED,
            winner_id=winner,
            sale_closed=closed,
        )

    return build
