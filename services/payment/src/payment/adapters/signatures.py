"""Webhook signatures: HMAC-SHA256 over `<unix seconds>.<body>`, sent as `t=<seconds>,v1=<hex>`.

The timestamp is part of what is signed, so a captured webhook cannot be replayed later than the
tolerance; within it, replays are harmless anyway (each event id is applied once)."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Gavel-Sandbox-Signature"
TOLERANCE_S = 300


class BadSignature(Exception):
    pass


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, now: float, tolerance_s: float = TOLERANCE_S) -> None:
    """Raise BadSignature unless `header` signs `body` with `secret` within the tolerance."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError) as exc:
        raise BadSignature("malformed signature header") from exc
    if abs(now - timestamp) > tolerance_s:
        raise BadSignature("signature timestamp outside the tolerance")
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, given):
        raise BadSignature("signature does not match")
