"""Staff per sale: the criers, clerks (floor devices) and sale admins a sale is worked by.

Staff roles act only on the sales they are assigned to (DESIGN.md "Auth"); site admins and Gavel
services act on every sale. An assignment names the subject of the person's (or device's) token
and the staff role they hold in the sale; the token must also carry the matching platform role
(crier → `crier`, clerk → `device`, sale admin → `sale_admin`), so an assignment alone grants
nothing to a token without that role.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from catalog.domain.validation import check_id
from gavel_core.auth import Principal, Role
from gavel_core.errors import PermissionDenied, Violations

NOT_STAFF = "NOT_STAFF"
MAX_STAFF_PER_SALE = 1_000


class StaffRole(StrEnum):
    CRIER = "crier"
    CLERK = "clerk"
    SALE_ADMIN = "sale_admin"

    @property
    def platform_role(self) -> Role:
        return _PLATFORM_ROLES[self]


_PLATFORM_ROLES = {StaffRole.CRIER: Role.CRIER, StaffRole.CLERK: Role.DEVICE, StaffRole.SALE_ADMIN: Role.SALE_ADMIN}


@dataclass(frozen=True, slots=True)
class StaffAssignment:
    sale_id: str
    user_id: str
    role: StaffRole
    assigned_by: str
    assigned_at: datetime

    @property
    def key(self) -> tuple[str, str, StaffRole]:
        return (self.sale_id, self.user_id, self.role)


def check_assignment(sale_id: str, user_id: str) -> None:
    violations = Violations()
    check_id(violations, "sale_id", sale_id)
    check_id(violations, "user_id", user_id)
    violations.raise_if_any()


def is_assigned(principal: Principal, staff: Iterable[StaffAssignment], *roles: StaffRole) -> bool:
    """The caller holds one of `roles` in the sale (and the matching platform role in its token)."""
    return any(
        assignment.user_id == principal.subject
        and assignment.role in roles
        and principal.has(assignment.role.platform_role)
        for assignment in staff
    )


def acts_on_every_sale(principal: Principal) -> bool:
    return principal.has(Role.SITE_ADMIN, Role.SERVICE)


def require_staff(
    principal: Principal, sale_id: str, staff: Iterable[StaffAssignment], *roles: StaffRole, action: str
) -> None:
    """Site admins and services pass; anyone else must hold one of `roles` in the sale (NOT_STAFF)."""
    if acts_on_every_sale(principal) or is_assigned(principal, staff, *roles):
        return
    wanted = " or ".join(role.value.replace("_", " ") for role in roles)
    raise PermissionDenied(f"only a {wanted} assigned to sale {sale_id!r} may {action}", reason=NOT_STAFF)
