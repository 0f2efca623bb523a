"""Readiness checks: each dependency the gateway needs before it can serve (see GET /readyz)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

ReadinessCheck = Callable[[], Awaitable[None]]
"""Returns when the dependency is ready; raises (NotReady with a short reason, or anything) when not."""


class NotReady(Exception):
    """A dependency did not pass its readiness check; the message says why, briefly and safely."""
