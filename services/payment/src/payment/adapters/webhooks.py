"""The provider's webhooks: verified (HMAC + timestamp), applied once per event id, and only when
they move a payment forward - so a replayed or reordered webhook has no second effect.

Served over HTTP by the payment process itself (`POST /webhooks/provider` on
GAVEL_PAYMENT_WEBHOOK_PORT) and through the HandleProviderWebhook RPC for a gateway that forwards
them; both land in `WebhookReceiver.receive`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI, Request, Response
from prometheus_client import Counter

from gavel_core.errors import FieldViolation, InvalidArgument, PermissionDenied
from gavel_kit.logging import get_logger
from payment.adapters import signatures
from payment.adapters.provider_http import result_of
from payment.adapters.sql import SqlPaymentUnitOfWork
from payment.app.charges import Payments

log = get_logger("payment.webhooks")
WEBHOOKS = Counter("gavel_payment_webhooks_total", "Provider webhooks received", ["outcome"])
MAX_BODY = 64 * 1024


class WebhookReceiver:
    def __init__(
        self,
        secret: Callable[[], str],
        uow_factory: Callable[[], SqlPaymentUnitOfWork],
        payments: Payments,
        clock: Callable[[], datetime],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._uow = uow_factory
        self._payments = payments
        self._clock = clock
        self._wall = wall

    async def receive(self, body: bytes, signature: str) -> bool:
        """Apply a webhook; False for a replay (or nothing to do). Bad signatures are refused."""
        if len(body) > MAX_BODY:
            WEBHOOKS.labels("too_large").inc()
            raise InvalidArgument([FieldViolation("body", f"at most {MAX_BODY} bytes")])
        try:
            signatures.verify(self._secret(), body, signature, self._wall())
        except signatures.BadSignature as exc:
            WEBHOOKS.labels("bad_signature").inc()
            log.warning("webhook refused", error=str(exc))
            raise PermissionDenied(f"webhook signature refused: {exc}", reason="BAD_SIGNATURE") from exc
        try:
            event = json.loads(body)
            event_id = str(event["id"])
            data = event["data"]
            key = str(data["idempotency_key"])
        except (ValueError, KeyError, TypeError) as exc:
            WEBHOOKS.labels("malformed").inc()
            raise InvalidArgument([FieldViolation("body", "not a provider event")]) from exc
        async with self._uow() as uow:
            first = await uow.store.first_time(f"webhook:{event_id}", self._clock())
            known = await uow.store.charge(key) is not None
            await uow.commit()
        if not first:
            WEBHOOKS.labels("replay").inc()
            return False
        if not known:
            WEBHOOKS.labels("unknown_payment").inc()  # a refund's or another system's: nothing to move
            return False
        before = await self._payments.get(key)
        after = await self._payments.apply_webhook(key, result_of(data))
        WEBHOOKS.labels("applied").inc()
        return (after.status, after.provider_version) != (before.status, before.provider_version)


def http_app(receiver: WebhookReceiver) -> FastAPI:
    """A small ASGI app for the provider to post to."""
    app = FastAPI(title="Gavel payment webhooks", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/webhooks/provider")
    async def provider(request: Request) -> Response:
        body = await request.body()
        try:
            applied = await receiver.receive(body, request.headers.get(signatures.HEADER, ""))
        except PermissionDenied:
            return Response(status_code=401)
        except InvalidArgument:
            return Response(status_code=400)
        return Response(content=json.dumps({"applied": applied}), media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
