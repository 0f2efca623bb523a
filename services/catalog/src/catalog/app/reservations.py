"""Reservations: reserve a lot group (and get a seat), cancel, list one's own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from catalog.app.common import load_group, load_lot, load_sale, require_sale_staff, seat_bidder
from catalog.app.ports import CatalogUnitOfWork, IdGenerator
from catalog.domain.access import ADMINS, require_owner
from catalog.domain.events import ReservationCancelled, ReservationCreated
from catalog.domain.paging import Page, PageRequest
from catalog.domain.queries import RESERVATIONS, ReservationFilter
from catalog.domain.reservations import Reservation, ReservationState
from catalog.domain.seating import Seat, reservation_blocker
from catalog.domain.staff import StaffRole
from catalog.domain.validation import require_id
from gavel_core.auth import Principal, Role
from gavel_core.errors import NotFound


@dataclass(frozen=True, slots=True)
class ReservedLot:
    reservation: Reservation
    seat: Seat | None  # live formats only: tenders have no rooms


@dataclass(frozen=True, slots=True)
class ListMyReservations:
    page_size: int = 0
    page_token: str = ""
    include_cancelled: bool = False
    sale_id: str | None = None


async def reserve_lot(
    uow: CatalogUnitOfWork, principal: Principal, lot_id: str, *, ids: IdGenerator, now: datetime
) -> ReservedLot:
    """Reserve a lot group: notify will remind the bidder, and (live formats) they get their seat now.

    - Bidders only, never the lot's seller (OWN_LOT), with an approved registration for the
      sale (NOT_REGISTERED).
    - The group is scheduled (INVALID_STATE) and has not reached its estimated start (TOO_LATE).
    - One active reservation per bidder and group: reserving again returns it unchanged.
    - Seating follows reservation order (see catalog.domain.seating). Emits ReservationCreated
      and, for a new seat, SeatAssigned.
    """
    principal.require(Role.BIDDER)
    require_id("lot_id", lot_id)
    group = await load_group(uow, await load_lot(uow, principal, lot_id))
    sale = await load_sale(uow, principal, group.lead.sale_id)
    registration = await uow.registrations.get_for(group.lead.sale_id, principal.subject)
    blocker = reservation_blocker(principal, group, registration, now, sale.registration.required)
    if blocker is not None:
        raise blocker
    reservation = await uow.reservations.get_active(group.id, principal.subject)
    if reservation is None:
        reservation = Reservation(
            id=ids.new_id(),
            group_id=group.id,
            sale_id=group.lead.sale_id,
            bidder_id=principal.subject,
            state=ReservationState.ACTIVE,
            created_at=now,
            estimated_start=group.lead.estimated_start,
        )
        await uow.reservations.add(reservation)
        await uow.collect(
            ReservationCreated(
                event_id=ids.new_id(),
                occurred_at=now,
                reservation_id=reservation.id,
                group_id=group.id,
                sale_id=reservation.sale_id,
                bidder_id=principal.subject,
                estimated_start=reservation.estimated_start,
            )
        )
    seat = await seat_bidder(uow, ids, group, principal.subject, now) if group.lead.is_live_format else None
    return ReservedLot(reservation, seat)


async def cancel_reservation(
    uow: CatalogUnitOfWork, principal: Principal, reservation_id: str, *, ids: IdGenerator, now: datetime
) -> Reservation:
    """Cancel an active reservation.

    - The bidder who made it, a sale admin of its sale or a site admin (NOT_OWNER / NOT_STAFF);
      only active ones (INVALID_STATE).
    - The seat is kept: reserving again, or entering, returns the same room.
    - Emits ReservationCancelled.
    """
    principal.require(Role.BIDDER, *ADMINS)
    require_id("reservation_id", reservation_id)
    reservation = await uow.reservations.get(reservation_id)
    if reservation is None:
        raise NotFound("reservation", reservation_id)
    if principal.subject != reservation.bidder_id:
        if not principal.has(*ADMINS):
            require_owner(principal, reservation.bidder_id, "reservation", reservation.id)
        await require_sale_staff(
            uow, principal, reservation.sale_id, StaffRole.SALE_ADMIN, action="cancel its bidders' reservations"
        )
    reservation.cancel(now)
    await uow.collect(
        ReservationCancelled(
            event_id=ids.new_id(),
            occurred_at=now,
            reservation_id=reservation.id,
            group_id=reservation.group_id,
            sale_id=reservation.sale_id,
            bidder_id=reservation.bidder_id,
        )
    )
    return reservation


async def list_my_reservations(
    uow: CatalogUnitOfWork, principal: Principal, query: ListMyReservations
) -> Page[Reservation]:
    """The caller's reservations (active only unless asked), oldest first."""
    principal.require(Role.BIDDER)
    page = PageRequest.parse(RESERVATIONS, query.page_size, query.page_token)
    reservation_filter = ReservationFilter(principal.subject, query.sale_id or None, query.include_cancelled)
    reservation_filter.validate()
    return await uow.reservations.list(reservation_filter, page)
