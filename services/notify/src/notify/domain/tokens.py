"""Signed one-click unsubscribe tokens and verification-code digests (HMAC-SHA256, no state).

A token names (user, kind, channel) and is signed with the service's link key, so anyone holding
the link may use it (that is what one-click means, RFC 8058) and nobody can forge another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from gavel_core.errors import FieldViolation, InvalidArgument
from notify.domain.kinds import KINDS, Channel

_VERSION = "1"
MAX_TOKEN = 600


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    user_id: str
    kind: str  # a kind, or "*" for every kind on the channel
    channel: Channel


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, body: str) -> bytes:
    return hmac.new(key, body.encode(), hashlib.sha256).digest()[:20]


def sign_unsubscribe(key: bytes, what: Unsubscribe) -> str:
    body = _b64("\x1f".join((_VERSION, what.user_id, what.kind, what.channel.value)).encode())
    return f"{body}.{_b64(_mac(key, body))}"


def verify_unsubscribe(key: bytes, token: str) -> Unsubscribe:
    """The unsubscribe a token names; INVALID_ARGUMENT for anything not signed by `key`."""
    invalid = InvalidArgument([FieldViolation("token", "is not a valid unsubscribe token")])
    if not token or len(token) > MAX_TOKEN or token.count(".") != 1:
        raise invalid
    body, _, mac = token.partition(".")
    try:
        if not hmac.compare_digest(mac, _b64(_mac(key, body))):  # the text, not the bytes: one spelling only
            raise invalid
        version, user_id, kind, channel = _unb64(body).decode().split("\x1f")
        what = Unsubscribe(user_id, kind, Channel(channel))
    except (ValueError, UnicodeDecodeError):
        raise invalid from None
    if version != _VERSION or not user_id or (kind != "*" and kind not in KINDS):
        raise invalid
    return what


def code_digest(key: bytes, user_id: str, channel: Channel, address: str, code: str) -> str:
    """What is stored of a verification code: bound to the user, channel and address it was sent to."""
    return hmac.new(key, "\x1f".join((user_id, channel.value, address, code)).encode(), hashlib.sha256).hexdigest()
