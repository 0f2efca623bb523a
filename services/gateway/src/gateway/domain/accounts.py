"""User accounts: who may log in to Gavel and with which roles. Pure: no I/O, clock or randomness.

Invariants:
- an email is stored trimmed and lower-cased, so `Ann@Example.com` and `ann@example.com` are one account;
- roles are a set of `gavel_core.auth.Role` values, stored as a sorted comma list;
- the password is only ever held as an encoded hash (see `gateway.app.passwords`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from gavel_core.auth import Role
from gavel_core.errors import Violations

MAX_EMAIL_LENGTH = 254  # RFC 5321 path limit
MAX_DISPLAY_NAME_LENGTH = 100
# Deliberately loose: one "@", something on each side, a dot in the domain, no spaces. Deliverability
# is not checked here; the point is to refuse obvious typos and keep the unique index meaningful.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


@dataclass(frozen=True, slots=True)
class User:
    """An account. `password_hash` is an encoded hash, never the password."""

    id: str
    email: str
    display_name: str
    password_hash: str
    roles: frozenset[Role]
    created_at: dt.datetime
    disabled: bool = False  # a disabled account cannot log in or refresh, and its tokens are revoked

    def with_changes(
        self,
        *,
        display_name: str | None = None,
        password_hash: str | None = None,
        roles: frozenset[Role] | None = None,
        disabled: bool | None = None,
    ) -> User:
        return replace(
            self,
            display_name=self.display_name if display_name is None else display_name,
            password_hash=self.password_hash if password_hash is None else password_hash,
            roles=self.roles if roles is None else roles,
            disabled=self.disabled if disabled is None else disabled,
        )


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """One refresh token of a family (a login and every rotation after it). Only its hash is stored.

    A token is spent when it is exchanged; presenting a spent (or revoked) token again means it was
    copied: the whole family is revoked, so the thief's and the owner's sessions both end."""

    token_hash: str
    family_id: str
    user_id: str
    created_at: dt.datetime
    expires_at: dt.datetime
    spent_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None

    def usable(self, now: dt.datetime) -> bool:
        return self.spent_at is None and self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class Revocation:
    """Tokens of `user_id` issued before `at` are no longer honoured (published as AccountRevoked)."""

    user_id: str
    at: dt.datetime
    reason: str  # disabled, roles_changed, password_changed


def normalise_email(raw: str) -> str:
    return raw.strip().lower()


def check_email(email: str, violations: Violations, field: str = "email") -> None:
    """Add a violation unless `email` (already normalised) looks like an email address."""
    if not email:
        violations.add(field, "is required")
    elif len(email) > MAX_EMAIL_LENGTH:
        violations.add(field, f"must be at most {MAX_EMAIL_LENGTH} characters")
    elif not _EMAIL.match(email):
        violations.add(field, "must be an email address such as ann@example.com")


def check_display_name(name: str, violations: Violations, field: str = "display_name") -> None:
    if not name.strip():
        violations.add(field, "is required")
    elif len(name) > MAX_DISPLAY_NAME_LENGTH:
        violations.add(field, f"must be at most {MAX_DISPLAY_NAME_LENGTH} characters")


def parse_roles(values: str | Iterable[str], violations: Violations, field: str = "roles") -> frozenset[Role]:
    """Roles from a comma list or an iterable of role names; unknown names become violations."""
    items = values.split(",") if isinstance(values, str) else list(values)
    roles: set[Role] = set()
    for item in (value.strip().lower() for value in items):
        if not item:
            continue
        try:
            roles.add(Role(item))
        except ValueError:
            known = ", ".join(role.value for role in Role)
            violations.add(field, f"unknown role {item!r}; known roles: {known}")
    if not roles and not violations.items:
        violations.add(field, "at least one role is required")
    return frozenset(roles)


def format_roles(roles: Iterable[Role]) -> str:
    """The stored form of a role set: sorted, comma separated (`bidder,seller`)."""
    return ",".join(sorted(role.value for role in roles))


def roles_from_stored(text: str) -> frozenset[Role]:
    """Read the stored comma list; a role this version does not know grants nothing (as in tokens)."""
    known = {role.value for role in Role}
    return frozenset(Role(value) for value in (v.strip() for v in text.split(",")) if value in known)
