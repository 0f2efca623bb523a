"""The sandbox card provider: `python -m payment.sandbox` (started by `gavel up`).

A stand-in for a real payment provider, on its own port (GAVEL_PAYMENT_SANDBOX_PORT, default 8095), with
the API `payment.adapters.provider_http` speaks: authorisations (with capture, void, refunds)
made with an Idempotency-Key (a repeated key returns what the first call did), a lookup by that
key, a 3-D Secure style confirmation page, and webhooks signed like a real provider's
(`payment.adapters.signatures`) posted to GAVEL_PAYMENT_SANDBOX_WEBHOOK_URL. State is in memory: a
restarted sandbox has forgotten every payment (it is a sandbox).

Test cards (the payment method is the card number):

| card | what happens |
|---|---|
| 4242424242424242 | authorised |
| 4000000000000002 | declined (`declined`) |
| 4000000000009995 | declined (`insufficient_funds`) |
| 4000000000003220 | needs confirmation on the sandbox's page (3-D Secure style): confirm or refuse there |
| 4000000000000259 | slow: answers after GAVEL_PAYMENT_SANDBOX_SLOW_S (default 10) seconds, then authorised |
| anything else | declined (`invalid_card`) |
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from gavel_kit.logging import configure as configure_logging
from gavel_kit.logging import get_logger
from payment.adapters import keys, signatures

log = get_logger("payment.sandbox")

SUCCESS = "4242424242424242"
DECLINE = "4000000000000002"
INSUFFICIENT = "4000000000009995"
THREE_DS = "4000000000003220"
SLOW = "4000000000000259"


@dataclass
class Authorization:
    id: str
    key: str
    amount_minor: int
    currency: str
    card: str
    return_url: str
    reference: str
    status: str
    version: int = 1
    reason: str = ""
    captured_minor: int = 0
    refunded_minor: int = 0
    action_url: str = ""

    def view(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("card")
        data["idempotency_key"] = data.pop("key")
        data["card_last4"] = self.card[-4:]
        return data


@dataclass
class Sandbox:
    api_key: str
    webhook_secret: str
    webhook_url: str
    public_url: str
    slow_s: float = 10.0
    by_key: dict[str, Authorization] = field(default_factory=dict)
    by_id: dict[str, Authorization] = field(default_factory=dict)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)  # idempotency key -> answer
    sent: dict[str, bytes] = field(default_factory=dict)  # webhook event id -> body (for replays)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def check(self, authorization: str | None) -> None:
        if not authorization or not secrets.compare_digest(authorization, f"Bearer {self.api_key}"):
            raise HTTPException(status_code=401, detail="bad API key")

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def bump(self, auth: Authorization, status: str, reason: str = "") -> None:
        auth.status = status
        auth.reason = reason
        auth.version += 1
        self.spawn(self.notify(auth))

    async def notify(self, auth: Authorization) -> None:
        event_id = f"evt_{secrets.token_hex(8)}"
        body = json.dumps(
            {"id": event_id, "type": "authorization.updated", "created": int(time.time()), "data": auth.view()}
        ).encode()
        self.sent[event_id] = body
        await self.deliver(body)

    async def deliver(self, body: bytes) -> None:
        if not self.webhook_url:
            return
        for attempt in range(5):
            header = signatures.sign(self.webhook_secret, body, int(time.time()))
            try:
                async with httpx.AsyncClient(timeout=5) as client:
                    response = await client.post(
                        self.webhook_url,
                        content=body,
                        headers={signatures.HEADER: header, "content-type": "application/json"},
                    )
                if response.status_code < 500:
                    return
            except httpx.HTTPError as exc:
                log.info("webhook delivery failed; retrying", error=repr(exc), attempt=attempt)
            await asyncio.sleep(0.5 * (attempt + 1))


def build(sandbox: Sandbox) -> FastAPI:
    app = FastAPI(title="Gavel sandbox card provider", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/authorizations")
    async def authorize(
        request: Request, authorization: str | None = Header(None), idempotency_key: str = Header(...)
    ) -> dict[str, Any]:
        sandbox.check(authorization)
        existing = sandbox.by_key.get(idempotency_key)
        if existing is not None:
            return existing.view()
        body = await request.json()
        card = str(body.get("payment_method", ""))
        auth = Authorization(
            id=f"auth_{secrets.token_hex(10)}",
            key=idempotency_key,
            amount_minor=int(body["amount_minor"]),
            currency=str(body["currency"]),
            card=card,
            return_url=str(body.get("return_url", "")),
            reference=str(body.get("reference", ""))[:200],
            status="processing",
        )
        sandbox.by_key[idempotency_key] = auth
        sandbox.by_id[auth.id] = auth
        if card == SLOW:
            await asyncio.sleep(sandbox.slow_s)  # longer than the caller waits: it must ask again
            sandbox.bump(auth, "authorized")
            return auth.view()
        if card == SUCCESS:
            auth.status = "authorized"
        elif card == THREE_DS:
            auth.status = "requires_action"
            auth.action_url = f"{sandbox.public_url}/3ds/{auth.id}"
        elif card == DECLINE:
            auth.status, auth.reason = "declined", "declined"
        elif card == INSUFFICIENT:
            auth.status, auth.reason = "declined", "insufficient_funds"
        else:
            auth.status, auth.reason = "declined", "invalid_card"
        return auth.view()

    @app.get("/v1/authorizations")
    async def lookup(idempotency_key: str, authorization: str | None = Header(None)) -> dict[str, Any]:
        sandbox.check(authorization)
        auth = sandbox.by_key.get(idempotency_key)
        if auth is None:
            raise HTTPException(status_code=404, detail="no authorization with this key")
        return auth.view()

    def find(auth_id: str) -> Authorization:
        auth = sandbox.by_id.get(auth_id)
        if auth is None:
            raise HTTPException(status_code=404, detail="no such authorization")
        return auth

    @app.post("/v1/authorizations/{auth_id}/capture")
    async def capture(
        auth_id: str, request: Request, authorization: str | None = Header(None), idempotency_key: str = Header(...)
    ) -> dict[str, Any]:
        sandbox.check(authorization)
        if idempotency_key in sandbox.operations:
            return sandbox.operations[idempotency_key]
        auth = find(auth_id)
        amount = int((await request.json()).get("amount_minor", auth.amount_minor))
        if auth.status != "authorized" or amount > auth.amount_minor:
            raise HTTPException(status_code=409, detail={"reason": f"cannot capture a {auth.status} authorization"})
        auth.captured_minor = amount
        sandbox.bump(auth, "captured")
        answer = auth.view()
        sandbox.operations[idempotency_key] = answer
        return answer

    @app.post("/v1/authorizations/{auth_id}/void")
    async def void(
        auth_id: str, authorization: str | None = Header(None), idempotency_key: str = Header(...)
    ) -> dict[str, Any]:
        sandbox.check(authorization)
        if idempotency_key in sandbox.operations:
            return sandbox.operations[idempotency_key]
        auth = find(auth_id)
        if auth.status not in ("authorized", "requires_action"):
            raise HTTPException(status_code=409, detail={"reason": f"cannot void a {auth.status} authorization"})
        sandbox.bump(auth, "voided")
        answer = auth.view()
        sandbox.operations[idempotency_key] = answer
        return answer

    @app.post("/v1/authorizations/{auth_id}/refunds")
    async def refund(
        auth_id: str, request: Request, authorization: str | None = Header(None), idempotency_key: str = Header(...)
    ) -> dict[str, Any]:
        sandbox.check(authorization)
        if idempotency_key in sandbox.operations:
            return sandbox.operations[idempotency_key]
        auth = find(auth_id)
        amount = int((await request.json())["amount_minor"])
        if (
            auth.status not in ("captured", "refunded")
            or amount <= 0
            or auth.refunded_minor + amount > auth.captured_minor
        ):
            raise HTTPException(status_code=409, detail={"reason": "refund exceeds what was captured"})
        auth.refunded_minor += amount
        answer = {"id": f"re_{secrets.token_hex(8)}", "status": "refunded", "amount_minor": amount, "version": 1}
        sandbox.operations[idempotency_key] = answer
        return answer

    @app.get("/3ds/{auth_id}", response_class=HTMLResponse)
    async def challenge(auth_id: str) -> str:
        auth = find(auth_id)
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>Confirm your payment</title></head><body>"
            f"<h1>Confirm a payment of {auth.amount_minor} ({auth.currency}) minor units</h1>"
            f"<p>Card ending {auth.card[-4:]} &middot; status {auth.status}</p>"
            f"<form method='post' action='/3ds/{auth.id}/confirm'><button>Confirm</button></form>"
            f"<form method='post' action='/3ds/{auth.id}/deny'><button>Refuse</button></form>"
            "</body></html>"
        )

    async def decide(auth_id: str, ok: bool) -> Response:
        auth = find(auth_id)
        if auth.status == "requires_action":
            auth.action_url = ""
            sandbox.bump(auth, "authorized" if ok else "declined", "" if ok else "authentication_failed")
        if auth.return_url:
            return RedirectResponse(f"{auth.return_url}?payment={auth.key}&status={auth.status}", status_code=303)
        return Response(content=json.dumps(auth.view()), media_type="application/json")

    @app.post("/3ds/{auth_id}/confirm")
    async def confirm(auth_id: str) -> Response:
        return await decide(auth_id, True)

    @app.post("/3ds/{auth_id}/deny")
    async def deny(auth_id: str) -> Response:
        return await decide(auth_id, False)

    @app.post("/v1/test/webhooks/{event_id}/resend")
    async def resend(event_id: str, authorization: str | None = Header(None)) -> dict[str, str]:
        """Deliver a webhook again, byte for byte (re-signed now): how tests replay one."""
        sandbox.check(authorization)
        body = sandbox.sent.get(event_id)
        if body is None:
            raise HTTPException(status_code=404, detail="no such event")
        await sandbox.deliver(body)
        return {"resent": event_id}

    @app.get("/v1/test/webhooks")
    async def webhooks(authorization: str | None = Header(None)) -> dict[str, list[str]]:
        sandbox.check(authorization)
        return {"events": list(sandbox.sent)}

    return app


def from_env(environ: dict[str, str] | None = None) -> tuple[Sandbox, str, int]:
    env = os.environ if environ is None else environ
    var_dir = Path(env.get("GAVEL_VAR_DIR") or Path.cwd() / "var").resolve()
    host = env.get("GAVEL_HOST", "127.0.0.1")
    port = int(env.get("GAVEL_PAYMENT_SANDBOX_PORT", "8095"))
    webhook_port = env.get("GAVEL_PAYMENT_WEBHOOK_PORT", "8054")
    sandbox = Sandbox(
        api_key=keys.read_or_create(var_dir, keys.API_KEY_FILE, env.get("GAVEL_PAYMENT_PROVIDER_KEY", "")),
        webhook_secret=keys.read_or_create(
            var_dir, keys.WEBHOOK_SIGNING_FILE, env.get("GAVEL_PAYMENT_WEBHOOK_SECRET", "")
        ),
        webhook_url=env.get("GAVEL_PAYMENT_SANDBOX_WEBHOOK_URL") or f"http://{host}:{webhook_port}/webhooks/provider",
        public_url=env.get("GAVEL_PAYMENT_SANDBOX_PUBLIC_URL") or f"http://{host}:{port}",
        slow_s=float(env.get("GAVEL_PAYMENT_SANDBOX_SLOW_S", "10")),
    )
    return sandbox, host, port


def main() -> int:
    configure_logging(
        "payment-sandbox", os.environ.get("GAVEL_LOG_LEVEL", "INFO"), os.environ.get("GAVEL_LOG_FORMAT", "json")
    )
    sandbox, host, port = from_env()
    log.info("sandbox provider listening", address=f"{host}:{port}", webhooks=sandbox.webhook_url)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(build(sandbox), host=host, port=port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
