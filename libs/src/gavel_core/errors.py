"""Errors every layer raises and the gRPC edge maps to status codes (see DESIGN.md "Errors").

Domains and use cases raise these; `gavel_kit.grpc.errors` turns them into gRPC statuses with
`google.rpc` details, so no domain needs to know about gRPC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field: `field` is a dotted path into the request (`lot.opening_bid.amount_minor`)."""

    field: str
    description: str


class GavelError(Exception):
    """Base of all errors a client may see. `message` is safe to show to the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(GavelError):
    """The request itself is malformed; `violations` names each bad field (BadRequest detail)."""

    def __init__(self, violations: Sequence[FieldViolation], message: str | None = None) -> None:
        self.violations = tuple(violations)
        super().__init__(message or "; ".join(f"{v.field}: {v.description}" for v in self.violations))


class NotFound(GavelError):
    def __init__(self, resource: str, resource_id: str) -> None:
        self.resource = resource
        self.resource_id = resource_id
        super().__init__(f"{resource} {resource_id!r} not found")


class AlreadyExists(GavelError):
    def __init__(self, resource: str, resource_id: str, message: str | None = None) -> None:
        self.resource = resource
        self.resource_id = resource_id
        super().__init__(message or f"{resource} {resource_id!r} already exists")


class FailedPrecondition(GavelError):
    """The request is well formed but the system's state refuses it.

    `reason` is a stable UPPER_SNAKE code clients switch on (`BID_TOO_LOW`, `LOT_NOT_DRAFT`);
    `metadata` carries machine-readable facts such as `min_amount_minor`.
    """

    def __init__(self, reason: str, message: str, metadata: Mapping[str, str] | None = None) -> None:
        self.reason = reason
        self.metadata = dict(metadata or {})
        super().__init__(message)


class PermissionDenied(GavelError):
    def __init__(self, message: str, reason: str = "PERMISSION_DENIED") -> None:
        self.reason = reason
        super().__init__(message)


class Unauthenticated(GavelError):
    pass


class ResourceExhausted(GavelError):
    pass


class Aborted(GavelError):
    """A concurrent change won; the caller may retry with the same request id."""


class Unavailable(GavelError):
    """A dependency is down, or this process is stopping; retrying (with the same request id) is
    safe. `retry_after_ms` is the hint sent to the client (google.rpc.RetryInfo)."""

    def __init__(self, message: str, retry_after_ms: int = 100) -> None:
        self.retry_after_ms = retry_after_ms
        super().__init__(message)


@dataclass(slots=True)
class Violations:
    """Collects field violations so a validator can report every bad field at once."""

    items: list[FieldViolation] = field(default_factory=list)

    def add(self, field_path: str, description: str) -> None:
        self.items.append(FieldViolation(field_path, description))

    def require(self, condition: bool, field_path: str, description: str) -> None:
        if not condition:
            self.add(field_path, description)

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)
