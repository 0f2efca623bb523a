"""Bearer JWTs, EdDSA (Ed25519) with PyJWT: the gateway signs user tokens, each service signs only
short-lived tokens for its own identity, and every verifier holds public keys only (a JWKS file,
`gavel_kit.keys`).

Claims: `iss`, `aud`, `sub` (user id or `svc:<name>`), `roles` (gavel_core.auth.Role values),
`name`, `iat`, `exp` (at most MAX_TOKEN_LIFETIME_S after `iat`), `jti`; header `kid`. A token is
accepted only when:

- its `kid` names a key of the JWKS and it verifies with that key (`alg` EdDSA, nothing else);
- its `iss` is the issuer that key is published for: the gateway's keys sign only user tokens
  (no `service` role, no `svc:` subject), a service's key signs only `sub = iss = svc:<name>`
  with the `service` role and nothing else — so no service can mint a user token or another
  service's, and the gateway cannot mint a service token;
- its `aud` is ours, it has not expired and it lives no longer than MAX_TOKEN_LIFETIME_S;
- its claims have the right shapes (a `roles` that is a number is UNAUTHENTICATED, never INTERNAL);
- its subject has not been revoked since it was issued (`revocations`, where a process follows
  the gateway's account revocations: the room does, for bidding).

The verified Principal of the current request lives in a context variable.
"""

from __future__ import annotations

import contextvars
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import jwt

from gavel_core.auth import ANONYMOUS, Principal, Role
from gavel_core.errors import Unauthenticated
from gavel_kit.keys import ALGORITHM, SERVICE_PREFIX, Jwks, SigningKey, service_issuer

AUDIENCE = "gavel"
MAX_TOKEN_LIFETIME_S = 300  # access and service tokens: demotions take effect within this
LEEWAY_S = 30  # clock skew between processes
MAX_TOKEN_BYTES = 8192
MAX_SUBJECT = 128
MAX_NAME = 200
MAX_ROLES = 16
VERIFIED_CACHE_SIZE = 65_536  # tokens remembered as verified (a few MB); the oldest go first
_current: contextvars.ContextVar[Principal] = contextvars.ContextVar("gavel_principal", default=ANONYMOUS)

Revocations = Callable[[str, int], bool]
"""(subject, issued_at) → True when tokens of that subject issued at that time are revoked."""


def current_principal() -> Principal:
    """The caller of the RPC being served (ANONYMOUS on public RPCs without a token)."""
    return _current.get()


def set_current_principal(principal: Principal) -> contextvars.Token[Principal]:
    return _current.set(principal)


def reset_current_principal(token: contextvars.Token[Principal]) -> None:
    _current.reset(token)


class TokenSigner:
    """Signs tokens with one signer's private key (the gateway's for users, a service's for itself)."""

    def __init__(self, key: SigningKey, issuer: str, audience: str = AUDIENCE) -> None:
        self._key = key
        self.issuer = issuer
        self._audience = audience

    def issue(
        self, subject: str, roles: Iterable[Role], display_name: str = "", ttl_s: int = MAX_TOKEN_LIFETIME_S
    ) -> str:
        if not 0 < ttl_s <= MAX_TOKEN_LIFETIME_S:
            raise ValueError(f"token lifetimes are 1 to {MAX_TOKEN_LIFETIME_S} s, not {ttl_s}")
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self._audience,
            "sub": subject,
            "roles": sorted(role.value for role in roles),
            "name": display_name,
            "iat": now,
            "exp": now + ttl_s,
            "jti": uuid.uuid4().hex,
        }
        kid, private = self._key.current()
        return jwt.encode(claims, private, algorithm=ALGORITHM, headers={"kid": kid})


class ServiceCredential:
    """A service's own bearer token (`svc:<name>`, role `service`), signed with its own key and
    renewed before it expires: read `token` per call, never keep the string."""

    def __init__(self, key: SigningKey, service: str, audience: str = AUDIENCE, ttl_s: int = MAX_TOKEN_LIFETIME_S):
        self.subject = service_issuer(service)
        self._signer = TokenSigner(key, self.subject, audience)
        self._ttl_s = ttl_s
        self._token = ""
        self._renew_at = 0.0

    @property
    def token(self) -> str:
        now = time.time()
        if now >= self._renew_at:
            self._token = self._signer.issue(self.subject, [Role.SERVICE], self.subject, ttl_s=self._ttl_s)
            self._renew_at = now + self._ttl_s * 2 / 3  # a third of its life left when renewed
        return self._token


