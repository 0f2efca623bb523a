"""Loading rules the use cases share: not found, not visible, and seating."""

from __future__ import annotations

from datetime import datetime

from catalog.app.ports import CatalogUnitOfWork, IdGenerator
from catalog.domain.access import Viewer, require_sale_manager
from catalog.domain.events import SeatAssigned
from catalog.domain.lots import Lot, LotGroup
from catalog.domain.sales import Sale
from catalog.domain.seating import Seat, assign_seat
from catalog.domain.staff import StaffAssignment, StaffRole, acts_on_every_sale, require_staff
from catalog.domain.states import State
from gavel_core.auth import Principal
from gavel_core.errors import NotFound


async def load_sale(uow: CatalogUnitOfWork, principal: Principal, sale_id: str) -> Sale:
    """The sale, or NotFound — also for a draft the caller may not see, so drafts do not leak."""
    sale = await uow.sales.get(sale_id)
    if sale is None or (sale.state is State.DRAFT and not Viewer.of(principal).sees_draft_of(sale.owner_id)):
        raise NotFound("sale", sale_id)
    return sale


async def load_lot(uow: CatalogUnitOfWork, principal: Principal, lot_id: str) -> Lot:
    """The lot, or NotFound — also for a draft lot the caller may not see."""
    lot = await uow.lots.get(lot_id)
    if lot is None or (lot.state is State.DRAFT and not Viewer.of(principal).sees_draft_of(lot.seller_id)):
        raise NotFound("lot", lot_id)
    return lot


async def sale_staff(uow: CatalogUnitOfWork, principal: Principal, sale_id: str) -> list[StaffAssignment]:
    """The sale's staff, read only when the caller's access depends on it."""
    if acts_on_every_sale(principal):
        return []
    return await uow.staff.list_for_sale(sale_id)


async def require_manager(uow: CatalogUnitOfWork, principal: Principal, sale: Sale) -> None:
    """The sale's owner, an assigned sale admin, a site admin or a service (NOT_OWNER / NOT_STAFF)."""
    if principal.subject == sale.owner_id:
        return
    require_sale_manager(principal, sale.owner_id, sale.id, await sale_staff(uow, principal, sale.id))


async def require_sale_staff(
    uow: CatalogUnitOfWork, principal: Principal, sale_id: str, *roles: StaffRole, action: str
) -> None:
    """Site admins and services, or a holder of one of `roles` in the sale (NOT_STAFF)."""
    require_staff(principal, sale_id, await sale_staff(uow, principal, sale_id), *roles, action=action)


async def load_group(uow: CatalogUnitOfWork, lot: Lot) -> LotGroup:
    return LotGroup.of(await uow.lots.list_by_group(lot.group_id))


async def seat_bidder(uow: CatalogUnitOfWork, ids: IdGenerator, group: LotGroup, bidder_id: str, now: datetime) -> Seat:
    """The bidder's seat in the group: the one they have, or the next round-robin one (SeatAssigned)."""
    seat = await uow.seats.get(group.id, bidder_id)
    if seat is not None:
        return seat
    seat = assign_seat(group, bidder_id, await uow.seats.count(group.id), now)
    await uow.seats.add(seat)
    await uow.collect(
        SeatAssigned(
            event_id=ids.new_id(),
            occurred_at=now,
            group_id=seat.group_id,
            lot_id=seat.lot_id,
            sale_id=seat.sale_id,
            bidder_id=bidder_id,
            room_index=seat.room_index,
        )
    )
    return seat
