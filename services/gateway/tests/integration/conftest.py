"""Fixtures for the gateway over real infrastructure: a SQLite database in tmp_path, the app with its
real lifespan, and a tiny real grpc.aio CatalogService on a free loopback port."""

import httpx
import pytest
from google.protobuf import timestamp_pb2

from gateway.app.passwords import PasswordHasher, ScryptCost
from gateway.main import accounts_for, build_app, migrate, token_verifier
from gavel.catalog.v1 import catalog_service_pb2 as pb
from gavel.catalog.v1 import catalog_service_pb2_grpc as pb_grpc
from gavel.catalog.v1 import resources_pb2
from gavel.common.v1 import money_pb2, paging_pb2
from gavel_kit import settings as gavel_settings
from gavel_kit.db import Database
from gavel_kit.grpc.server import add_health_and_reflection, bind, build_server
from gavel_kit.testing import identities

UNREACHABLE = "127.0.0.1:1"  # nothing listens on port 1: connections are refused at once
CHEAP_HASHER = PasswordHasher(ScryptCost(log2_n=8))  # the production cost makes every test ~0.1 s slower


class FakeCatalog(pb_grpc.CatalogServiceServicer):
    """Answers a few reads; `fail_with` makes every call raise (an exception or a callable that aborts)."""

    def __init__(self):
        self.fail_with = None
        self.calls = []  # (method, request, invocation metadata)

    async def _record(self, method, request, context):
        self.calls.append((method, request, dict(context.invocation_metadata() or ())))
        if callable(self.fail_with):
            await self.fail_with(context)
        elif self.fail_with is not None:
            raise self.fail_with

    async def GetSale(self, request, context):
        await self._record("GetSale", request, context)
        starts = timestamp_pb2.Timestamp(seconds=1_750_000_000)
        sale = resources_pb2.Sale(
            id=request.sale_id, title="Spring sale", state=resources_pb2.SALE_STATE_SCHEDULED, starts_at=starts
        )
        return pb.GetSaleResponse(sale=sale)

    async def ListSales(self, request, context):
        await self._record("ListSales", request, context)
        return pb.ListSalesResponse(page=paging_pb2.PageInfo(total_size=0))

    async def ListLots(self, request, context):
        await self._record("ListLots", request, context)
        lot = resources_pb2.Lot(
            id="lot-1",
            sale_id=request.sale_id,
            currency="EUR",
            format=resources_pb2.FORMAT_ENGLISH,
            english=resources_pb2.EnglishParams(opening_bid=money_pb2.Money(amount_minor=17750, currency="EUR")),
        )
        return pb.ListLotsResponse(lots=[lot], page=paging_pb2.PageInfo(next_page_token="p2", total_size=3))

    async def GetLot(self, request, context):
        await self._record("GetLot", request, context)
        return pb.GetLotResponse(lot=resources_pb2.Lot(id=request.lot_id))

    async def GetSchedule(self, request, context):
        await self._record("GetSchedule", request, context)
        return pb.GetScheduleResponse(first_date=request.date, end_date=request.date)

    async def GetProduct(self, request, context):
        await self._record("GetProduct", request, context)
        return pb.GetProductResponse(product=resources_pb2.Product(id=request.product_id, title="Vase", quantity=2))


@pytest.fixture
async def catalog():
    """A real grpc.aio server with Gavel's interceptor chain (tracing, errors, auth) and health SERVING."""
    settings = gavel_settings.load("catalog", identities.default().env())
    server = build_server(token_verifier(settings))
    health = await add_health_and_reflection(server, ["gavel.catalog.v1.CatalogService"], reflection_enabled=False)
    servicer = FakeCatalog()
    pb_grpc.add_CatalogServiceServicer_to_server(servicer, server)
    port = bind(server, "127.0.0.1:0")
    await server.start()
    await health.set_serving(True)
    servicer.address = f"127.0.0.1:{port}"
    servicer.health = health
    try:
        yield servicer
    finally:
        await server.stop(0)


def gateway_settings(tmp_path, catalog_address=UNREACHABLE):
    return gavel_settings.load(
        "gateway",
        {
            "GAVEL_VAR_DIR": str(tmp_path),
            "GAVEL_GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gateway.sqlite'}",
            "GAVEL_CATALOG_ADDR": catalog_address,
            "GAVEL_NATS_URL": "nats://127.0.0.1:1",  # no NATS: account events wait in the outbox
            **identities.default().env(),
        },
    )


class Gateway:
    """The app under test and an HTTP client speaking to it in-process."""

    def __init__(self, settings, client):
        self.settings = settings
        self.client = client

    async def add_user(self, email, password, name="Test User", roles="bidder"):
        db = Database(self.settings.database_url)
        try:
            accounts = accounts_for(db, self.settings, hasher=CHEAP_HASHER)
            user, _ = await accounts.save_user(email, password, name, roles)
            return user
        finally:
            await db.dispose()

    async def disable_user(self, email):
        db = Database(self.settings.database_url)
        try:
            return await accounts_for(db, self.settings, hasher=CHEAP_HASHER).set_disabled(email, True)
        finally:
            await db.dispose()

    async def token_for(self, email, password):
        response = await self.client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return response.json()["access_token"]


async def _running(settings):
    await migrate(settings)
    app = build_app(settings, hasher=CHEAP_HASHER)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield Gateway(settings, client)


@pytest.fixture
async def gateway(tmp_path):
    """The gateway with its catalog unreachable."""
    async for running in _running(gateway_settings(tmp_path)):
        yield running


@pytest.fixture
async def gateway_with_catalog(tmp_path, catalog):
    async for running in _running(gateway_settings(tmp_path, catalog.address)):
        yield running
