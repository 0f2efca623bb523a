"""Account use cases: log in, register as a bidder, create or update an account (operators), who am I.

Rules:
- a login names the account by email in any letter case; a wrong email and a wrong password get the
  same answer (INVALID_CREDENTIALS) after the same amount of work, so the API does not reveal which
  emails have accounts;
- self-registration creates a bidder and nothing else, and applies the password policy;
- operators (`create-user`) may grant any roles; saving an existing email updates its name, roles
  and password instead of failing, so seeding is idempotent;
- a hash made under an older cost policy is replaced at the next successful login.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gateway.app.passwords import MAX_PASSWORD_LENGTH, PasswordHasher, check_new_password
from gateway.app.ports import TokenIssuer, UserRepository
from gateway.domain.accounts import User, check_display_name, check_email, normalise_email, parse_roles
from gavel_core.auth import Principal, Role
from gavel_core.errors import AlreadyExists, Unauthenticated, Violations


class InvalidCredentials(Unauthenticated):
    """Wrong email or password (deliberately not saying which)."""

    reason = "INVALID_CREDENTIALS"

    def __init__(self) -> None:
        super().__init__("wrong email or password")


class AccountGone(Unauthenticated):
    """A valid token whose account no longer exists (or a service identity, which has no account)."""

    reason = "ACCOUNT_NOT_FOUND"

    def __init__(self) -> None:
        super().__init__("this token does not belong to an account; log in again")


@dataclass(frozen=True, slots=True)
class Session:
    """What a successful login or registration hands back."""

    access_token: str
    expires_in: int  # seconds
    user: User


class Accounts:
    def __init__(
        self,
        users: UserRepository,
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        *,
        token_ttl_s: int,
        clock: Callable[[], dt.datetime],
        new_id: Callable[[], str],
    ) -> None:
        self._users = users
        self._hasher = hasher
        self._tokens = tokens
        self._ttl_s = token_ttl_s
        self._clock = clock
        self._new_id = new_id

    async def login(self, email: str, password: str) -> Session:
        user = await self._users.get_by_email(normalise_email(email))
        if user is None or len(password) > MAX_PASSWORD_LENGTH:
            await asyncio.to_thread(self._hasher.burn, password[:MAX_PASSWORD_LENGTH])
            raise InvalidCredentials()
        if not await asyncio.to_thread(self._hasher.verify, password, user.password_hash):
            raise InvalidCredentials()
        if self._hasher.needs_rehash(user.password_hash):
            user = user.with_changes(password_hash=await asyncio.to_thread(self._hasher.hash, password))
            await self._users.update(user)
        return self._session(user)

    async def register(self, email: str, password: str, display_name: str = "") -> Session:
        """Self-service sign-up: always and only the bidder role."""
        email = normalise_email(email)
        display_name = display_name.strip() or email.partition("@")[0]
        violations = Violations()
        check_email(email, violations)
        check_display_name(display_name, violations)
        check_new_password(password, violations)
        violations.raise_if_any()
        if await self._users.get_by_email(email) is not None:
            raise AlreadyExists("user", email, "an account with this email already exists; log in instead")
        user = User(
            id=self._new_id(),
            email=email,
            display_name=display_name,
            password_hash=await asyncio.to_thread(self._hasher.hash, password),
            roles=frozenset({Role.BIDDER}),
            created_at=self._clock(),
        )
        await self._users.add(user)  # a racing twin makes this raise AlreadyExists
        return self._session(user)

    async def save_user(
        self, email: str, password: str, display_name: str, roles: str | Iterable[str]
    ) -> tuple[User, bool]:
        """Create the account for `email`, or update its name, password and roles. Returns (user, created)."""
        email = normalise_email(email)
        violations = Violations()
        check_email(email, violations)
        check_display_name(display_name, violations)
        if not password:
            violations.add("password", "is required")
        elif len(password) > MAX_PASSWORD_LENGTH:
            violations.add("password", f"must be at most {MAX_PASSWORD_LENGTH} characters")
        role_set = parse_roles(roles, violations)
        violations.raise_if_any()
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        existing = await self._users.get_by_email(email)
        if existing is not None:
            updated = existing.with_changes(
                display_name=display_name.strip(), password_hash=password_hash, roles=role_set
            )
            await self._users.update(updated)
            return updated, False
        user = User(
            id=self._new_id(),
            email=email,
            display_name=display_name.strip(),
            password_hash=password_hash,
            roles=role_set,
            created_at=self._clock(),
        )
        await self._users.add(user)
        return user, True

    async def me(self, principal: Principal) -> User:
        user = await self._users.get(principal.subject) if principal.subject else None
        if user is None:
            raise AccountGone()
        return user

    def _session(self, user: User) -> Session:
        token = self._tokens.issue(user.id, user.roles, user.display_name, ttl_s=self._ttl_s)
        return Session(access_token=token, expires_in=self._ttl_s, user=user)
