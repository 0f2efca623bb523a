"""Bearer JWTs (PyJWT, HS256): issued by the gateway at login, verified by every service.

Claims: `sub` (user id or `svc:<name>`), `roles` (list of gavel_core.auth.Role values), `name`,
`iss`, `iat`, `exp`. The verified Principal of the current request lives in a context variable.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterable

import jwt

from gavel_core.auth import ANONYMOUS, Principal, Role
from gavel_core.errors import Unauthenticated

ALGORITHM = "HS256"
VERIFIED_CACHE_SIZE = 65_536  # tokens remembered as verified (a few MB); the oldest go first
_current: contextvars.ContextVar[Principal] = contextvars.ContextVar("gavel_principal", default=ANONYMOUS)


def current_principal() -> Principal:
    """The caller of the RPC being served (ANONYMOUS on public RPCs without a token)."""
    return _current.get()


def set_current_principal(principal: Principal) -> contextvars.Token[Principal]:
    return _current.set(principal)


def reset_current_principal(token: contextvars.Token[Principal]) -> None:
    _current.reset(token)


class TokenCodec:
    """Issues and verifies Gavel tokens with one shared secret.

    A verified token is remembered until it expires: a bidder sends the same token with every
    bid, and checking its HMAC and claims again each time was a measurable share of a bid's CPU.
    The cache is keyed by the whole token (signature included), so only a byte-identical token
    that was verified before skips the check."""

    def __init__(self, secret: str, issuer: str = "gavel", ttl_s: int = 3600) -> None:
        if len(secret) < 32:
            raise ValueError("the JWT secret must be at least 32 characters")
        self._secret = secret
        self._issuer = issuer
        self._ttl_s = ttl_s
        self._verified: dict[str, tuple[Principal, float]] = {}

    def issue(self, subject: str, roles: Iterable[Role], display_name: str = "", ttl_s: int | None = None) -> str:
        now = int(time.time())
        claims = {
            "sub": subject,
            "roles": sorted(role.value for role in roles),
            "name": display_name,
            "iss": self._issuer,
            "iat": now,
            "exp": now + (ttl_s or self._ttl_s),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def issue_service_token(self, service: str) -> str:
        """A token for service-to-service calls (role `service`, subject `svc:<name>`)."""
        return self.issue(f"svc:{service}", [Role.SERVICE], display_name=service, ttl_s=365 * 24 * 3600)

    def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None:
            principal, expires_at = cached
            if time.time() < expires_at:
                return principal
            self._verified.pop(token, None)
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], issuer=self._issuer, options={"require": ["exp", "sub"]}
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired; log in again") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        roles: set[Role] = set()
        for value in claims.get("roles", []):
            try:
                roles.add(Role(value))
            except ValueError:
                continue  # a role this version does not know grants nothing
        principal = Principal(
            subject=str(claims["sub"]), roles=frozenset(roles), display_name=str(claims.get("name", ""))
        )
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)), None)
        self._verified[token] = (principal, float(claims["exp"]))
        return principal

    def principal_from_authorization(self, header: str | None) -> Principal | None:
        """Parse an `authorization: Bearer <jwt>` header; None when absent."""
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("the authorization header must be 'Bearer <token>'")
        return self.verify(token.strip())
