"""One JSON error shape for everything the gateway answers with a 4xx/5xx:

    {"error": {"code": "FAILED_PRECONDITION", "message": "…", "reason": "INVALID_STATE",
               "metadata": {"resource": "sale"}, "field_violations": [{"field": "…", "description": "…"}]}}

`code` is the gRPC status name whether the error came from a Gavel service (with its google.rpc
details: BadRequest → field_violations, ErrorInfo → reason + metadata) or from the gateway itself
(gavel_core errors, request validation).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.adapters.http.schemas import ErrorEnvelope, ErrorOut, FieldViolationOut
from gavel_core.errors import FailedPrecondition, FieldViolation, GavelError, InvalidArgument
from gavel_kit.grpc.errors import bad_request_of, error_info_of, status_code_of
from gavel_kit.logging import get_logger

log = get_logger("gateway.http")

HTTP_STATUS_OF: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
"""gRPC status → HTTP status; anything else an upstream answers (INTERNAL, UNKNOWN, UNIMPLEMENTED, …) is 502."""

# Transport failures say where the gateway tried to connect; the caller needs only "retry later".
_GENERIC_MESSAGES: Mapping[grpc.StatusCode, str] = {
    grpc.StatusCode.UNAVAILABLE: "a Gavel service the request needs is unavailable; retry shortly",
    grpc.StatusCode.DEADLINE_EXCEEDED: "a Gavel service the request needs did not answer in time; retry shortly",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """For route declarations: the statuses a route may answer with the error shape, for /docs."""
    return {status: {"model": ErrorEnvelope, "description": HTTPStatus(status).phrase} for status in statuses}


def http_status_of(code: grpc.StatusCode) -> int:
    return HTTP_STATUS_OF.get(code, 502)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    reason: str = "",
    metadata: Mapping[str, str] | None = None,
    violations: Iterable[FieldViolation] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorEnvelope(
        error=ErrorOut(
            code=code,
            message=message,
            reason=reason,
            metadata=dict(metadata or {}),
            field_violations=[FieldViolationOut(field=v.field, description=v.description) for v in violations],
        )
    )
    all_headers = dict(headers or {})
    if status == 401:
        all_headers.setdefault("WWW-Authenticate", "Bearer")
    if status in (429, 503):
        all_headers.setdefault("Retry-After", "1")
    return JSONResponse(body.model_dump(), status_code=status, headers=all_headers)


def from_gavel_error(error: GavelError) -> JSONResponse:
    code = status_code_of(error)
    violations = error.violations if isinstance(error, InvalidArgument) else ()
    metadata = error.metadata if isinstance(error, FailedPrecondition) else {}
    reason = str(getattr(error, "reason", "") or "")
    retry_after = getattr(error, "retry_after_s", None)  # rate limits say how long to wait
    headers = {"Retry-After": str(int(retry_after))} if isinstance(retry_after, int | float) else None
    return error_response(
        http_status_of(code),
        code.name,
        error.message,
        reason=reason,
        metadata=metadata,
        violations=violations,
        headers=headers,
    )


def from_rpc_error(error: grpc.aio.AioRpcError) -> JSONResponse:
    code = error.code()
    details = error.details() or code.name
    status = http_status_of(code)
    if status >= 500:
        log.warning("upstream call failed", code=code.name, details=details, http_status=status)
    violations: list[FieldViolation] = []
    reason, metadata = "", {}
    bad_request = bad_request_of(error)
    if bad_request is not None:
        violations = [FieldViolation(v.field, v.description) for v in bad_request.field_violations]
    info = error_info_of(error)
    if info is not None:
        reason, metadata = info.reason, dict(info.metadata)
    message = _GENERIC_MESSAGES.get(code, details)
    return error_response(status, code.name, message, reason=reason, metadata=metadata, violations=violations)


def _validation_violations(error: RequestValidationError) -> list[FieldViolation]:
    violations = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ())]
        if len(location) > 1 and location[0] in ("body", "query", "path", "header"):
            location = location[1:]
        violations.append(FieldViolation(".".join(location) or "body", str(item.get("msg", "is invalid"))))
    return violations


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the error shape."""

    async def on_gavel_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, GavelError)
        return from_gavel_error(exc)

    async def on_rpc_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, grpc.aio.AioRpcError)
        return from_rpc_error(exc)

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        violations = _validation_violations(exc)
        message = "; ".join(f"{v.field}: {v.description}" for v in violations) or "the request is malformed"
        return error_response(400, grpc.StatusCode.INVALID_ARGUMENT.name, message, violations=violations)

    async def on_http_exception(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        phrase = HTTPStatus(exc.status_code)
        code = {404: "NOT_FOUND", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}.get(exc.status_code, phrase.name)
        message = exc.detail if isinstance(exc.detail, str) else phrase.phrase
        return error_response(exc.status_code, code, message, headers=exc.headers)

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        reference = uuid.uuid4().hex[:12]
        log.error("request failed", reference=reference, exc_info=exc)
        return error_response(500, grpc.StatusCode.INTERNAL.name, f"internal error (reference {reference})")

    app.add_exception_handler(GavelError, on_gavel_error)
    app.add_exception_handler(grpc.aio.AioRpcError, on_rpc_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(Exception, on_unexpected)
