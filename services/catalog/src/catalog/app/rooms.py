"""Rooms: seating bidders, and the lot life cycle the scheduler and the room service drive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from catalog.app.common import load_group, load_lot, load_sale, require_sale_staff, seat_bidder
from catalog.app.ports import CatalogUnitOfWork, IdGenerator
from catalog.domain.access import OPERATORS
from catalog.domain.events import LotOutcomeRecorded, LotsRetimed, LotStarting, PublishedLot
from catalog.domain.lots import LotResult, LotView, view_lot
from catalog.domain.retiming import retime_after
from catalog.domain.sales import SaleKind
from catalog.domain.seating import Seat, entry_blocker
from catalog.domain.staff import StaffRole
from catalog.domain.states import State
from catalog.domain.validation import require_id
from gavel_core.auth import Principal, Role
from gavel_core.errors import NotFound, PermissionDenied

NOT_ROOM = "NOT_ROOM"
ROOM_SERVICE = "svc:room"
TENDER_SERVICE = "svc:tender"


@dataclass(frozen=True, slots=True)
class CloseLot:
    lot_id: str
    result: LotResult


@dataclass(frozen=True, slots=True)
class SeatLookup:
    seated: bool  # the bidder sits in exactly the lot asked about
    seat: Seat | None  # their seat in the lot's group, possibly another room


async def enter_room(
    uow: CatalogUnitOfWork, principal: Principal, lot_id: str, *, ids: IdGenerator, now: datetime
) -> Seat:
    """Return the caller's seat in the lot's group, seating them round-robin if they have none.

    - Bidders only, never the lot's seller (OWN_LOT), with an approved registration for the
      sale (NOT_REGISTERED).
    - Live formats only, from 15 minutes before the estimated start while any room of the group
      is scheduled or live (LOT_NOT_OPEN / INVALID_STATE).
    - Stable: the same seat on every call. A new seat emits SeatAssigned.
    """
    principal.require(Role.BIDDER)
    require_id("lot_id", lot_id)
    group = await load_group(uow, await load_lot(uow, principal, lot_id))
    sale = await load_sale(uow, principal, group.lead.sale_id)
    registration = await uow.registrations.get_for(group.lead.sale_id, principal.subject)
    blocker = entry_blocker(principal, group, registration, now, sale.registration.required)
    if blocker is not None:
        raise blocker
    return await seat_bidder(uow, ids, group, principal.subject, now)


async def published_lot(uow: CatalogUnitOfWork, principal: Principal, lot_id: str) -> PublishedLot | None:
    """For services: the lot as it was published (None for a draft), whatever happened since."""
    if not principal.has(Role.SERVICE):
        return None
    lot = await uow.lots.get(lot_id)
    if lot is None or lot.state is State.DRAFT:
        return None
    sale = await uow.sales.get(lot.sale_id)
    return None if sale is None else PublishedLot.of(lot, sale)


async def get_seat(uow: CatalogUnitOfWork, principal: Principal, lot_id: str, bidder_id: str) -> SeatLookup:
    """For the room service (and criers, admins): is `bidder_id` seated in lot `lot_id`?"""
    principal.require(*OPERATORS)
    require_id("lot_id", lot_id)
    require_id("bidder_id", bidder_id)
    lot = await uow.lots.get(lot_id)
    if lot is None:
        raise NotFound("lot", lot_id)
    seat = await uow.seats.get(lot.group_id, bidder_id)
    return SeatLookup(seat is not None and seat.lot_id == lot.id, seat)


async def start_lot(
    uow: CatalogUnitOfWork, principal: Principal, lot_id: str, *, ids: IdGenerator, now: datetime
) -> LotView:
    """Open a scheduled lot (the scheduler at its start time, or the sale's crier): it becomes live.

    - Services, site admins, and the criers and sale admins assigned to the lot's sale (NOT_STAFF).
    - The lot is scheduled (INVALID_STATE otherwise); its sale becomes live with its first lot.
    - Emits LotStarting with the lot as published: the room runs and opens the lot from it,
      notify reminds the reservers.
    - A live-session lot starting late moves the later groups back (LotsRetimed, for notify's
      reminders; catalog.domain.retiming).
    """
    principal.require(*OPERATORS)
    require_id("lot_id", lot_id)
    lot = await load_lot(uow, principal, lot_id)
    sale = await uow.sales.get(lot.sale_id)
    if sale is None:
        raise NotFound("sale", lot.sale_id)
    await require_sale_staff(uow, principal, sale.id, StaffRole.CRIER, StaffRole.SALE_ADMIN, action="start its lots")
    lot.start(now)
    sale.go_live(now)
    await uow.collect(
        LotStarting(
            event_id=ids.new_id(),
            occurred_at=now,
            lot_id=lot.id,
            group_id=lot.group_id,
            sale_id=lot.sale_id,
            format=lot.terms.format,
            started_at=now,
            lot=PublishedLot.of(lot, sale),
        )
    )
    if sale.kind is SaleKind.LIVE_SESSION:
        moved = retime_after(lot, now, await uow.lots.list_by_sale(sale.id), now)
        if moved:
            await uow.collect(
                LotsRetimed(
                    event_id=ids.new_id(), occurred_at=now, sale_id=sale.id, started_lot_id=lot.id, groups=tuple(moved)
                )
            )
    return view_lot(principal, lot)


async def close_lot(
    uow: CatalogUnitOfWork, principal: Principal, command: CloseLot, *, ids: IdGenerator, now: datetime
) -> LotView:
    """Record how a live lot ended, as the room (or tender) service decided it.

    - Only the service that ran the lot: svc:room for live formats, svc:tender for tenders
      (NOT_ROOM otherwise) — human roles never set outcomes. The lot is live (INVALID_STATE
      otherwise); a report of exactly what is already recorded answers the lot unchanged.
    - SOLD needs a winner (not the seller) and a positive hammer price; PASSED and WITHDRAWN
      take neither; every report names the room's lot_sequence of the lot's end. WITHDRAWN ends
      the lot cancelled, the others closed.
    - `closed_at` (default now) lies between the lot's start and now.
    - When no lot of the sale is left open, the sale closes.
    - Emits LotOutcomeRecorded (with sale_closed and room_sequence).
    """
    if not principal.has(Role.SERVICE):
        raise PermissionDenied("only the service that ran a lot records how it ended", reason=NOT_ROOM)
    require_id("lot_id", command.lot_id)
    lot = await uow.lots.get(command.lot_id)
    if lot is None or lot.state is State.DRAFT:
        raise NotFound("lot", command.lot_id)
    runner = ROOM_SERVICE if lot.is_live_format else TENDER_SERVICE
    if principal.subject != runner:
        raise PermissionDenied(f"only {runner} records how lot {lot.id!r} ended", reason=NOT_ROOM)
    if lot.records(command.result):
        return view_lot(principal, lot)
    sale = await uow.sales.get(lot.sale_id)
    if sale is None:
        raise NotFound("sale", lot.sale_id)
    lot.close(command.result, now)
    others = await uow.lots.list_by_sale(sale.id)
    sale_closed = all(other.state.is_terminal for other in others if other.id != lot.id)
    if sale_closed:
        sale.close(now)
    await uow.collect(
        LotOutcomeRecorded(
            event_id=ids.new_id(),
            occurred_at=now,
            lot_id=lot.id,
            sale_id=lot.sale_id,
            seller_id=lot.seller_id,
            outcome=command.result.outcome,
            winner_id=lot.winner_id,
            hammer_price=lot.hammer_price,
            currency=lot.terms.currency,
            buyer_premium_bp=lot.terms.buyer_premium_bp,
            tax_bp=lot.terms.tax_bp,
            closed_at=lot.closed_at or now,
            sale_closed=sale_closed,
            room_sequence=lot.room_sequence,
        )
    )
    return view_lot(principal, lot)
