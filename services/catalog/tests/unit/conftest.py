"""In-memory fakes of the catalog's ports (Cosmic Python style) and a small harness for the tests.

The fake repositories implement the filters and orders with the domain's own reference
predicates and sort keys (catalog.domain.queries), which is what a SQL adapter must reproduce.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime
from typing import Any

import pytest

from catalog.app.lots import AddLot, add_lot
from catalog.app.products import CreateProduct, create_product
from catalog.app.registrations import DecideRegistration, decide_registration, register_for_sale
from catalog.app.sales import CreateSale, create_sale, publish_sale
from catalog.domain.events import CatalogEvent
from catalog.domain.lots import Lot, LotSpec, RunningOrderEnd, running_order_end
from catalog.domain.paging import Page, PageRequest, SortKey
from catalog.domain.products import Product, ProductSpec
from catalog.domain.queries import (
    LotFilter,
    ProductFilter,
    RegistrationFilter,
    ReservationFilter,
    SaleFilter,
    lot_key,
    lot_schedule_key,
    product_key,
    registration_key,
    reservation_key,
    sale_key,
)
from catalog.domain.registrations import Registration
from catalog.domain.reservations import Reservation, ReservationState
from catalog.domain.sales import (
    ApprovalRule,
    LiveSession,
    RegistrationPolicy,
    Sale,
    SaleSpec,
    TimedTender,
    TimeSlot,
)
from catalog.domain.seating import Seat
from catalog.domain.staff import StaffAssignment
from gavel_core.auth import ANONYMOUS, Principal, Role
from gavel_core.errors import AlreadyExists
from gavel_core.formats import (
    DutchParams,
    EnglishParams,
    Format,
    LotTerms,
    LuckyParams,
    LuckyWinningRule,
    TenderParams,
)
from gavel_core.increments import IncrementTable

# Monday 6 May 2030, 08:00 UTC. Europe/Paris is UTC+2 then.
NOW = datetime(2030, 5, 6, 8, 0, tzinfo=UTC)
SALE_DAY = date(2030, 5, 8)  # the Wednesday of that week

SELLER = Principal("seller-1", frozenset({Role.SELLER}))
OTHER_SELLER = Principal("seller-2", frozenset({Role.SELLER}))
ADMIN = Principal("admin-1", frozenset({Role.SITE_ADMIN}))  # acts on every sale
SALE_ADMIN = Principal("sale-admin-1", frozenset({Role.SALE_ADMIN}))  # acts only on the sales assigned to it
CRIER = Principal("crier-1", frozenset({Role.CRIER}))
ROOM_SERVICE = Principal("svc:room", frozenset({Role.SERVICE}))
PUBLIC = ANONYMOUS


def bidder(n: int) -> Principal:
    return Principal(f"bidder-{n}", frozenset({Role.BIDDER}))


def minutes(hh_mm: str) -> int:
    hours, mins = hh_mm.split(":")
    return int(hours) * 60 + int(mins)


# -- fakes ------------------------------------------------------------------------------------


def _page(items: Collection[Any], page: PageRequest, key: Callable[[Any], SortKey]) -> Page[Any]:
    ordered = sorted(items, key=key)
    after = [item for item in ordered if page.after is None or key(item) > page.after]
    return Page.build(after[: page.size + 1], page, key, len(ordered))


class FakeProducts:
    def __init__(self) -> None:
        self.rows: dict[str, Product] = {}

    async def get(self, product_id: str) -> Product | None:
        return self.rows.get(product_id)

    async def get_many(self, product_ids: Collection[str]) -> dict[str, Product]:
        return {i: self.rows[i] for i in product_ids if i in self.rows}

    async def add(self, product: Product) -> None:
        self.rows[product.id] = product

    async def list(self, filter: ProductFilter, page: PageRequest) -> Page[Product]:
        return _page([p for p in self.rows.values() if filter.matches(p)], page, product_key)


class FakeLots:
    def __init__(self) -> None:
        self.rows: dict[str, Lot] = {}

    async def get(self, lot_id: str) -> Lot | None:
        return self.rows.get(lot_id)

    async def add(self, lot: Lot) -> None:
        self.rows[lot.id] = lot

    async def remove(self, lot: Lot) -> None:
        del self.rows[lot.id]

    async def list_by_sale(self, sale_id: str) -> list[Lot]:
        return sorted((lot for lot in self.rows.values() if lot.sale_id == sale_id), key=lot_key)

    async def end_of_running_order(self, sale_id: str) -> RunningOrderEnd:
        return running_order_end([lot for lot in self.rows.values() if lot.sale_id == sale_id])

    async def list_by_group(self, group_id: str) -> list[Lot]:
        return sorted((lot for lot in self.rows.values() if lot.group_id == group_id), key=lambda lot: lot.room_index)

    async def list_scheduled(self, filter: LotFilter, limit: int) -> list[Lot]:
        return sorted((lot for lot in self.rows.values() if filter.matches(lot)), key=lot_schedule_key)[:limit]

    async def list(self, filter: LotFilter, page: PageRequest) -> Page[Lot]:
        return _page([lot for lot in self.rows.values() if filter.matches(lot)], page, lot_key)


class FakeSales:
    def __init__(self, lots: FakeLots) -> None:
        self.rows: dict[str, Sale] = {}
        self._lots = lots

    async def get(self, sale_id: str) -> Sale | None:
        return self.rows.get(sale_id)

    async def get_many(self, sale_ids: Collection[str]) -> dict[str, Sale]:
        return {i: self.rows[i] for i in sale_ids if i in self.rows}

    async def add(self, sale: Sale) -> None:
        self.rows[sale.id] = sale

    async def list(self, filter: SaleFilter, page: PageRequest) -> Page[Sale]:
        def formats(sale: Sale) -> frozenset[Format]:
            return frozenset(lot.terms.format for lot in self._lots.rows.values() if lot.sale_id == sale.id)

        return _page([s for s in self.rows.values() if filter.matches(s, formats(s))], page, sale_key)


class FakeReservations:
    def __init__(self) -> None:
        self.rows: dict[str, Reservation] = {}

    async def get(self, reservation_id: str) -> Reservation | None:
        return self.rows.get(reservation_id)

    async def add(self, reservation: Reservation) -> None:
        if await self.get_active(reservation.group_id, reservation.bidder_id):
            raise AlreadyExists("reservation", reservation.id)  # the partial unique index
        self.rows[reservation.id] = reservation

    async def get_active(self, group_id: str, bidder_id: str) -> Reservation | None:
        return next(
            (
                r
                for r in self.rows.values()
                if r.group_id == group_id and r.bidder_id == bidder_id and r.state is ReservationState.ACTIVE
            ),
            None,
        )

    async def list_active_for_bidder(self, bidder_id: str, group_ids: Collection[str]) -> list[Reservation]:
        return [
            r
            for r in self.rows.values()
            if r.bidder_id == bidder_id and r.group_id in group_ids and r.state is ReservationState.ACTIVE
        ]

    async def list(self, filter: ReservationFilter, page: PageRequest) -> Page[Reservation]:
        return _page([r for r in self.rows.values() if filter.matches(r)], page, reservation_key)


class FakeRegistrations:
    def __init__(self) -> None:
        self.rows: dict[str, Registration] = {}

    async def get(self, registration_id: str) -> Registration | None:
        return self.rows.get(registration_id)

    async def add(self, registration: Registration) -> None:
        if await self.get_for(registration.sale_id, registration.bidder_id):
            raise AlreadyExists("registration", registration.id)
        self.rows[registration.id] = registration

    async def get_for(self, sale_id: str, bidder_id: str) -> Registration | None:
        return next((r for r in self.rows.values() if r.sale_id == sale_id and r.bidder_id == bidder_id), None)

    async def list_for_bidder(self, bidder_id: str, sale_ids: Collection[str]) -> list[Registration]:
        return [r for r in self.rows.values() if r.bidder_id == bidder_id and r.sale_id in sale_ids]

    async def list(self, filter: RegistrationFilter, page: PageRequest) -> Page[Registration]:
        return _page([r for r in self.rows.values() if filter.matches(r)], page, registration_key)


class FakeSeats:
    def __init__(self) -> None:
        self.rows: list[Seat] = []

    async def get(self, group_id: str, bidder_id: str) -> Seat | None:
        return next((s for s in self.rows if s.group_id == group_id and s.bidder_id == bidder_id), None)

    async def count(self, group_id: str) -> int:
        return sum(1 for s in self.rows if s.group_id == group_id)

    async def add(self, seat: Seat) -> None:
        # The adapter's unique constraints: one seat per bidder, one bidder per ordinal.
        if any(s.group_id == seat.group_id and seat.ordinal == s.ordinal for s in self.rows):
            raise AlreadyExists("seat", f"{seat.group_id}#{seat.ordinal}")
        if await self.get(seat.group_id, seat.bidder_id):
            raise AlreadyExists("seat", f"{seat.group_id}/{seat.bidder_id}")
        self.rows.append(seat)


class FakeStaff:
    def __init__(self) -> None:
        self.rows: list[StaffAssignment] = []

    async def list_for_sale(self, sale_id: str) -> list[StaffAssignment]:
        return sorted((a for a in self.rows if a.sale_id == sale_id), key=lambda a: (a.role.value, a.user_id))

    async def add(self, assignment: StaffAssignment) -> None:
        if any(a.key == assignment.key for a in self.rows):
            raise AlreadyExists("staff assignment", "/".join(assignment.key))
        self.rows.append(assignment)

    async def remove(self, assignment: StaffAssignment) -> None:
        self.rows = [a for a in self.rows if a.key != assignment.key]


class FakeUnitOfWork:
    def __init__(self) -> None:
        self.products = FakeProducts()
        self.lots = FakeLots()
        self.sales = FakeSales(self.lots)
        self.reservations = FakeReservations()
        self.registrations = FakeRegistrations()
        self.seats = FakeSeats()
        self.staff = FakeStaff()
        self.pending: list[CatalogEvent] = []
        self.published: list[CatalogEvent] = []
        self.commits = 0

    async def __aenter__(self) -> FakeUnitOfWork:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.rollback()

    async def collect(self, event: CatalogEvent) -> None:
        self.pending.append(event)

    async def commit(self) -> None:
        self.published.extend(self.pending)
        self.pending.clear()
        self.commits += 1

    async def rollback(self) -> None:
        self.pending.clear()


class SequentialIds:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._seeds = itertools.count(1)

    def new_id(self) -> str:
        return f"id-{next(self._ids):04d}"

    def new_seed(self) -> int:
        return next(self._seeds) * 7_919


class FakeDeposits:
    def __init__(self) -> None:
        self.verified: set[tuple[str, str]] = set()
        self.asked: list[tuple[str, str]] = []

    async def has_verified_deposit(self, bidder_id: str, sale_id: str) -> bool:
        self.asked.append((bidder_id, sale_id))
        return (bidder_id, sale_id) in self.verified


# -- builders ---------------------------------------------------------------------------------


def english_terms(opening_bid: int = 10_000, currency: str = "EUR", **params: Any) -> LotTerms:
    increments = params.pop("increments", IncrementTable.preset("auction_house"))
    return LotTerms(
        currency=currency,
        format=Format.ENGLISH,
        params=EnglishParams(opening_bid=opening_bid, increments=increments, duration_ms=300_000, **params),
    )


def dutch_terms() -> LotTerms:
    return LotTerms("EUR", Format.DUTCH, DutchParams(start_price=50_000, floor_price=10_000, tick_ms=1_000, step=500))


def lucky_terms(rule: LuckyWinningRule = LuckyWinningRule.DRAWN, winning_option: int = 0) -> LotTerms:
    return LotTerms(
        "EUR",
        Format.LUCKY,
        LuckyParams(
            ("red", "green", "blue"), price=500, window_ms=60_000, winning_rule=rule, winning_option=winning_option
        ),
    )


def tender_terms(fmt: Format = Format.TENDER_SEALED_FIRST_PRICE, **params: Any) -> LotTerms:
    return LotTerms("EUR", fmt, TenderParams(start_price=params.pop("start_price", 1_000), **params))


def live_sale_spec(
    *slots: tuple[str, str],
    day: date = SALE_DAY,
    time_zone: str = "Europe/Paris",
    title: str = "Spring furniture",
    rule: ApprovalRule = ApprovalRule.AUTO_ALL,
    allow_list: tuple[str, ...] = (),
) -> SaleSpec:
    windows = tuple(TimeSlot(minutes(a), minutes(b)) for a, b in (slots or (("10:00", "12:00"),)))
    return SaleSpec(
        title=title,
        time_zone=time_zone,
        timing=LiveSession(day, windows),
        registration=RegistrationPolicy(rule, allow_list),
    )


def tender_sale_spec(
    starts_at: datetime = datetime(2030, 5, 10, 9, 0, tzinfo=UTC),
    ends_at: datetime = datetime(2030, 5, 17, 9, 0, tzinfo=UTC),
    title: str = "Timed tender",
) -> SaleSpec:
    return SaleSpec(
        title=title,
        time_zone="Europe/Paris",
        timing=TimedTender(starts_at, ends_at),
        registration=RegistrationPolicy(ApprovalRule.AUTO_ALL),
    )


class Catalog:
    """The use cases over one fake unit of work, with ids, deposits and `now` filled in.

    Test modules cannot import this conftest (pytest's importlib mode), so the harness also
    carries the shared principals, dates and builders.
    """

    NOW = NOW
    SALE_DAY = SALE_DAY
    SELLER = SELLER
    OTHER_SELLER = OTHER_SELLER
    ADMIN = ADMIN
    SALE_ADMIN = SALE_ADMIN
    CRIER = CRIER
    ROOM_SERVICE = ROOM_SERVICE
    PUBLIC = PUBLIC
    bidder = staticmethod(bidder)
    english_terms = staticmethod(english_terms)
    dutch_terms = staticmethod(dutch_terms)
    lucky_terms = staticmethod(lucky_terms)
    tender_terms = staticmethod(tender_terms)
    live_sale_spec = staticmethod(live_sale_spec)
    tender_sale_spec = staticmethod(tender_sale_spec)

    def __init__(self) -> None:
        self.uow = FakeUnitOfWork()
        self.ids = SequentialIds()
        self.deposits = FakeDeposits()
        self.now = NOW

    async def __call__(self, use_case: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run `use_case` in its own transaction, passing the ports and `now` it declares."""
        declared = inspect.signature(use_case).parameters
        for name, value in (("ids", self.ids), ("deposits", self.deposits), ("now", self.now)):
            if name in declared:
                kwargs.setdefault(name, value)
        async with self.uow:
            result = await use_case(self.uow, *args, **kwargs)
            await self.uow.commit()
        return result

    @property
    def events(self) -> list[CatalogEvent]:
        return self.uow.published

    def events_of(self, kind: type[CatalogEvent]) -> list[Any]:
        return [event for event in self.uow.published if isinstance(event, kind)]

    # Shortcuts to a known state.

    async def product(self, seller: Principal = SELLER, quantity: int = 1, title: str = "Oak table") -> Product:
        product: Product = await self(create_product, seller, CreateProduct(ProductSpec(title, quantity=quantity)))
        return product

    async def sale(self, owner: Principal = SELLER, spec: SaleSpec | None = None) -> Sale:
        sale: Sale = await self(create_sale, owner, CreateSale(spec or live_sale_spec()))
        return sale

    async def lot(
        self,
        sale: Sale,
        seller: Principal = SELLER,
        quantity: int = 1,
        terms: LotTerms | None = None,
        duration_slots: int = 0,
        title: str = "Oak table",
    ) -> list[Lot]:
        product = await self.product(seller, quantity, title)
        views = await self(
            add_lot, seller, AddLot(sale.id, LotSpec(product.id, terms or english_terms(), duration_slots))
        )
        return [view.lot for view in views]

    async def published_sale(
        self, quantity: int = 1, spec: SaleSpec | None = None, terms: LotTerms | None = None
    ) -> tuple[Sale, list[Lot]]:
        sale = await self.sale(spec=spec)
        lots = await self.lot(sale, quantity=quantity, terms=terms)
        await self(publish_sale, SELLER, sale.id)
        return sale, lots

    async def registered(self, sale: Sale, who: Principal) -> Registration:
        registration: Registration = await self(register_for_sale, who, sale.id)
        if not registration.is_approved:
            registration = await self(decide_registration, ADMIN, DecideRegistration(registration.id, approve=True))
        return registration


@pytest.fixture
def catalog() -> Catalog:
    return Catalog()
