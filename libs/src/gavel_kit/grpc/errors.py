"""Map gavel_core errors to gRPC statuses with google.rpc details (DESIGN.md "Errors")."""

from __future__ import annotations

from typing import TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from gavel_core.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    GavelError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

ERROR_DOMAIN = "gavel.dev"

_CODES: list[tuple[type[GavelError], grpc.StatusCode]] = [
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (Aborted, grpc.StatusCode.ABORTED),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
]


def status_code_of(error: GavelError) -> grpc.StatusCode:
    for error_type, code in _CODES:
        if isinstance(error, error_type):
            return code
    return grpc.StatusCode.UNKNOWN


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_status(error: GavelError) -> grpc.Status:
    """A grpc.Status whose trailing metadata carries `grpc-status-details-bin` with rich details."""
    code = status_code_of(error)
    details: list[any_pb2.Any] = []
    if isinstance(error, InvalidArgument):
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in error.violations
            ]
        )
        details.append(_pack(bad_request))
    elif isinstance(error, NotFound | AlreadyExists):
        details.append(
            _pack(error_details_pb2.ResourceInfo(resource_type=error.resource, resource_name=error.resource_id))
        )
    if isinstance(error, FailedPrecondition):
        details.append(
            _pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata))
        )
    elif isinstance(error, PermissionDenied):
        details.append(_pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN)))
    elif isinstance(error, Unavailable):  # the retry hint: when to try again (same request id)
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(error.retry_after_ms)
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    status = status_pb2.Status(code=code.value[0], message=error.message, details=details)
    return rpc_status.to_status(status)


def internal_status(reference: str) -> grpc.Status:
    message = f"internal error (reference {reference}); the request may be retried with the same request_id"
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.INTERNAL, message=message))


D = TypeVar("D", error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.RetryInfo)


def _detail_of(error: grpc.aio.AioRpcError | grpc.RpcError, kind: type[D]) -> D | None:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(kind.DESCRIPTOR):
            found = kind()
            detail.Unpack(found)
            return found
    return None


def error_info_of(error: grpc.aio.AioRpcError | grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """Client side: the ErrorInfo detail of a failed call, if any (tests and service clients use it)."""
    return _detail_of(error, error_details_pb2.ErrorInfo)


def bad_request_of(error: grpc.aio.AioRpcError | grpc.RpcError) -> error_details_pb2.BadRequest | None:
    """Client side: the BadRequest detail (field violations) of a failed call, if any."""
    return _detail_of(error, error_details_pb2.BadRequest)


def retry_info_of(error: grpc.aio.AioRpcError | grpc.RpcError) -> error_details_pb2.RetryInfo | None:
    """Client side: the RetryInfo detail (the server's retry hint) of a failed call, if any."""
    return _detail_of(error, error_details_pb2.RetryInfo)
