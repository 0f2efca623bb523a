"""What the gateway's use cases need from the outside world, as Protocols the adapters implement."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Protocol

from gateway.domain.accounts import RefreshToken, Revocation, User
from gavel_core.auth import Role


class UserRepository(Protocol):
    """Accounts by id and by (normalised) email. Emails are unique."""

    async def get(self, user_id: str) -> User | None: ...

    async def get_by_email(self, email: str) -> User | None: ...

    async def add(self, user: User) -> None:
        """Store a new account; raise gavel_core.errors.AlreadyExists if its email is taken."""
        ...

    async def update(self, user: User, revocation: Revocation | None = None) -> None:
        """Replace the stored display name, password hash, roles and disabled flag of `user.id`; with
        a revocation, queue its AccountRevoked event in the same transaction (outbox)."""
        ...


class RefreshTokens(Protocol):
    """Refresh tokens by the hash of their value."""

    async def add(self, token: RefreshToken) -> None: ...

    async def get(self, token_hash: str) -> RefreshToken | None: ...

    async def spend(self, token_hash: str, now: dt.datetime) -> bool:
        """Mark the token spent if it is still usable; False if it was not (atomic: of two
        concurrent exchanges of one token exactly one succeeds)."""
        ...

    async def revoke_family(self, family_id: str, now: dt.datetime) -> None: ...

    async def revoke_user(self, user_id: str, now: dt.datetime) -> None: ...


class TokenIssuer(Protocol):
    """Signs access tokens (gavel_kit.auth.TokenSigner with the gateway's key)."""

    def issue(self, subject: str, roles: Iterable[Role], display_name: str = "", ttl_s: int = 300) -> str: ...
