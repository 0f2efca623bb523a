"""Running the catalog: migrations, restarts, and the scheduler that opens lots on time."""

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import inspect

from catalog.adapters.orm import metadata
from catalog.adapters.scheduler import SchedulerConfig
from catalog.main import MIGRATIONS, definition
from gavel.catalog.v1 import catalog_service_pb2 as pb
from gavel.catalog.v1 import resources_pb2 as res
from gavel.events.v1 import catalog_events_pb2 as ev
from gavel_kit.db import Database

pytestmark = pytest.mark.integration

VERSION_TABLE = definition().version_table


def schema_differences(connection) -> list:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [d for d in compare_metadata(context, metadata) if VERSION_TABLE not in str(d)]


async def test_migrations_build_exactly_the_mapped_schema_on_an_empty_database_and_run_again_harmlessly(
    database_url, tmp_path
):
    env = {**os.environ, "GAVEL_VAR_DIR": str(tmp_path), "GAVEL_CATALOG_DATABASE_URL": database_url}
    command = [sys.executable, "-m", "catalog.main", "migrate"]
    migrate = await asyncio.create_subprocess_exec(*command, env=env, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(migrate.communicate(), 60)
    assert migrate.returncode == 0, stderr.decode()

    db = Database(database_url)
    try:
        await db.migrate(MIGRATIONS, VERSION_TABLE)  # again: already at head, nothing to do
        async with db.engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            differences = await connection.run_sync(schema_differences)
    finally:
        await db.dispose()
    assert tables == {*metadata.tables, VERSION_TABLE}
    assert {"catalog_idempotency", "catalog_outbox"} <= tables
    assert differences == []


async def test_a_restarted_catalog_keeps_its_data_and_its_stored_answers(start_catalog, stop_catalog):
    first = await start_catalog()
    create = pb.CreateProductRequest(request_id="before-restart", product=res.Product(title="Desk", quantity=2))
    created = await first.seller.CreateProduct(create)
    sale, lots = await first.published_sale_starting_soon(quantity=2)
    await stop_catalog(first)

    second = await start_catalog()

    assert (await second.anonymous.GetProduct(pb.GetProductRequest(product_id=created.product.id))).product == (
        created.product
    )
    assert (await second.anonymous.GetSale(pb.GetSaleRequest(sale_id=sale.id))).sale.state == res.SALE_STATE_SCHEDULED
    listed = await second.anonymous.ListLots(pb.ListLotsRequest(sale_id=sale.id))
    assert [lot.id for lot in listed.lots] == [lot.id for lot in lots]
    assert await second.seller.CreateProduct(create) == created  # the stored answer survived too


async def test_the_scheduler_starts_each_due_lot_once_and_announces_it(start_catalog):
    rounds: asyncio.Queue[list[str]] = asyncio.Queue()
    catalog = await start_catalog(
        scheduler=SchedulerConfig(lead=timedelta(minutes=5), interval_s=0.05, on_round=rounds.put_nowait)
    )
    opens = datetime.now(UTC) + timedelta(minutes=2)  # within the lead
    starts_at, ends_at = Timestamp(), Timestamp()
    starts_at.FromDatetime(opens)
    ends_at.FromDatetime(opens + timedelta(days=1))
    tender = (
        await catalog.seller.CreateSale(
            pb.CreateSaleRequest(
                request_id=catalog.request_id(),
                sale=res.Sale(
                    title="Quick tender",
                    time_zone="UTC",
                    timed_tender=res.TimedTender(starts_at=starts_at, ends_at=ends_at),
                ),
            )
        )
    ).sale
    product = await catalog.product(quantity=2)
    lots = await catalog.lot(tender, product, duration_slots=0, **catalog.open_tender())
    later = await catalog.live_sale((opens + timedelta(days=3)).date(), [("10:00", "11:00")])
    [not_due] = await catalog.lot(later, await catalog.product(title="Later"))
    await catalog.publish(tender)
    await catalog.publish(later)

    starting = await catalog.events.wait_for("lot_starting", 2)
    started_by_rounds = []
    while not rounds.empty():
        started_by_rounds += rounds.get_nowait()
    for _ in range(3):  # three more rounds find nothing more to start
        started_by_rounds += await asyncio.wait_for(rounds.get(), timeout=10)

    assert sorted(ev.LotStarting.FromString(m.data).lot_id for m in catalog.events.of("lot_starting")) == sorted(
        lot.id for lot in lots
    )
    assert len(starting) == 2
    assert sorted(started_by_rounds) == sorted(lot.id for lot in lots)
    for lot in lots:
        assert (await catalog.anonymous.GetLot(pb.GetLotRequest(lot_id=lot.id))).lot.state == res.LOT_STATE_LIVE
    assert (await catalog.anonymous.GetSale(pb.GetSaleRequest(sale_id=tender.id))).sale.state == res.SALE_STATE_LIVE
    assert (await catalog.anonymous.GetLot(pb.GetLotRequest(lot_id=not_due.id))).lot.state == res.LOT_STATE_SCHEDULED
