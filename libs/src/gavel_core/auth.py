"""Who is calling: roles and the authenticated principal. Pure, so use cases can check ownership."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from gavel_core.errors import PermissionDenied


class Role(StrEnum):
    BIDDER = "bidder"
    SELLER = "seller"
    CRIER = "crier"
    SALE_ADMIN = "sale_admin"
    SITE_ADMIN = "site_admin"
    DEVICE = "device"  # floor paddle / quote-management device
    SERVICE = "service"  # another Gavel service calling on its own behalf


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller: `subject` is the user id (or `svc:<name>` for a service identity).

    `issued_at` is when its token was issued (revocations compare it); `credential` is the bearer
    token it was verified from, kept so a call forwarded to another process carries the original
    credential for that process to verify again (never shown in a repr or a log)."""

    subject: str
    roles: frozenset[Role]
    display_name: str = ""
    issued_at: int = 0
    credential: str = field(default="", repr=False, compare=False)

    def has(self, *roles: Role) -> bool:
        return any(role in self.roles for role in roles)

    @property
    def is_admin(self) -> bool:
        return self.has(Role.SALE_ADMIN, Role.SITE_ADMIN, Role.SERVICE)

    def require(self, *roles: Role) -> None:
        if not self.has(*roles):
            wanted = ", ".join(role.value for role in roles)
            raise PermissionDenied(f"this action needs one of the roles: {wanted}")


ANONYMOUS = Principal(subject="", roles=frozenset())
