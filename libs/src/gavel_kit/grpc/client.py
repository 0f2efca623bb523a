"""Clients for calling other Gavel services: traced channels carrying a bearer token."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from gavel_kit import telemetry

# Reconnect soon after a server comes back: gRPC's default backoff grows to 120 s (1 s, 1.6 s,
# 2.6 s, 4.1 s, 6.6 s, …), so a client of a service restarted in 5 s would wait until the attempt at
# ~9 s, and one restarted in 10 s until ~16 s (seen in the fault suite); capped at 2 s here.
RECONNECT_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
)
CLIENT_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_permit_without_calls", 1),
    *RECONNECT_OPTIONS,
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
