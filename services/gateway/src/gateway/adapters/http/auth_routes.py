"""Accounts: log in, refresh, log out, register as a bidder, who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from gateway.adapters.http.deps import PrincipalDep, ServicesDep, client_address
from gateway.adapters.http.errors import error_responses
from gateway.adapters.http.schemas import (
    LoginRequest,
    RefreshRequest,
    RegisterAccepted,
    RegisterRequest,
    TokenOut,
    UserOut,
)

router = APIRouter(prefix="/api/v1", tags=["accounts"], responses=error_responses(400, 413, 429))


@router.post(
    "/auth/login",
    summary="Log in with email and password",
    description="Returns a short-lived bearer token for the HTTP API and every gRPC service, and a refresh "
    "token. A wrong email or password answers 401 with reason INVALID_CREDENTIALS; repeated wrong "
    "passwords lock the account for a growing time (429 with Retry-After, even for the right password).",
    responses=error_responses(401),
)
async def login(body: LoginRequest, request: Request, services: ServicesDep) -> TokenOut:
    session = await services.accounts.login(body.email, body.password, client_address(request))
    return TokenOut.of(session)


@router.post(
    "/auth/refresh",
    summary="Exchange a refresh token for a new pair",
    description="Rotation: the refresh token is spent; the answer carries a new one. Presenting a spent "
    "refresh token again revokes every token of that login (401 REFRESH_TOKEN_REUSED).",
    responses=error_responses(401),
)
async def refresh(body: RefreshRequest, request: Request, services: ServicesDep) -> TokenOut:
    session = await services.accounts.refresh(body.refresh_token, client_address(request))
    return TokenOut.of(session)


@router.post(
    "/auth/logout",
    summary="End a login",
    description="Revokes the refresh token and every token rotated from the same login.",
    status_code=status.HTTP_204_NO_CONTENT,
)
async def logout(body: RefreshRequest, services: ServicesDep) -> Response:
    await services.accounts.logout(body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/auth/register",
    summary="Register as a bidder",
    description="Self-service sign-up; the account gets the bidder role only. Answers 202 with the same body "
    "whether or not the email already had an account (nothing about existing accounts is revealed); log in "
    "afterwards.",
    status_code=status.HTTP_202_ACCEPTED,
)
async def register(body: RegisterRequest, request: Request, services: ServicesDep) -> RegisterAccepted:
    await services.accounts.register(body.email, body.password, body.display_name, client_address(request))
    return RegisterAccepted()


@router.get("/me", summary="The account of the bearer token", responses=error_responses(401))
async def me(principal: PrincipalDep, services: ServicesDep) -> UserOut:
    return UserOut.of(await services.accounts.me(principal))
