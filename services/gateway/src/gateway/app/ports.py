"""What the gateway's use cases need from the outside world, as Protocols the adapters implement."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from gateway.domain.accounts import User
from gavel_core.auth import Role


class UserRepository(Protocol):
    """Accounts by id and by (normalised) email. Emails are unique."""

    async def get(self, user_id: str) -> User | None: ...

    async def get_by_email(self, email: str) -> User | None: ...

    async def add(self, user: User) -> None:
        """Store a new account; raise gavel_core.errors.AlreadyExists if its email is taken."""
        ...

    async def update(self, user: User) -> None:
        """Replace the stored display name, password hash and roles of `user.id`."""
        ...


class TokenIssuer(Protocol):
    """Signs bearer tokens (gavel_kit.auth.TokenCodec)."""

    def issue(self, subject: str, roles: Iterable[Role], display_name: str = "", ttl_s: int | None = None) -> str: ...
