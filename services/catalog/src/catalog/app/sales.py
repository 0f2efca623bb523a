"""Sales: create, update, get, search, publish, cancel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from catalog.app.common import load_sale, require_manager
from catalog.app.ports import CatalogUnitOfWork, IdGenerator
from catalog.app.staff import staff_changed
from catalog.domain.access import MANAGERS, Viewer
from catalog.domain.events import LotScheduled, LotWithdrawn, PublishedLot, SaleCancelled, SalePublished
from catalog.domain.lots import LotView, check_publishable, lay_out, view_lot
from catalog.domain.paging import Page, PageRequest
from catalog.domain.queries import SALES, SaleFilter
from catalog.domain.sales import Sale, SaleKind, SaleSpec
from catalog.domain.staff import StaffAssignment, StaffRole
from catalog.domain.states import State
from catalog.domain.validation import require_id
from gavel_core.auth import Principal, Role
from gavel_core.formats import Format


@dataclass(frozen=True, slots=True)
class CreateSale:
    sale: SaleSpec


@dataclass(frozen=True, slots=True)
class UpdateSale:
    sale_id: str
    sale: SaleSpec


@dataclass(frozen=True, slots=True)
class ListSales:
    page_size: int = 0
    page_token: str = ""
    seller_id: str | None = None
    states: frozenset[State] = frozenset()
    kind: SaleKind | None = None
    format: Format | None = None
    starts_from: datetime | None = None
    starts_before: datetime | None = None
    query: str | None = None


@dataclass(frozen=True, slots=True)
class CancelSale:
    sale_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class PublishedSale:
    sale: Sale
    lots: tuple[LotView, ...]


async def create_sale(
    uow: CatalogUnitOfWork, principal: Principal, command: CreateSale, *, ids: IdGenerator, now: datetime
) -> Sale:
    """Create a draft sale owned by the caller.

    - Sellers and admins only.
    - Title 1-200 characters; a known IANA time zone; a live session has 1-12 ordered,
      non-overlapping time slots on 10-minute boundaries; a timed tender ends after it starts and
      runs at most 90 days; either starts in the future, within two years.
    - An allow-list only with rule auto_allow_list.
    - A sale admin who creates a sale is assigned to it as its sale admin (SaleStaffChanged).
    """
    principal.require(*MANAGERS)
    sale = Sale.create(ids.new_id(), principal.subject, command.sale, now)
    await uow.sales.add(sale)
    if principal.has(Role.SALE_ADMIN):  # who creates a sale administers it
        assignment = StaffAssignment(sale.id, principal.subject, StaffRole.SALE_ADMIN, principal.subject, now)
        await uow.staff.add(assignment)
        await staff_changed(uow, ids, sale.id, [assignment], now)
    return sale


async def update_sale(uow: CatalogUnitOfWork, principal: Principal, command: UpdateSale, *, now: datetime) -> Sale:
    """Replace a draft sale's editable fields and lay its lots out again.

    - Only its owner, an assigned sale admin or a site admin (NOT_OWNER / NOT_STAFF); only
      drafts (INVALID_STATE).
    - Same rules as creation. Lots that no longer fit keep no estimated start until they do.
    """
    principal.require(*MANAGERS)
    require_id("sale.id", command.sale_id)
    sale = await load_sale(uow, principal, command.sale_id)
    await require_manager(uow, principal, sale)
    sale.update(command.sale, now)
    lay_out(sale, await uow.lots.list_by_sale(sale.id))
    return sale


async def get_sale(uow: CatalogUnitOfWork, principal: Principal, sale_id: str) -> Sale:
    """Anyone may read a published sale; a draft only its owner and admins (others get NotFound)."""
    require_id("sale_id", sale_id)
    return await load_sale(uow, principal, sale_id)


async def list_sales(uow: CatalogUnitOfWork, principal: Principal, query: ListSales) -> Page[Sale]:
    """Search sales by owner, states, kind, lot format, start range and title text, soonest first.

    Drafts appear only to their owner and admins.
    """
    page = PageRequest.parse(SALES, query.page_size, query.page_token)
    sale_filter = SaleFilter(
        viewer=Viewer.of(principal),
        owner_id=query.seller_id or None,
        states=query.states,
        kind=query.kind,
        format=query.format,
        starts_from=query.starts_from,
        starts_before=query.starts_before,
        query=query.query or None,
    )
    sale_filter.validate()
    return await uow.sales.list(sale_filter, page)


async def publish_sale(
    uow: CatalogUnitOfWork, principal: Principal, sale_id: str, *, ids: IdGenerator, now: datetime
) -> PublishedSale:
    """Validate a whole draft sale and schedule it with all its lots.

    - Only its owner, an assigned sale admin or a site admin (NOT_OWNER / NOT_STAFF); only
      drafts (INVALID_STATE).
    - The sale is still valid and in the future; it has at least one lot; every lot's terms are
      valid and of a format its kind takes; every live-session lot fits in the time slots.
      Problems are reported together as InvalidArgument under `sale.…` / `sale.lots[i].…`.
    - Emits SalePublished, then LotScheduled for every lot.
    """
    principal.require(*MANAGERS)
    require_id("sale_id", sale_id)
    sale = await load_sale(uow, principal, sale_id)
    await require_manager(uow, principal, sale)
    sale.require_draft("publish")
    lots = await uow.lots.list_by_sale(sale.id)
    lay_out(sale, lots)
    check_publishable(sale, lots, now)
    sale.publish(now)
    for lot in lots:
        lot.schedule(now)
    await uow.collect(
        SalePublished(
            event_id=ids.new_id(),
            occurred_at=now,
            sale_id=sale.id,
            owner_id=sale.owner_id,
            title=sale.title,
            kind=sale.kind,
            time_zone=sale.time_zone,
            starts_at=sale.starts_at,
            ends_at=sale.ends_at,
            lot_ids=tuple(lot.id for lot in lots),
        )
    )
    for lot in lots:
        await uow.collect(LotScheduled.of(lot, ids.new_id(), now, sale))
    return PublishedSale(sale, tuple(view_lot(principal, lot) for lot in lots))


async def cancel_sale(
    uow: CatalogUnitOfWork, principal: Principal, command: CancelSale, *, ids: IdGenerator, now: datetime
) -> Sale:
    """Cancel a draft or scheduled sale and every lot in it.

    - Only its owner, an assigned sale admin or a site admin (NOT_OWNER / NOT_STAFF); a live,
      closed or cancelled sale cannot be cancelled (INVALID_STATE) — a live sale's lots are
      withdrawn one by one in their rooms.
    - A reason of 1-500 characters. Reservations stay for the record; notify tells reservers.
    - Emits SaleCancelled, then LotWithdrawn for every lot that was published (the room closes
      them: a watcher waiting for one is told).
    """
    principal.require(*MANAGERS)
    require_id("sale_id", command.sale_id)
    sale = await load_sale(uow, principal, command.sale_id)
    await require_manager(uow, principal, sale)
    sale.cancel(command.reason, now)
    lots = await uow.lots.list_by_sale(sale.id)
    published = [lot for lot in lots if lot.state is State.SCHEDULED]
    for lot in lots:
        if not lot.state.is_terminal:  # lots withdrawn before stay as they are
            lot.cancel(now)
    await uow.collect(
        SaleCancelled(
            event_id=ids.new_id(),
            occurred_at=now,
            sale_id=sale.id,
            reason=sale.cancel_reason,
            lot_ids=tuple(lot.id for lot in lots),
        )
    )
    for lot in published:
        await uow.collect(
            LotWithdrawn(
                event_id=ids.new_id(),
                occurred_at=now,
                lot=PublishedLot.of(lot, sale),
                reason=sale.cancel_reason,
                sale_cancelled=True,
                withdrawn_by=principal.subject,
            )
        )
    return sale
