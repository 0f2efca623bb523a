"""What the catalog's use cases need from the outside world, as Protocols.

An adapter implements these with SQLAlchemy 2 (async session, imperative mapping of the domain
dataclasses) plus the kit's outbox; the unit tests implement them in memory.

Transactions: a use case runs *inside* a unit of work its caller has entered, and never commits
itself. The caller commits after it — `gavel_kit.db.run_idempotent` does exactly that, storing
the gRPC answer for the request id in the same transaction as the change and its events; reads
use `catalog.app.runner.run`. Entities returned by `get`/`list` are tracked: a use case changes
them in place and the unit of work persists the changes on commit (SQLAlchemy's identity map).

Concurrency the adapter must guarantee with constraints (a violation surfaces as
`gavel_core.errors.Aborted`, and the client retries with the same request id):
  * seats: unique (group_id, bidder_id) and unique (group_id, ordinal) — two bidders seated at
    once cannot share an ordinal, so round-robin stays exact;
  * reservations: at most one ACTIVE per (group_id, bidder_id) (a partial unique index);
  * registrations: unique (sale_id, bidder_id);
  * sales and lots: optimistic locking (a version column), so two edits of one draft do not
    silently overwrite each other.
"""

from __future__ import annotations

from collections.abc import Collection
from types import TracebackType
from typing import Protocol, Self

from catalog.domain.events import CatalogEvent
from catalog.domain.lots import Lot, RunningOrderEnd
from catalog.domain.paging import Page, PageRequest
from catalog.domain.products import Product
from catalog.domain.queries import LotFilter, ProductFilter, RegistrationFilter, ReservationFilter, SaleFilter
from catalog.domain.registrations import Registration
from catalog.domain.reservations import Reservation
from catalog.domain.sales import Sale
from catalog.domain.seating import Seat
from catalog.domain.staff import StaffAssignment

# Every `list` returns the page of items whose sort key (catalog.domain.queries.*_key) follows
# `page.after`, built with `Page.build(rows, page, key, total_size)` from up to page.size + 1
# rows, and `total_size` = how many items match the filter in all.


class ProductRepository(Protocol):
    async def get(self, product_id: str) -> Product | None: ...
    async def get_many(self, product_ids: Collection[str]) -> dict[str, Product]: ...
    async def add(self, product: Product) -> None: ...
    async def list(self, filter: ProductFilter, page: PageRequest) -> Page[Product]:
        """Ordered by `product_key`: (created_at, id)."""
        ...


class SaleRepository(Protocol):
    async def get(self, sale_id: str) -> Sale | None: ...
    async def get_many(self, sale_ids: Collection[str]) -> dict[str, Sale]: ...
    async def add(self, sale: Sale) -> None: ...
    async def list(self, filter: SaleFilter, page: PageRequest) -> Page[Sale]:
        """Ordered by `sale_key`: (starts_at, id). `filter.format` is an EXISTS over the sale's lots."""
        ...


class LotRepository(Protocol):
    async def get(self, lot_id: str) -> Lot | None: ...
    async def add(self, lot: Lot) -> None: ...
    async def remove(self, lot: Lot) -> None: ...
    async def list_by_sale(self, sale_id: str) -> list[Lot]:
        """Every lot of the sale (at most MAX_LOTS_PER_SALE), by (position, room_index)."""
        ...

    async def end_of_running_order(self, sale_id: str) -> RunningOrderEnd:
        """How many lots the sale has, and a room of its last group: the highest (position,
        group_id). Without loading the other lots (`catalog.domain.lots.running_order_end`)."""
        ...

    async def list_by_group(self, group_id: str) -> list[Lot]:
        """Every room of the group, by room_index."""
        ...

    async def list_scheduled(self, filter: LotFilter, limit: int) -> list[Lot]:
        """At most `limit` lots matching `filter`, by `lot_schedule_key` (estimated start first)."""
        ...

    async def list(self, filter: LotFilter, page: PageRequest) -> Page[Lot]:
        """Ordered by `lot_key`: (sale_id, position, room_index)."""
        ...


class ReservationRepository(Protocol):
    async def get(self, reservation_id: str) -> Reservation | None: ...
    async def add(self, reservation: Reservation) -> None: ...
    async def get_active(self, group_id: str, bidder_id: str) -> Reservation | None: ...
    async def list_active_for_bidder(self, bidder_id: str, group_ids: Collection[str]) -> list[Reservation]: ...
    async def list(self, filter: ReservationFilter, page: PageRequest) -> Page[Reservation]:
        """Ordered by `reservation_key`: (created_at, id)."""
        ...


class RegistrationRepository(Protocol):
    async def get(self, registration_id: str) -> Registration | None: ...
    async def add(self, registration: Registration) -> None: ...
    async def get_for(self, sale_id: str, bidder_id: str) -> Registration | None: ...
    async def list_for_bidder(self, bidder_id: str, sale_ids: Collection[str]) -> list[Registration]: ...
    async def list(self, filter: RegistrationFilter, page: PageRequest) -> Page[Registration]:
        """Ordered by `registration_key`: (created_at, id)."""
        ...


class SeatRepository(Protocol):
    async def get(self, group_id: str, bidder_id: str) -> Seat | None: ...
    async def count(self, group_id: str) -> int:
        """How many bidders are seated in the group: the next bidder's ordinal."""
        ...

    async def add(self, seat: Seat) -> None: ...


class StaffRepository(Protocol):
    async def list_for_sale(self, sale_id: str) -> list[StaffAssignment]:
        """Every assignment of the sale, by (role, user_id)."""
        ...

    async def add(self, assignment: StaffAssignment) -> None: ...
    async def remove(self, assignment: StaffAssignment) -> None: ...


class CatalogUnitOfWork(Protocol):
    """One transaction over the catalog's repositories, plus the events it will publish."""

    @property
    def products(self) -> ProductRepository: ...
    @property
    def sales(self) -> SaleRepository: ...
    @property
    def lots(self) -> LotRepository: ...
    @property
    def reservations(self) -> ReservationRepository: ...
    @property
    def registrations(self) -> RegistrationRepository: ...
    @property
    def seats(self) -> SeatRepository: ...
    @property
    def staff(self) -> StaffRepository: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Roll back whatever was not committed."""
        ...

    async def collect(self, event: CatalogEvent) -> None:
        """Publish `event` if, and only if, this unit of work commits (outbox row, same transaction)."""
        ...

    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...


class IdGenerator(Protocol):
    """The catalog's only sources of entropy, injected so use cases stay deterministic under test."""

    def new_id(self) -> str:
        """A new opaque, time-ordered id (UUIDv7 or ULID) of letters, digits and '-' only: ids
        appear as NATS subject tokens."""
        ...

    def new_seed(self) -> int:
        """A secret random seed in [0, 2**63) for a lot's seeded choices (from `secrets`, not `random`)."""
        ...


class DepositChecker(Protocol):
    """Asked only for sales whose registration rule is AUTO_VERIFIED_DEPOSIT (payment service)."""

    async def has_verified_deposit(self, bidder_id: str, sale_id: str) -> bool: ...
