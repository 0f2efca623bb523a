"""Lots in draft sales: add, update, remove, reorder; and reading lots."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from catalog.app.common import load_group, load_lot, load_sale, require_manager
from catalog.app.ports import CatalogUnitOfWork, IdGenerator
from catalog.domain.access import MANAGERS, Viewer, require_owner
from catalog.domain.events import LotScheduled, LotWithdrawn, PublishedLot
from catalog.domain.lots import (
    MAX_LOTS_PER_SALE,
    LotSpec,
    LotView,
    groups_of,
    lay_out,
    lay_out_appended,
    new_group,
    renumber,
    view_lot,
)
from catalog.domain.paging import Page, PageRequest
from catalog.domain.queries import LOTS, LotFilter
from catalog.domain.sales import Sale, SaleKind
from catalog.domain.states import State, invalid_state
from catalog.domain.validation import MAX_REASON, check_ids, check_text, require_id
from gavel_core.auth import Principal
from gavel_core.errors import AlreadyExists, FieldViolation, InvalidArgument, NotFound, Violations
from gavel_core.formats import Format, LotTerms

# A product is offered in one open lot group at a time, so its units cannot be sold twice.
_OPEN_STATES = frozenset({State.DRAFT, State.SCHEDULED, State.LIVE})


@dataclass(frozen=True, slots=True)
class AddLot:
    sale_id: str
    lot: LotSpec


@dataclass(frozen=True, slots=True)
class UpdateLot:
    lot_id: str  # any lot of the group
    terms: LotTerms
    duration_slots: int = 0


@dataclass(frozen=True, slots=True)
class WithdrawLot:
    lot_id: str  # any lot of the group
    reason: str


@dataclass(frozen=True, slots=True)
class ReorderLots:
    sale_id: str
    lot_ids: tuple[str, ...]  # every group id of the sale, in the new order


@dataclass(frozen=True, slots=True)
class ListLots:
    page_size: int = 0
    page_token: str = ""
    sale_id: str | None = None
    seller_id: str | None = None
    states: frozenset[State] = frozenset()
    format: Format | None = None
    starts_from: datetime | None = None
    starts_before: datetime | None = None


async def _managed_draft_sale(uow: CatalogUnitOfWork, principal: Principal, sale_id: str, action: str) -> Sale:
    sale = await load_sale(uow, principal, sale_id)
    await require_manager(uow, principal, sale)
    sale.require_draft(action)
    return sale


async def add_lot(
    uow: CatalogUnitOfWork, principal: Principal, command: AddLot, *, ids: IdGenerator, now: datetime
) -> tuple[LotView, ...]:
    """Add a product to a draft or scheduled sale as a group of N lots, N = the product's quantity
    (one per room).

    - Only the sale's owner, an assigned sale admin or a site admin (NOT_OWNER / NOT_STAFF); a
      seller adds only their own products (NOT_OWNER).
    - The sale is a draft, or scheduled (published, no lot started yet): then the group is
      published at once — it must fit the session's time slots — and LotScheduled is emitted
      for each lot. This is how a seller replaces a published lot: withdraw it, add a new one.
    - The terms are valid (`lot.…` paths) and of a format the sale's kind takes: english, dutch
      or lucky for live sessions, tender formats for timed tenders; live lots take 1-36 slots.
    - A product is in at most one open (draft, scheduled or live) group (AlreadyExists), and a
      sale holds at most 1,000 lots.
    - Each lot gets its own secret seed; the group goes last in the running order.
    """
    principal.require(*MANAGERS)
    require_id("sale_id", command.sale_id)
    require_id("lot.product_id", command.lot.product_id)
    sale = await load_sale(uow, principal, command.sale_id)
    await require_manager(uow, principal, sale)
    if sale.state not in (State.DRAFT, State.SCHEDULED):
        raise invalid_state("sale", sale.id, sale.state, "add lots to")
    product = await uow.products.get(command.lot.product_id)
    if product is None:
        raise NotFound("product", command.lot.product_id)
    require_owner(principal, product.seller_id, "product", product.id)
    end = await uow.lots.end_of_running_order(sale.id)  # not every lot: adding stays O(group size)
    lot_ids = [ids.new_id() for _ in range(product.quantity)]
    seeds = [ids.new_seed() for _ in range(product.quantity)]
    group = new_group(sale, product, command.lot, lot_ids, seeds, end.next_position, now)
    open_lots = await uow.lots.list(
        LotFilter(viewer=Viewer("", sees_all_drafts=True), product_id=product.id, states=_OPEN_STATES),
        PageRequest(LOTS, size=1),
    )
    if open_lots.items:
        holder = open_lots.items[0]
        raise AlreadyExists(
            "lot", holder.group_id, f"product {product.id!r} is already offered in sale {holder.sale_id!r}"
        )
    if end.lot_count + len(group) > MAX_LOTS_PER_SALE:
        raise InvalidArgument([FieldViolation("sale_id", f"a sale holds at most {MAX_LOTS_PER_SALE} lots")])
    if not lay_out_appended(sale, end, group):  # a session day with a clock change
        lay_out(sale, [*await uow.lots.list_by_sale(sale.id), *group])
    if sale.state is State.SCHEDULED:
        if sale.kind is SaleKind.LIVE_SESSION and group[0].estimated_start is None:
            raise InvalidArgument(
                [FieldViolation("lot.duration_slots", "the lot does not fit in the session's time slots")]
            )
        for lot in group:
            lot.schedule(now)
    for lot in group:
        await uow.lots.add(lot)
        if lot.state is State.SCHEDULED:
            await uow.collect(LotScheduled.of(lot, ids.new_id(), now, sale))
    return tuple(view_lot(principal, lot) for lot in group)


async def update_lot(
    uow: CatalogUnitOfWork, principal: Principal, command: UpdateLot, *, now: datetime
) -> tuple[LotView, ...]:
    """Replace the terms and slot count of a draft lot's whole group, then lay the sale out again.

    - Only the sale's owner, an assigned sale admin or a site admin (NOT_OWNER / NOT_STAFF).
    - Only drafts: a published lot's terms are frozen (TERMS_FROZEN) — withdraw it and add a new one.
    - Same term rules as AddLot; every lot keeps its own seed.
    """
    principal.require(*MANAGERS)
    require_id("lot.id", command.lot_id)
    lot = await load_lot(uow, principal, command.lot_id)
    sale = await load_sale(uow, principal, lot.sale_id)
    await require_manager(uow, principal, sale)
    group = await load_group(uow, lot)
    for room in group.rooms:
        room.require_editable()
    sale.require_draft("edit lots of")
    spec = LotSpec(lot.product_id, command.terms, command.duration_slots)
    spec.validate(sale.kind)
    for room in group.rooms:
        room.edit(command.terms, spec.slots_for(sale.kind), now)
    lay_out(sale, await uow.lots.list_by_sale(sale.id))
    return tuple(view_lot(principal, room) for room in group.rooms)


async def remove_lot(uow: CatalogUnitOfWork, principal: Principal, lot_id: str, *, now: datetime) -> None:
    """Remove a draft lot's whole group from its sale; the groups after it move up.

    - Only the sale's owner or an admin (NOT_OWNER); the sale and lots are drafts (INVALID_STATE).
    """
    principal.require(*MANAGERS)
    require_id("lot_id", lot_id)
    lot = await load_lot(uow, principal, lot_id)
    sale = await _managed_draft_sale(uow, principal, lot.sale_id, "remove lots from")
    group = await load_group(uow, lot)
    for room in group.rooms:
        room.require_draft("remove")
        await uow.lots.remove(room)
    remaining = [other for other in await uow.lots.list_by_sale(sale.id) if other.group_id != group.id]
    renumber(groups_of(remaining), now)
    lay_out(sale, remaining)


async def withdraw_lot(
    uow: CatalogUnitOfWork, principal: Principal, command: WithdrawLot, *, ids: IdGenerator, now: datetime
) -> tuple[LotView, ...]:
    """Withdraw a published lot's whole group before it starts; every room ends cancelled.

    - Only the sale's owner, an assigned sale admin or a site admin (NOT_OWNER / NOT_STAFF).
    - Every room of the group is scheduled: a live one is stopped in the room by a sale admin
      (RoomService.Withdraw; LOT_LIVE here), a draft is removed instead (INVALID_STATE).
    - A reason of 1-500 characters. Emits LotWithdrawn per room: the room closes it.
    """
    principal.require(*MANAGERS)
    violations = Violations()
    check_text(violations, "reason", command.reason, max_length=MAX_REASON)
    violations.raise_if_any()
    require_id("lot_id", command.lot_id)
    lot = await load_lot(uow, principal, command.lot_id)
    sale = await load_sale(uow, principal, lot.sale_id)
    await require_manager(uow, principal, sale)
    group = await load_group(uow, lot)
    for room in group.rooms:
        room.withdraw(now)
    if sale.state is State.LIVE and all(other.state.is_terminal for other in await uow.lots.list_by_sale(sale.id)):
        sale.close(now)
    for room in group.rooms:
        await uow.collect(
            LotWithdrawn(
                event_id=ids.new_id(),
                occurred_at=now,
                lot=PublishedLot.of(room, sale),
                reason=command.reason.strip(),
                sale_cancelled=False,
                withdrawn_by=principal.subject,
            )
        )
    return tuple(view_lot(principal, room) for room in group.rooms)


async def reorder_lots(
    uow: CatalogUnitOfWork, principal: Principal, command: ReorderLots, *, now: datetime
) -> tuple[LotView, ...]:
    """Set a draft sale's running order and lay it out again.

    - Only the sale's owner or an admin (NOT_OWNER); only drafts (INVALID_STATE).
    - `lot_ids` names every group of the sale (its room-0 lot id) exactly once.
    """
    principal.require(*MANAGERS)
    require_id("sale_id", command.sale_id)
    violations = Violations()
    check_ids(violations, "lot_ids", command.lot_ids, max_items=MAX_LOTS_PER_SALE)
    violations.raise_if_any()
    sale = await _managed_draft_sale(uow, principal, command.sale_id, "reorder lots of")
    lots = await uow.lots.list_by_sale(sale.id)
    groups = {group.id: group for group in groups_of(lots)}
    unknown = [lot_id for lot_id in command.lot_ids if lot_id not in groups]
    missing = sorted(set(groups) - set(command.lot_ids))
    if unknown or missing:
        problems = [FieldViolation("lot_ids", f"{lot_id!r} is not a lot group of this sale") for lot_id in unknown]
        problems += [FieldViolation("lot_ids", f"lot group {lot_id!r} is missing") for lot_id in missing]
        raise InvalidArgument(problems)
    renumber([groups[lot_id] for lot_id in command.lot_ids], now)
    lay_out(sale, lots)
    return tuple(view_lot(principal, lot) for lot in sorted(lots, key=lambda lot: (lot.position, lot.room_index)))


async def get_lot(uow: CatalogUnitOfWork, principal: Principal, lot_id: str) -> LotView:
    """Anyone may read a scheduled or later lot; drafts only their seller and admins.

    Secrets (seed, reserve, tender minimum, fixed lucky option) are hidden from everyone but the
    seller, admins and services.
    """
    require_id("lot_id", lot_id)
    return view_lot(principal, await load_lot(uow, principal, lot_id))


async def list_lots(uow: CatalogUnitOfWork, principal: Principal, query: ListLots) -> Page[LotView]:
    """List lots by sale, seller, states, format and estimated-start range, in running order.

    Drafts appear only to their seller and admins; secrets are hidden as in GetLot.
    """
    page = PageRequest.parse(LOTS, query.page_size, query.page_token)
    lot_filter = LotFilter(
        viewer=Viewer.of(principal),
        sale_id=query.sale_id or None,
        seller_id=query.seller_id or None,
        states=query.states,
        format=query.format,
        starts_from=query.starts_from,
        starts_before=query.starts_before,
    )
    lot_filter.validate()
    return (await uow.lots.list(lot_filter, page)).map(lambda lot: view_lot(principal, lot))
