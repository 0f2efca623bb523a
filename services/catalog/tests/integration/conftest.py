"""The catalog service for real: its Runtime in-process on a free port, the session's nats-server,
SQLite or PostgreSQL (`database_url`), and gRPC over loopback with tokens from the runtime's codec.

`catalog` is the running service plus callers (`catalog.seller`, `catalog.bidder(3)`, …) whose
stub methods carry their bearer token, a tap on `gavel.catalog.>`, and builders for the usual
starting points (a product, a sale, a lot, a published sale).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import nats
import pytest
from nats.aio.msg import Msg

from catalog.adapters.scheduler import SchedulerConfig
from catalog.main import definition
from gavel.catalog.v1 import catalog_service_pb2 as pb
from gavel.catalog.v1 import catalog_service_pb2_grpc
from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1.money_pb2 import Money
from gavel_core.auth import Role
from gavel_kit import settings as gavel_settings
from gavel_kit.grpc.client import bearer
from gavel_kit.service import Runtime
from gavel_kit.testing import identities

SCHEDULER_OFF = SchedulerConfig(enabled=False)


def request_id() -> str:
    return uuid.uuid4().hex


def usd(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="USD")


def english(opening_bid: int = 5_000, **params: Any) -> dict[str, Any]:
    """Lot fields of a valid English lot in USD (spread into res.Lot(...))."""
    return {
        "currency": "USD",
        "format": res.FORMAT_ENGLISH,
        "english": res.EnglishParams(
            opening_bid=usd(opening_bid), increment_preset="flat_100", close=res.ENGLISH_CLOSE_CRIER, **params
        ),
    }


def open_tender(start_price: int = 10_000) -> dict[str, Any]:
    return {
        "currency": "USD",
        "format": res.FORMAT_TENDER_OPEN,
        "tender": res.TenderParams(start_price=usd(start_price), increment=usd(100)),
    }


def soon(lead: timedelta = timedelta(minutes=2)) -> datetime:
    """The first 10-minute boundary (UTC) at least `lead` from now: a live session can start there."""
    earliest = datetime.now(UTC) + lead
    midnight = earliest.replace(hour=0, minute=0, second=0, microsecond=0)
    slots = -(-(earliest - midnight) // timedelta(minutes=10))  # ceiling
    return midnight + slots * timedelta(minutes=10)


class Caller:
    """A user of the catalog: every stub method called on it carries the user's bearer token."""

    def __init__(self, stub: catalog_service_pb2_grpc.CatalogServiceStub, subject: str, token: str | None) -> None:
        self.subject = subject
        self._stub = stub
        self._metadata = bearer(token) if token else ()

    def __getattr__(self, rpc: str) -> Callable[[Any], Awaitable[Any]]:
        method = getattr(self._stub, rpc)

        async def call(request: Any) -> Any:
            return await method(request, metadata=self._metadata, timeout=15)

        return call


