"""Accounts: log in, register as a bidder, who am I."""

from __future__ import annotations

from fastapi import APIRouter, status

from gateway.adapters.http.deps import PrincipalDep, ServicesDep
from gateway.adapters.http.errors import error_responses
from gateway.adapters.http.schemas import LoginRequest, RegisterRequest, TokenOut, UserOut

router = APIRouter(prefix="/api/v1", tags=["accounts"], responses=error_responses(400))


@router.post(
    "/auth/login",
    summary="Log in with email and password",
    description="Returns a bearer token for the HTTP API and every gRPC service. "
    "A wrong email or password answers 401 with reason INVALID_CREDENTIALS.",
    responses=error_responses(401),
)
async def login(body: LoginRequest, services: ServicesDep) -> TokenOut:
    session = await services.accounts.login(body.email, body.password)
    return TokenOut.of(session)


@router.post(
    "/auth/register",
    summary="Register as a bidder",
    description="Self-service sign-up; the account gets the bidder role only. Logs the new account in. "
    "An email that already has an account answers 409 ALREADY_EXISTS.",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(409),
)
async def register(body: RegisterRequest, services: ServicesDep) -> TokenOut:
    session = await services.accounts.register(body.email, body.password, body.display_name)
    return TokenOut.of(session)


@router.get("/me", summary="The account of the bearer token", responses=error_responses(401))
async def me(principal: PrincipalDep, services: ServicesDep) -> UserOut:
    return UserOut.of(await services.accounts.me(principal))
