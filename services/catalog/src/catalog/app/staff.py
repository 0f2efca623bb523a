"""Staff per sale: assigning criers, clerks (floor devices) and sale admins to a sale.

Every change emits SaleStaffChanged with the sale's whole staff afterwards, so a follower (each
room replica) needs only the last event of a sale's subject.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from catalog.app.common import load_sale
from catalog.app.ports import CatalogUnitOfWork, IdGenerator
from catalog.domain.access import ADMINS, OPERATORS
from catalog.domain.events import SaleStaffChanged
from catalog.domain.staff import (
    MAX_STAFF_PER_SALE,
    StaffAssignment,
    StaffRole,
    acts_on_every_sale,
    check_assignment,
    require_staff,
)
from catalog.domain.states import invalid_state
from gavel_core.auth import Principal
from gavel_core.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied

# What an assigned sale admin may hand out; assigning sale admins is for site admins.
_SALE_ADMIN_ASSIGNS = (StaffRole.CRIER, StaffRole.CLERK)


@dataclass(frozen=True, slots=True)
class StaffChange:
    sale_id: str
    user_id: str
    role: StaffRole


async def _authorized_staff(
    uow: CatalogUnitOfWork, principal: Principal, change: StaffChange, action: str
) -> list[StaffAssignment]:
    principal.require(*ADMINS)
    check_assignment(change.sale_id, change.user_id)
    sale = await load_sale(uow, principal, change.sale_id)
    if sale.state.is_terminal:
        raise invalid_state("sale", sale.id, sale.state, action)
    staff = await uow.staff.list_for_sale(sale.id)
    if not acts_on_every_sale(principal):
        require_staff(principal, sale.id, staff, StaffRole.SALE_ADMIN, action=action)
        if change.role not in _SALE_ADMIN_ASSIGNS:
            raise PermissionDenied("only a site admin assigns a sale's sale admins", reason="NOT_STAFF")
    return staff


async def staff_changed(
    uow: CatalogUnitOfWork, ids: IdGenerator, sale_id: str, staff: list[StaffAssignment], now: datetime
) -> None:
    ordered = tuple(sorted(staff, key=lambda a: (a.role.value, a.user_id)))
    await uow.collect(SaleStaffChanged(event_id=ids.new_id(), occurred_at=now, sale_id=sale_id, staff=ordered))


async def assign_staff(
    uow: CatalogUnitOfWork, principal: Principal, change: StaffChange, *, ids: IdGenerator, now: datetime
) -> StaffAssignment:
    """Give a user (or device) a staff role in a sale that has not ended.

    - Site admins assign any role; a sale admin assigned to the sale assigns criers and clerks
      (NOT_STAFF otherwise). A sale admin who creates a sale is assigned to it (CreateSale).
    - Assigning what already stands returns it unchanged; a sale has at most 1,000 assignments.
    - Emits SaleStaffChanged.
    """
    staff = await _authorized_staff(uow, principal, change, "assign staff to")
    for existing in staff:
        if (existing.user_id, existing.role) == (change.user_id, change.role):
            return existing
    if len(staff) >= MAX_STAFF_PER_SALE:
        raise InvalidArgument([FieldViolation("sale_id", f"a sale has at most {MAX_STAFF_PER_SALE} staff")])
    assignment = StaffAssignment(change.sale_id, change.user_id, change.role, principal.subject, now)
    await uow.staff.add(assignment)
    await staff_changed(uow, ids, change.sale_id, [*staff, assignment], now)
    return assignment


async def unassign_staff(
    uow: CatalogUnitOfWork, principal: Principal, change: StaffChange, *, ids: IdGenerator, now: datetime
) -> None:
    """Take a staff role in a sale away (same rights as assigning); NOT_FOUND if it is not held.
    Emits SaleStaffChanged."""
    staff = await _authorized_staff(uow, principal, change, "unassign staff of")
    held = [a for a in staff if (a.user_id, a.role) == (change.user_id, change.role)]
    if not held:
        raise NotFound("staff assignment", f"{change.sale_id}/{change.user_id}/{change.role.value}")
    await uow.staff.remove(held[0])
    await staff_changed(uow, ids, change.sale_id, [a for a in staff if a is not held[0]], now)


async def list_sale_staff(uow: CatalogUnitOfWork, principal: Principal, sale_id: str) -> list[StaffAssignment]:
    """A sale's staff, by role then user id: services, criers and admins (a read: not scoped)."""
    principal.require(*OPERATORS)
    check_assignment(sale_id, "-")
    sale = await load_sale(uow, principal, sale_id)
    return sorted(await uow.staff.list_for_sale(sale.id), key=lambda a: (a.role.value, a.user_id))
