"""What the routes get from the composition root, and the FastAPI dependencies that hand it out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.adapters.catalog_grpc import CatalogClient
from gateway.adapters.readiness import ReadinessCheck
from gateway.app.accounts import Accounts
from gavel_core.auth import Principal
from gavel_core.errors import Unauthenticated
from gavel_kit.auth import TokenVerifier


@dataclass(frozen=True)
class Services:
    accounts: Accounts
    tokens: TokenVerifier
    catalog: CatalogClient
    readiness: Mapping[str, ReadinessCheck]


def get_services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


def client_address(request: Request) -> str:
    """The caller's IP address (rate limits): the socket peer, or the first X-Forwarded-For entry
    when the gateway is configured to trust its proxy."""
    guards = getattr(request.app.state, "guards", None)
    if guards is not None and guards.trust_forwarded:
        forwarded = request.headers.get("x-forwarded-for", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first[:64]
    return request.client.host if request.client is not None else "unknown"


# auto_error=False: the routes decide (public catalog reads work without a token) and answer
# missing or malformed credentials with the gateway's own error shape.
bearer_scheme = HTTPBearer(auto_error=False, description="The access_token from POST /api/v1/auth/login.")


def bearer_token(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]
) -> str | None:
    """The caller's bearer token, or None when there is no Authorization header."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def current_principal(
    token: Annotated[str | None, Depends(bearer_token)], services: Annotated[Services, Depends(get_services)]
) -> Principal:
    if token is None:
        raise Unauthenticated(
            "this endpoint needs 'Authorization: Bearer <token>'; get one from POST /api/v1/auth/login"
        )
    return services.tokens.verify(token)


ServicesDep = Annotated[Services, Depends(get_services)]
TokenDep = Annotated[str | None, Depends(bearer_token)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
