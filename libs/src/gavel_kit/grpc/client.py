"""Clients for calling other Gavel services: traced channels carrying a bearer token."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from gavel_kit import telemetry

CLIENT_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_permit_without_calls", 1),
)


def channel(address: str) -> grpc.aio.Channel:
    """An insecure aio channel to `host:port` whose calls carry the current trace context."""
    return grpc.aio.insecure_channel(
        address,
        options=CLIENT_OPTIONS,
        interceptors=telemetry.grpc_client_interceptors(),  # type: ignore[arg-type]
    )


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying `token` (pass as `metadata=` on a stub call)."""
    return (("authorization", f"Bearer {token}"),)
