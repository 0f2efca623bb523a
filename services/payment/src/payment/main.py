"""Composition root of the payment service: `python -m payment.main [serve|migrate]`.

- `serve` (default): gavel.payment.v1.PaymentService on GAVEL_PAYMENT_GRPC_PORT (50054) once its
  database is migrated and NATS connected (stream PAYMENT_EVENTS, subjects gavel.payment.>); the
  outbox relay publishes its events; durable consumers read the room's log and the catalog's lot
  outcomes; the provider's webhooks are served on GAVEL_PAYMENT_WEBHOOK_PORT (8054); a
  reconciler asks the provider about payments and refunds left unknown; an overdue scanner
  penalises unpaid invoices past their due date.
- `migrate`: upgrade the payment tables and exit.

Settings (GAVEL_PAYMENT_*): PROVIDER_URL (http://127.0.0.1:8095, the sandbox), PROVIDER_KEY and
WEBHOOK_SECRET (default: generated under <var>/secrets/), PROVIDER_TIMEOUT_S (3),
WEBHOOK_PORT (8054), STRIKES_TO_BAN (3), STRIKE_WINDOW_DAYS (365), RECONCILE_S (5),
OVERDUE_SCAN_S (30).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from datetime import datetime, timedelta

from gavel.payment.v1 import payment_service_pb2_grpc
from gavel_kit import service
from gavel_kit.db import utcnow
from gavel_kit.logging import get_logger
from gavel_kit.nats import StreamSpec
from gavel_kit.service import Hook, Runtime, ServiceDefinition
from payment.adapters import keys
from payment.adapters.consumers import FactConsumer, consumers
from payment.adapters.grpc_servicer import PaymentServicer
from payment.adapters.ids import SecureIds
from payment.adapters.orm import metadata, tables
from payment.adapters.provider_http import HttpProvider
from payment.adapters.sql import SqlPaymentUnitOfWork
from payment.adapters.webhooks import WebhookReceiver, http_app
from payment.app.charges import Payments
from payment.app.common import Env
from payment.app.invoicing import mark_overdue
from payment.domain.discipline import Policy
from payment.domain.events import STREAM, SUBJECT_PREFIX

log = get_logger("payment.main")
MIGRATIONS = "payment.adapters:migrations"
STREAMS = [
    StreamSpec(
        name=STREAM,
        subjects=[f"{SUBJECT_PREFIX}.>"],
        description="Payment events: invoices, payments, penalties (payment_events.proto) and bidder "
        "eligibility - bans, bid limits (eligibility_events.proto); docs/events.md",
    )
]


def make_wire(clock: Callable[[], datetime] = utcnow) -> Hook:
    async def wire(rt: Runtime) -> None:
        settings = rt.settings
        api_key = keys.read_or_create(settings.var_dir, keys.API_KEY_FILE, settings.option("PROVIDER_KEY", ""))
        webhook_secret = keys.read_or_create(
            settings.var_dir, keys.WEBHOOK_SIGNING_FILE, settings.option("WEBHOOK_SECRET", "")
        )
        policy = Policy(
            strikes_to_ban=int(settings.option("STRIKES_TO_BAN", "3")),
            window=timedelta(days=float(settings.option("STRIKE_WINDOW_DAYS", "365"))),
        )
        env = Env(ids=SecureIds(), policy=policy)

        def unit_of_work() -> SqlPaymentUnitOfWork:
            return SqlPaymentUnitOfWork(rt.db, rt.relay)

        provider = HttpProvider(
            settings.option("PROVIDER_URL", "http://127.0.0.1:8095"),
            lambda: api_key,
            timeout_s=float(settings.option("PROVIDER_TIMEOUT_S", "3")),
        )
        reconcile_s = float(settings.option("RECONCILE_S", "5"))
        payments = Payments(unit_of_work, provider, env, clock, reconcile_after=timedelta(seconds=reconcile_s))
        receiver = WebhookReceiver(lambda: webhook_secret, unit_of_work, payments, clock)
        servicer = PaymentServicer(unit_of_work, env=env, payments=payments, webhooks=receiver, clock=clock)
        payment_service_pb2_grpc.add_PaymentServiceServicer_to_server(servicer, rt.server)
        handler = FactConsumer(unit_of_work, env, payments, clock)
        overdue_s = float(settings.option("OVERDUE_SCAN_S", "30"))
        webhook_port = int(settings.option("WEBHOOK_PORT", "8054"))

        async def reconciler() -> None:
            while True:
                await asyncio.sleep(reconcile_s)
                try:
                    await payments.reconcile()
                except Exception:
                    log.exception("reconciliation round failed")

        async def overdue_scanner() -> None:
            while True:
                await asyncio.sleep(overdue_s)
                try:
                    async with unit_of_work() as uow:
                        due = [invoice.id for invoice in await uow.store.due_invoices(clock(), 200)]
                    for invoice_id in due:
                        async with unit_of_work() as uow:
                            await mark_overdue(uow, env, invoice_id, clock())
                            await uow.commit()
                except Exception:
                    log.exception("overdue scan failed")

        import uvicorn

        server = uvicorn.Server(
            uvicorn.Config(
                http_app(receiver), host=settings.grpc_host, port=webhook_port, log_level="warning", lifespan="off"
            )
        )

        async def start(runtime: Runtime) -> None:
            for consumer in consumers(runtime.js, handler):
                runtime.spawn(consumer.run(), consumer.durable)
            runtime.spawn(reconciler(), "payment-reconciler")
            if overdue_s > 0:
                runtime.spawn(overdue_scanner(), "payment-overdue")
            runtime.spawn(server.serve(), "payment-webhooks")

        async def stop(runtime: Runtime) -> None:
            server.should_exit = True
            await provider.close()

        rt.on_ready(start)
        rt.on_stop(stop)

    return wire


def definition(clock: Callable[[], datetime] = utcnow) -> ServiceDefinition:
    return ServiceDefinition(
        name="payment", wire=make_wire(clock), metadata=metadata, migrations=MIGRATIONS, kit=tables, streams=STREAMS
    )


DEFINITION = definition()


def main() -> int:
    return service.main(DEFINITION)


if __name__ == "__main__":
    sys.exit(main())