def _claim_str(claims: dict[str, Any], name: str, limit: int, required: bool) -> str:
    value = claims.get(name, "")
    if not isinstance(value, str) or len(value) > limit or (required and not value):
        raise Unauthenticated(f"invalid token: claim {name!r} must be a string of 1 to {limit} characters")
    return value


def _roles(claims: dict[str, Any]) -> frozenset[Role]:
    values = claims.get("roles", [])
    if not isinstance(values, list) or len(values) > MAX_ROLES or not all(isinstance(v, str) for v in values):
        raise Unauthenticated(f"invalid token: claim 'roles' must be a list of at most {MAX_ROLES} role names")
    roles: set[Role] = set()
    for value in values:
        try:
            roles.add(Role(value))
        except ValueError:
            continue  # a role this version does not know grants nothing
    return frozenset(roles)


class TokenVerifier:
    """Verifies bearer tokens with the public keys of a JWKS.

    A verified token is remembered until it expires: a bidder sends the same token with every
    bid, and checking its signature and claims again each time was a measurable share of a bid's
    CPU. The cache is keyed by the whole token (signature included), so only a byte-identical
    token that was verified before skips the check; revocations are looked at on every call."""

    def __init__(self, jwks: Jwks, *, user_issuer: str, audience: str = AUDIENCE) -> None:
        self.jwks = jwks
        self._user_issuer = user_issuer
        self._audience = audience
        self._verified: dict[str, tuple[Principal, float]] = {}
        self.revocations: Revocations | None = None

    def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None:
            principal, expires_at = cached
            if time.time() < expires_at:
                return self._not_revoked(principal)
            self._verified.pop(token, None)
        principal, expires_at = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)), None)
        self._verified[token] = (principal, expires_at)
        return self._not_revoked(principal)

    def _not_revoked(self, principal: Principal) -> Principal:
        check = self.revocations
        if check is not None and check(principal.subject, principal.issued_at):
            raise Unauthenticated("this token was revoked (the account changed); log in again")
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        if len(token) > MAX_TOKEN_BYTES:
            raise Unauthenticated("invalid token: too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated("invalid token: not a JWT") from None
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise Unauthenticated(f"invalid token: must be signed with {ALGORITHM} and name its key (kid)")
        known = self.jwks.get(kid)
        if known is None:
            raise Unauthenticated("invalid token: signed by a key this deployment does not know")
        try:
            claims = jwt.decode(
                token,
                known.key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=known.issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired; refresh it or log in again") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        issued_at, expires_at = claims["iat"], claims["exp"]
        if not isinstance(issued_at, int | float) or not isinstance(expires_at, int | float):
            raise Unauthenticated("invalid token: iat and exp must be numbers")
        if expires_at - issued_at > MAX_TOKEN_LIFETIME_S:
            raise Unauthenticated(f"invalid token: tokens live at most {MAX_TOKEN_LIFETIME_S} s")
        subject = _claim_str(claims, "sub", MAX_SUBJECT, required=True)
        name = _claim_str(claims, "name", MAX_NAME, required=False)
        roles = _roles(claims)
        if known.issuer == self._user_issuer:
            if subject.startswith(SERVICE_PREFIX) or Role.SERVICE in roles:
                raise Unauthenticated("invalid token: a user token cannot carry a service identity")
        elif known.issuer.startswith(SERVICE_PREFIX):
            if subject != known.issuer or roles != {Role.SERVICE}:
                raise Unauthenticated("invalid token: a service signs only its own service identity")
        else:
            raise Unauthenticated("invalid token: signed by a key of an unknown issuer")
        principal = Principal(
            subject=subject, roles=roles, display_name=name, issued_at=int(issued_at), credential=token
        )
        return principal, float(expires_at)

    def principal_from_authorization(self, header: str | None) -> Principal | None:
        """Parse an `authorization: Bearer <jwt>` header; None when absent."""
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the authorization header must be 'Bearer <token>'")
        return self.verify(token.strip())
