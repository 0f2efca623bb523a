"""The SQL unit of work on a real database: what it persists, and the collisions it turns into Aborted."""

from datetime import UTC, date, datetime, timedelta

import pytest

from catalog.adapters.unit_of_work import SqlCatalogUnitOfWork
from catalog.app.runner import run
from catalog.domain.lots import Lot, RunningOrderEnd
from catalog.domain.products import Product, ProductSpec
from catalog.domain.reservations import Reservation, ReservationState
from catalog.domain.sales import LiveSession, Sale, SaleSpec, TimeSlot
from catalog.domain.seating import Seat
from catalog.domain.states import State
from catalog.main import MIGRATIONS, definition
from gavel_core.errors import Aborted
from gavel_core.formats import Format, LotTerms, TenderParams
from gavel_kit.db import Database

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=123456)


@pytest.fixture
async def db(database_url):
    database = Database(database_url)
    await database.migrate(MIGRATIONS, definition().version_table)
    yield database
    await database.dispose()


def unit_of_work(db: Database) -> SqlCatalogUnitOfWork:
    return SqlCatalogUnitOfWork(db)


async def a_sale(db: Database) -> Sale:
    spec = SaleSpec("Sale", "Europe/Paris", LiveSession(date.today() + timedelta(days=5), (TimeSlot(600, 720),)))
    sale = Sale.create("sale-1", "seller-1", spec, NOW)

    async def add(uow):
        await uow.sales.add(sale)

    await run(unit_of_work(db), add)
    return sale


async def test_a_sale_reads_back_exactly_as_it_was_written(db):
    sale = await a_sale(db)

    async def read(uow):
        return await uow.sales.get(sale.id)

    assert await run(unit_of_work(db), read) == sale


async def test_of_two_edits_of_one_sale_read_at_the_same_version_the_second_is_aborted(db):
    await a_sale(db)
    first, second = unit_of_work(db), unit_of_work(db)
    async with first, second:
        mine = await first.sales.get("sale-1")
        theirs = await second.sales.get("sale-1")
        mine.title, theirs.title = "Mine", "Theirs"
        await first.commit()
        with pytest.raises(Aborted):
            await second.commit()

    async def read(uow):
        return await uow.sales.get("sale-1")

    assert (await run(unit_of_work(db), read)).title == "Mine"


async def test_a_bidder_holds_at_most_one_active_reservation_per_group_but_may_reserve_again_after_cancelling(db):
    sale = await a_sale(db)

    def reservation(reservation_id: str) -> Reservation:
        return Reservation(reservation_id, "group-1", sale.id, "bidder-1", ReservationState.ACTIVE, NOW, None)

    async def reserve(reservation_id: str) -> None:
        async def add(uow):
            await uow.reservations.add(reservation(reservation_id))

        await run(unit_of_work(db), add)

    await reserve("r-1")
    with pytest.raises(Aborted):
        await reserve("r-2")

    async def cancel_and_reserve(uow):
        held = await uow.reservations.get_active("group-1", "bidder-1")
        held.cancel(NOW)
        await uow.reservations.add(reservation("r-3"))
        assert (await uow.reservations.get_active("group-1", "bidder-1")).id == "r-3"  # sees its own changes

    await run(unit_of_work(db), cancel_and_reserve)

    async def active(uow):
        return await uow.reservations.get_active("group-1", "bidder-1")

    assert (await run(unit_of_work(db), active)).id == "r-3"


async def test_two_bidders_cannot_take_the_same_seat_ordinal(db):
    sale = await a_sale(db)

    async def add_lot_row(uow):
        product = Product.create("product-1", "seller-1", ProductSpec("Desk"), NOW)
        await uow.products.add(product)
        terms = LotTerms("USD", Format.TENDER_OPEN, TenderParams(start_price=100))
        lot = Lot("lot-1", "lot-1", sale.id, product.id, "seller-1", 0, 1, 0, 0, terms, State.SCHEDULED, NOW, NOW)
        await uow.lots.add(lot)

    await run(unit_of_work(db), add_lot_row)

    async def seat(bidder_id: str) -> None:
        async def add(uow):
            await uow.seats.add(Seat("lot-1", bidder_id, sale.id, "lot-1", 0, 0, NOW))

        await run(unit_of_work(db), add)

    await seat("bidder-1")
    with pytest.raises(Aborted):
        await seat("bidder-2")


async def test_the_end_of_a_sales_running_order_is_its_lot_count_and_a_room_of_its_last_group(db):
    sale = await a_sale(db)
    terms = LotTerms("USD", Format.TENDER_OPEN, TenderParams(start_price=100))

    def lot(lot_id: str, group_id: str, room_index: int, position: int) -> Lot:
        return Lot(
            lot_id, group_id, sale.id, "product-1", "seller-1", room_index, 2, position, 1, terms, State.DRAFT, NOW, NOW
        )

    async def end(uow):
        return await uow.lots.end_of_running_order(sale.id)

    assert await run(unit_of_work(db), end) == RunningOrderEnd()

    async def add_lots(uow):
        await uow.products.add(Product.create("product-1", "seller-1", ProductSpec("Desk"), NOW))
        for row in (lot("a-0", "a-0", 0, 0), lot("a-1", "a-0", 1, 0), lot("c-1", "c-0", 1, 2), lot("b-0", "b-0", 0, 1)):
            await uow.lots.add(row)
        await uow.lots.add(lot("c-0", "c-0", 0, 2))  # not yet written when the query runs: it is flushed first
        return await uow.lots.end_of_running_order(sale.id)

    found = await run(unit_of_work(db), add_lots)
    assert (found.lot_count, found.last.group_id, found.next_position) == (5, "c-0", 3)
    assert (await run(unit_of_work(db), end)).last.id == "c-0"