class EventTap:
    """Every message published on gavel.catalog.> from the moment the tap opens."""

    def __init__(self) -> None:
        self.messages: list[Msg] = []
        self._arrived = asyncio.Condition()
        self._nc: Any = None

    async def open(self, url: str) -> None:
        self._nc = await nats.connect(url)

        async def received(msg: Msg) -> None:
            async with self._arrived:
                self.messages.append(msg)
                self._arrived.notify_all()

        await self._nc.subscribe("gavel.catalog.>", cb=received)

    async def close(self) -> None:
        await self._nc.close()

    def of(self, kind: str) -> list[Msg]:
        return [m for m in self.messages if m.subject.startswith(f"gavel.catalog.{kind}.")]

    async def wait_for(self, kind: str, count: int = 1, within_s: float = 10) -> list[Msg]:
        """The first `count` messages of `kind` (e.g. "sale_published"), waiting for them to arrive."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.of(kind)) >= count), within_s)
        return self.of(kind)[:count]


class RunningCatalog:
    # helpers for the tests (test modules cannot import conftest under --import-mode=importlib)
    request_id = staticmethod(request_id)
    usd = staticmethod(usd)
    english = staticmethod(english)
    open_tender = staticmethod(open_tender)
    soon = staticmethod(soon)

    def __init__(self, rt: Runtime, channel: grpc.aio.Channel, events: EventTap) -> None:
        self.rt = rt
        self.channel = channel
        self.stub = catalog_service_pb2_grpc.CatalogServiceStub(channel)
        self.events = events
        self.anonymous = Caller(self.stub, "", None)
        self.seller = self.user("seller-1", Role.SELLER)
        self.other_seller = self.user("seller-2", Role.SELLER)
        self.admin = self.user("admin-1", Role.SITE_ADMIN)  # acts on every sale
        self.sale_admin = self.user("sale-admin-1", Role.SALE_ADMIN)  # only on the sales assigned to it
        self.crier = self.user("crier-1", Role.CRIER)
        self.room_service = Caller(self.stub, "svc:room", identities.service_token("room"))
        self.stopped = False

    def user(self, subject: str, *roles: Role) -> Caller:
        return Caller(self.stub, subject, identities.user_token(subject, *roles))

    def bidder(self, n: int) -> Caller:
        return self.user(f"bidder-{n}", Role.BIDDER)

    # -- builders of the usual starting points ----------------------------------------------------

    async def product(
        self, seller: Caller | None = None, title: str = "Oak sideboard", quantity: int = 1
    ) -> res.Product:
        reply = await (seller or self.seller).CreateProduct(
            pb.CreateProductRequest(request_id=request_id(), product=res.Product(title=title, quantity=quantity))
        )
        return reply.product

    async def live_sale(
        self,
        day: date,
        slots: list[tuple[str, str]],
        *,
        time_zone: str = "UTC",
        title: str = "Evening sale",
        rule: int = res.APPROVAL_RULE_AUTO_ALL,
        seller: Caller | None = None,
    ) -> res.Sale:
        sale = res.Sale(
            title=title,
            time_zone=time_zone,
            live_session=res.LiveSession(
                date=day.isoformat(), time_slots=[res.TimeSlot(start=start, end=end) for start, end in slots]
            ),
            registration=res.RegistrationPolicy(rule=rule),  # type: ignore[arg-type]
        )
        reply = await (seller or self.seller).CreateSale(pb.CreateSaleRequest(request_id=request_id(), sale=sale))
        return reply.sale

    async def sale_starting_soon(self, **kwargs: Any) -> res.Sale:
        """A live session whose first slot starts within ~12 minutes: its rooms are already open."""
        start = soon()
        minute = start.hour * 60 + start.minute
        end = min(minute + 60, 24 * 60)
        return await self.live_sale(
            start.date(), [(start.strftime("%H:%M"), f"{end // 60:02d}:{end % 60:02d}")], **kwargs
        )

    async def lot(
        self,
        sale: res.Sale,
        product: res.Product,
        *,
        seller: Caller | None = None,
        duration_slots: int = 1,
        **terms: Any,
    ) -> list[res.Lot]:
        lot = res.Lot(product_id=product.id, duration_slots=duration_slots, **(terms or english()))
        reply = await (seller or self.seller).AddLot(
            pb.AddLotRequest(request_id=request_id(), sale_id=sale.id, lot=lot)
        )
        return list(reply.lots)

    async def publish(self, sale: res.Sale, seller: Caller | None = None) -> pb.PublishSaleResponse:
        return await (seller or self.seller).PublishSale(
            pb.PublishSaleRequest(request_id=request_id(), sale_id=sale.id)
        )

    async def published_sale_starting_soon(self, quantity: int = 1) -> tuple[res.Sale, list[res.Lot]]:
        product = await self.product(quantity=quantity)
        sale = await self.sale_starting_soon()
        await self.lot(sale, product)
        published = await self.publish(sale)
        return published.sale, list(published.lots)

    async def register(self, bidder: Caller, sale: res.Sale) -> res.Registration:
        reply = await bidder.RegisterForSale(pb.RegisterForSaleRequest(request_id=request_id(), sale_id=sale.id))
        return reply.registration


StartCatalog = Callable[..., Awaitable[RunningCatalog]]


@pytest.fixture
async def start_catalog(nats_url: str, database_url: str, tmp_path: Path) -> AsyncIterator[StartCatalog]:
    """Start (or restart) the catalog on this test's database; everything started is stopped after the test."""
    started: list[RunningCatalog] = []

    async def start(scheduler: SchedulerConfig = SCHEDULER_OFF) -> RunningCatalog:
        env = {
            "GAVEL_VAR_DIR": str(tmp_path),
            "GAVEL_NATS_URL": nats_url,
            "GAVEL_CATALOG_GRPC_PORT": "0",
            "GAVEL_CATALOG_METRICS_PORT": "0",
            "GAVEL_CATALOG_DATABASE_URL": database_url,
            "GAVEL_LOG_LEVEL": "WARNING",
            **identities.default().env(),
        }
        rt = Runtime(definition(scheduler=scheduler), gavel_settings.load("catalog", env))
        await rt.start()
        events = EventTap()
        await events.open(nats_url)
        running = RunningCatalog(rt, grpc.aio.insecure_channel(f"127.0.0.1:{rt.port}"), events)
        started.append(running)
        return running

    yield start
    for running in started:
        await stop(running)


async def stop(running: RunningCatalog) -> None:
    """Stop the service as SIGTERM would (idempotent)."""
    if running.stopped:
        return
    running.stopped = True
    await running.channel.close()
    await running.events.close()
    await running.rt.stop()


@pytest.fixture
def stop_catalog() -> Callable[[RunningCatalog], Awaitable[None]]:
    return stop


@pytest.fixture
async def catalog(start_catalog: StartCatalog) -> RunningCatalog:
    return await start_catalog()
