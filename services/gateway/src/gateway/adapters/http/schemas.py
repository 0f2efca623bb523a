"""The JSON bodies of the gateway's own endpoints (pydantic, so /docs shows them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from gateway.app.accounts import Session
from gateway.domain.accounts import User


class LoginRequest(BaseModel):
    email: str = Field(max_length=320, examples=["bidder@gavel.local"])
    password: str = Field(max_length=4096, examples=["correct horse battery staple"])


class RegisterRequest(BaseModel):
    email: str = Field(max_length=320, examples=["ann@example.com"])
    password: str = Field(max_length=4096, description="At least 8 characters.")
    display_name: str = Field(default="", max_length=200, description="Defaults to the part of the email before '@'.")


class UserOut(BaseModel):
    id: str
    email: str
    display_name: str
    roles: list[str] = Field(description="gavel roles: bidder, seller, crier, sale_admin, site_admin, …")

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id, email=user.email, display_name=user.display_name, roles=sorted(r.value for r in user.roles)
        )


class RefreshRequest(BaseModel):
    refresh_token: str = Field(max_length=200, description="The refresh_token of the last login or refresh.")


class RegisterAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    message: str = Field(
        default="If this email can be registered, a bidder account now exists for it: log in to continue.",
        description="The same answer whether or not the email already had an account.",
    )


class TokenOut(BaseModel):
    access_token: str = Field(
        description="A JWT (EdDSA, at most 5 minutes): send it as 'Authorization: Bearer <token>' (HTTP) "
        "or metadata (gRPC)."
    )
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 — the OAuth 2 token type, not a secret
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str = Field(
        description="Opaque; exchange it once at POST /api/v1/auth/refresh for a new pair. Using it twice "
        "ends the login everywhere."
    )
    refresh_expires_in: int = Field(description="Seconds until the refresh token expires.")
    user: UserOut

    @classmethod
    def of(cls, session: Session) -> TokenOut:
        return cls(
            access_token=session.access_token,
            expires_in=session.expires_in,
            refresh_token=session.refresh_token,
            refresh_expires_in=session.refresh_expires_in,
            user=UserOut.of(session.user),
        )


class FieldViolationOut(BaseModel):
    field: str
    description: str


class ErrorOut(BaseModel):
    code: str = Field(description="The gRPC status name, e.g. INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION.")
    message: str
    reason: str = Field(default="", description="A stable UPPER_SNAKE reason (ErrorInfo.reason), e.g. INVALID_STATE.")
    metadata: dict[str, str] = Field(default_factory=dict, description="Machine-readable facts (ErrorInfo.metadata).")
    field_violations: list[FieldViolationOut] = Field(
        default_factory=list, description="One per bad field (BadRequest)."
    )


class ErrorEnvelope(BaseModel):
    error: ErrorOut


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(description="Each dependency: 'ok' or why it is not ready.")
