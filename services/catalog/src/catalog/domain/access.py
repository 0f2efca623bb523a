"""Who may touch what: ownership, staff per sale, and who sees drafts.

Sellers manage only what they own; products are managed by their seller and by sale and site
admins. A sale is managed by its owner, the sale admins assigned to it (catalog.domain.staff), site
admins and Gavel services. A refusal on ownership is PermissionDenied with reason NOT_OWNER (a sale
admin of another sale: NOT_STAFF); a seller acting as a bidder on their own goods is
PermissionDenied with reason OWN_LOT. Reads are not scoped by sale: sale admins see every draft.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from catalog.domain.staff import NOT_STAFF, StaffAssignment, StaffRole, acts_on_every_sale, is_assigned
from gavel_core.auth import Principal, Role
from gavel_core.errors import PermissionDenied

NOT_OWNER = "NOT_OWNER"
OWN_LOT = "OWN_LOT"

MANAGERS = (Role.SELLER, Role.SALE_ADMIN, Role.SITE_ADMIN)
ADMINS = (Role.SALE_ADMIN, Role.SITE_ADMIN)
OPERATORS = (Role.SERVICE, Role.CRIER, Role.SALE_ADMIN, Role.SITE_ADMIN)


def require_owner(principal: Principal, owner_id: str, resource: str, resource_id: str) -> None:
    if not principal.is_admin and principal.subject != owner_id:
        raise PermissionDenied(f"{resource} {resource_id!r} belongs to another seller", reason=NOT_OWNER)


def require_sale_manager(principal: Principal, owner_id: str, sale_id: str, staff: Iterable[StaffAssignment]) -> None:
    """The sale's owner, a sale admin assigned to it, a site admin or a service."""
    if acts_on_every_sale(principal) or principal.subject == owner_id:
        return
    if is_assigned(principal, staff, StaffRole.SALE_ADMIN):
        return
    if principal.has(Role.SALE_ADMIN):
        raise PermissionDenied(f"sale {sale_id!r} is administered by its assigned sale admins", reason=NOT_STAFF)
    raise PermissionDenied(f"sale {sale_id!r} belongs to another seller", reason=NOT_OWNER)


def own_lot_error(resource: str, resource_id: str) -> PermissionDenied:
    return PermissionDenied(f"sellers may not bid on their own {resource} {resource_id!r}", reason=OWN_LOT)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Whose drafts a query may return: the viewer's own, or everyone's for admins."""

    subject: str
    sees_all_drafts: bool = False

    @classmethod
    def of(cls, principal: Principal) -> Viewer:
        return cls(principal.subject, principal.is_admin)

    def sees_draft_of(self, owner_id: str) -> bool:
        return self.sees_all_drafts or (bool(self.subject) and self.subject == owner_id)
