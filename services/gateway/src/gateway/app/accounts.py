"""Account use cases: log in, refresh, log out, register as a bidder, create, update or disable an
account (operators), who am I.

Rules:
- a login names the account by email in any letter case; a wrong email and a wrong password get the
  same answer (INVALID_CREDENTIALS) after the same amount of work, so the API does not reveal which
  emails have accounts; repeated wrong passwords lock the account out for a growing time (even
  the right password is refused meanwhile), and logins are rate limited per IP and per account;
- a session is a short access token (≤ 5 minutes, gavel_kit.auth) and an opaque refresh token,
  stored hashed, exchanged for a new pair once: presenting a spent one again revokes its family;
  a refresh reads the account again, so a demotion or a disable takes effect within one access
  token lifetime, and an AccountRevoked event makes it immediate where it is followed (the room);
- self-registration creates a bidder and nothing else, applies the password policy, and answers
  the same whether or not the email already has an account (it never logs in);
- operators (`create-user`) may grant any roles; saving an existing email updates its name, roles
  and password instead of failing, so seeding is idempotent;
- a hash made under an older cost policy is replaced at the next successful login.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gateway.app.passwords import MAX_PASSWORD_LENGTH, PasswordHasher, check_new_password
from gateway.app.ports import RefreshTokens, TokenIssuer, UserRepository
from gateway.app.throttle import RateLimited, Throttle
from gateway.domain.accounts import (
    RefreshToken,
    Revocation,
    User,
    check_display_name,
    check_email,
    normalise_email,
    parse_roles,
)
from gavel_core.auth import Principal, Role
from gavel_core.errors import AlreadyExists, Unauthenticated, Violations

MAX_REFRESH_TOKEN = 200


class InvalidCredentials(Unauthenticated):
    """Wrong email or password (deliberately not saying which)."""

    reason = "INVALID_CREDENTIALS"

    def __init__(self) -> None:
        super().__init__("wrong email or password")


class AccountDisabled(Unauthenticated):
    reason = "ACCOUNT_DISABLED"

    def __init__(self) -> None:
        super().__init__("this account is disabled")


class InvalidRefreshToken(Unauthenticated):
    reason = "INVALID_REFRESH_TOKEN"

    def __init__(self, message: str = "the refresh token is not valid; log in again") -> None:
        super().__init__(message)


class RefreshTokenReused(InvalidRefreshToken):
    """A spent refresh token came back: it was copied. Its whole family is revoked."""

    reason = "REFRESH_TOKEN_REUSED"

    def __init__(self) -> None:
        super().__init__("this refresh token was already used; every session of this login is revoked")


class AccountGone(Unauthenticated):
    """A valid token whose account no longer exists (or a service identity, which has no account)."""

    reason = "ACCOUNT_NOT_FOUND"

    def __init__(self) -> None:
        super().__init__("this token does not belong to an account; log in again")


@dataclass(frozen=True, slots=True)
class Session:
    """What a successful login or refresh hands back."""

    access_token: str
    refresh_token: str
    expires_in: int  # seconds (the access token)
    refresh_expires_in: int
    user: User


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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
        refresh_tokens: RefreshTokens | None = None,
        refresh_ttl_s: int = 14 * 24 * 3600,
        throttle: Throttle | None = None,
    ) -> None:
        self._users = users
        self._hasher = hasher
        self._tokens = tokens
        self._ttl_s = token_ttl_s
        self._clock = clock
        self._new_id = new_id
        self._refresh = refresh_tokens
        self._refresh_ttl_s = refresh_ttl_s
        self.throttle = throttle or Throttle()

    def _now_s(self) -> float:
        return self._clock().timestamp()

    async def login(self, email: str, password: str, client: str = "") -> Session:
        email = normalise_email(email)
        throttle, now = self.throttle, self._now_s()
        throttle.check(throttle.login_ip, client, now, "login attempts from this address")
        throttle.check(throttle.login_account, email, now, "login attempts for this account")
        wait = throttle.failures.wait(email, now)
        if wait > 0:
            raise RateLimited(wait, "wrong passwords for this account")
        user = await self._users.get_by_email(email)
        if user is None or len(password) > MAX_PASSWORD_LENGTH:
            await asyncio.to_thread(self._hasher.burn, password[:MAX_PASSWORD_LENGTH])
            throttle.failures.failed(email, now)
            raise InvalidCredentials()
        if not await asyncio.to_thread(self._hasher.verify, password, user.password_hash):
            throttle.failures.failed(email, now)
            raise InvalidCredentials()
        throttle.failures.succeeded(email)
        if user.disabled:
            raise AccountDisabled()
        if self._hasher.needs_rehash(user.password_hash):
            user = user.with_changes(password_hash=await asyncio.to_thread(self._hasher.hash, password))
            await self._users.update(user)
        return await self._session(user, family_id=self._new_id())

    async def refresh(self, refresh_token: str, client: str = "") -> Session:
        """Exchange a refresh token for a new access token and a new refresh token (rotation)."""
        throttle = self.throttle
        throttle.check(throttle.refresh_ip, client, self._now_s(), "token refreshes from this address")
        store = self._require_refresh()
        if not refresh_token or len(refresh_token) > MAX_REFRESH_TOKEN:
            raise InvalidRefreshToken()
        now = self._clock()
        record = await store.get(token_hash(refresh_token))
        if record is None:
            raise InvalidRefreshToken()
        if record.spent_at is not None or record.revoked_at is not None:
            await store.revoke_family(record.family_id, now)
            raise RefreshTokenReused()
        if now >= record.expires_at:
            raise InvalidRefreshToken("the refresh token has expired; log in again")
        if not await store.spend(record.token_hash, now):  # a concurrent exchange of the same token
            await store.revoke_family(record.family_id, now)
            raise RefreshTokenReused()
        user = await self._users.get(record.user_id)
        if user is None or user.disabled:
            await store.revoke_family(record.family_id, now)
            raise AccountDisabled() if user is not None else AccountGone()
        return await self._session(user, family_id=record.family_id)

    async def logout(self, refresh_token: str) -> None:
        """End the login the refresh token belongs to (every token of its family)."""
        if not refresh_token or len(refresh_token) > MAX_REFRESH_TOKEN:
            return
        store = self._require_refresh()
        record = await store.get(token_hash(refresh_token))
        if record is not None:
            await store.revoke_family(record.family_id, self._clock())

    async def register(self, email: str, password: str, display_name: str = "", client: str = "") -> None:
        """Self-service sign-up: always and only the bidder role. Answers the same whether or not the
        email already has an account (the existing account is left as it is), after the same work."""
        throttle = self.throttle
        throttle.check(throttle.register_ip, client, self._now_s(), "registrations from this address")
        email = normalise_email(email)
        display_name = display_name.strip() or email.partition("@")[0]
        violations = Violations()
        check_email(email, violations)
        check_display_name(display_name, violations)
        check_new_password(password, violations)
        violations.raise_if_any()
        password_hash = await asyncio.to_thread(self._hasher.hash, password)  # the same work either way
        if await self._users.get_by_email(email) is not None:
            return
        user = User(
            id=self._new_id(),
            email=email,
            display_name=display_name,
            password_hash=password_hash,
            roles=frozenset({Role.BIDDER}),
            created_at=self._clock(),
        )
        try:
            await self._users.add(user)
        except AlreadyExists:  # a racing twin registered it first: the same answer
            return

    async def save_user(
        self, email: str, password: str, display_name: str, roles: str | Iterable[str]
    ) -> tuple[User, bool]:
        """Create the account for `email`, or update its name, password and roles. Returns (user, created).
        Changing the roles or the password of an account revokes the tokens it holds."""
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
        existing = await self._users.get_by_email(email)
        if existing is not None:
            password_changed = not await asyncio.to_thread(self._hasher.verify, password, existing.password_hash)
            password_hash = (
                await asyncio.to_thread(self._hasher.hash, password) if password_changed else existing.password_hash
            )
            updated = existing.with_changes(
                display_name=display_name.strip(), password_hash=password_hash, roles=role_set
            )
            now = self._clock()
            reason = "roles_changed" if role_set != existing.roles else "password_changed" if password_changed else ""
            await self._users.update(updated, Revocation(updated.id, now, reason) if reason else None)
            if password_changed and self._refresh is not None:
                await self._refresh.revoke_user(updated.id, now)
            return updated, False
        user = User(
            id=self._new_id(),
            email=email,
            display_name=display_name.strip(),
            password_hash=await asyncio.to_thread(self._hasher.hash, password),
            roles=role_set,
            created_at=self._clock(),
        )
        await self._users.add(user)
        return user, True

    async def set_disabled(self, email: str, disabled: bool) -> User:
        """Disable an account (no login, no refresh, its tokens revoked) or enable it again."""
        user = await self._users.get_by_email(normalise_email(email))
        if user is None:
            violations = Violations()
            violations.add("email", "no account has this email")
            violations.raise_if_any()
        assert user is not None
        now = self._clock()
        updated = user.with_changes(disabled=disabled)
        await self._users.update(updated, Revocation(user.id, now, "disabled") if disabled else None)
        if disabled and self._refresh is not None:
            await self._refresh.revoke_user(user.id, now)
        return updated

    async def me(self, principal: Principal) -> User:
        user = await self._users.get(principal.subject) if principal.subject else None
        if user is None or user.disabled:
            raise AccountGone()
        return user

    def _require_refresh(self) -> RefreshTokens:
        if self._refresh is None:
            raise InvalidRefreshToken("refresh tokens are not enabled here")
        return self._refresh

    async def _session(self, user: User, *, family_id: str) -> Session:
        access = self._tokens.issue(user.id, user.roles, user.display_name, ttl_s=self._ttl_s)
        refresh = ""
        if self._refresh is not None:
            refresh = secrets.token_urlsafe(32)
            now = self._clock()
            await self._refresh.add(
                RefreshToken(
                    token_hash=token_hash(refresh),
                    family_id=family_id,
                    user_id=user.id,
                    created_at=now,
                    expires_at=now + dt.timedelta(seconds=self._refresh_ttl_s),
                )
            )
        return Session(access, refresh, self._ttl_s, self._refresh_ttl_s, user)
