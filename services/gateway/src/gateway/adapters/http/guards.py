"""What the gateway checks before a route sees a request, and adds to every answer.

- **Body cap** (`max_body_bytes`, 64 KiB): a declared Content-Length above it is answered 413 before
  a byte of the body is read; a body without one (chunked) is counted as it streams and cut off at
  the cap with the same 413. Nothing larger is ever held in memory.
- **JSON depth** (`max_json_depth`, 32): a JSON body nested deeper is 400 before it is parsed (a
  deep `[[[[…]]]]` would otherwise reach the parser's recursion limit: a 500).
- **Security headers** on every answer: a Content-Security-Policy (`default-src 'self'`,
  `frame-ancestors 'none'`; the API docs pages also load Swagger UI from its CDN),
  `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`, and
  `Strict-Transport-Security` when the request came over TLS (directly, or per `X-Forwarded-Proto`
  from a trusted proxy).
- **No caching of credentials**: `Cache-Control: no-store` on every answer to a request that
  carried an Authorization header and on every `/api/v1/auth/*` and `/api/v1/me` answer (they carry
  tokens or account data); `Vary: Authorization` elsewhere under /api, since answers differ by caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
PAGE_CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'; form-action 'self'"
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
NO_STORE_PREFIXES = ("/api/v1/auth/", "/api/v1/me")


@dataclass(frozen=True)
class GuardSettings:
    max_body_bytes: int = 64 * 1024
    max_json_depth: int = 32
    trust_forwarded: bool = False  # believe X-Forwarded-Proto/-For (only behind a proxy that sets them)
    hsts: bool = False  # send HSTS even on plain HTTP (TLS terminated by something that does not say so)


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """True when the JSON text nests arrays/objects deeper than `limit` (strings are skipped)."""
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def _error(status: int, code: str, message: str) -> bytes:
    body = {"error": {"code": code, "message": message, "reason": "", "metadata": {}, "field_violations": []}}
    return json.dumps(body).encode()


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def is_tls(scope: Scope, trust_forwarded: bool) -> bool:
    if scope.get("scheme") == "https":
        return True
    forwarded = _header(scope, b"x-forwarded-proto") if trust_forwarded else None
    return forwarded is not None and forwarded.split(b",")[0].strip().lower() == b"https"


class RequestGuards:
    """Pure ASGI middleware (it must see the body before anything buffers it)."""

    def __init__(self, app: ASGIApp, settings: GuardSettings | None = None) -> None:
        self.app = app
        self.settings = settings or GuardSettings()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = self.settings
        path: str = scope.get("path", "")
        headers_to_add = self._headers_for(scope, path)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                existing = {key.lower() for key, _ in message.get("headers", [])}
                added = [(k, v) for k, v in headers_to_add if k not in existing]
                message["headers"] = [*message.get("headers", []), *added]
            await send(message)

        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > settings.max_body_bytes
            except ValueError:
                await self._answer(send_with_headers, 400, "INVALID_ARGUMENT", "Content-Length is not a number")
                return
            if too_large:
                await self._answer(send_with_headers, 413, "RESOURCE_EXHAUSTED", self._too_large())
                return
        if scope.get("method") not in ("POST", "PUT", "PATCH", "DELETE"):
            await self.app(scope, receive, send_with_headers)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > settings.max_body_bytes:
                await self._answer(send_with_headers, 413, "RESOURCE_EXHAUSTED", self._too_large())
                return
            more = message.get("more_body", False)
        content_type = (_header(scope, b"content-type") or b"").lower()
        if b"json" in content_type and json_depth_exceeds(bytes(body), settings.max_json_depth):
            message_text = f"the JSON body nests deeper than {settings.max_json_depth} levels"
            await self._answer(send_with_headers, 400, "INVALID_ARGUMENT", message_text)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send_with_headers)

    def _too_large(self) -> str:
        return f"the request body is larger than {self.settings.max_body_bytes} bytes"

    @staticmethod
    async def _answer(send: Send, status: int, code: str, message: str) -> None:
        body = _error(status, code, message)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _headers_for(self, scope: Scope, path: str) -> list[tuple[bytes, bytes]]:
        if path in DOCS_PATHS:
            csp = DOCS_CSP
        elif path.startswith("/api/") or path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
            csp = API_CSP
        else:
            csp = PAGE_CSP
        headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if self.settings.hsts or is_tls(scope, self.settings.trust_forwarded):
            headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        if _header(scope, b"authorization") is not None or path.startswith(NO_STORE_PREFIXES):
            headers += [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
        if path.startswith("/api/"):
            headers.append((b"vary", b"Authorization, Origin"))
        return headers
