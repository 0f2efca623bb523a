"""Composition root of notify: `python -m notify.main [serve|migrate]`.

`serve` runs gavel.notify.v1.NotifyService (GAVEL_NOTIFY_GRPC_PORT, default 50055) once its
database is migrated and NATS is connected, plus, on every replica: a durable consumer per source
of events (notify-catalog, notify-room, notify-payment), the dispatcher, the digest loop and the
SMS receipt poller. Settings are `GAVEL_NOTIFY_<NAME>` (docs/notify.md lists them).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gavel.notify.v1 import notify_service_pb2_grpc
from gavel_kit import service
from gavel_kit.db import utcnow
from gavel_kit.keys import load_secret
from gavel_kit.service import Hook, Runtime, ServiceDefinition
from gavel_kit.settings import Settings
from notify.adapters.channels import HttpSmsSender, SmsConfig, SmtpConfig, SmtpSender
from notify.adapters.grpc_servicer import NotifyServicer
from notify.adapters.orm import metadata
from notify.adapters.schedule import CatalogSchedule
from notify.adapters.templates import JinjaRenderer
from notify.adapters.unit_of_work import SqlNotifyUnitOfWork
from notify.adapters.workers import (
    DispatchLoop,
    EventConsumers,
    digest_loop,
    log_delivery_error,
    receipt_loop,
    record_outcome,
)
from notify.app.dispatch import Dispatcher, RetryPolicy, TokenBucket
from notify.app.links import LinkBuilder
from notify.domain.deliveries import Limits
from notify.domain.kinds import Channel

MIGRATIONS = "notify.adapters:migrations"


def _key(settings: Settings, purpose: str) -> bytes:
    """A key of its own per purpose: GAVEL_NOTIFY_LINK_SECRET if set, else derived from the
    deployment secret `gavel up` generates under var/keys (no default is in the source; no key, no start)."""
    configured = settings.option("LINK_SECRET", "")
    secret = configured.encode() if configured else load_secret(settings.keys_dir / "notify-links.key")
    return hmac.new(secret, f"gavel-notify:{purpose}".encode(), hashlib.sha256).digest()


@dataclass
class NotifyComponents:
    """What `wire` built, for tests that drive or watch it."""

    dispatcher: Dispatcher
    loop: DispatchLoop
    consumers: EventConsumers
    sms: HttpSmsSender
    extra: dict[str, object] = field(default_factory=dict)


def smtp_config(settings: Settings) -> SmtpConfig:
    return SmtpConfig(
        host=settings.option("SMTP_HOST", "127.0.0.1"),
        port=int(settings.option("SMTP_PORT", "2525")),
        security=settings.option("SMTP_SECURITY", "none"),
        username=settings.option("SMTP_USERNAME", ""),
        password=settings.option("SMTP_PASSWORD", ""),
        sender=settings.option("SMTP_FROM", "Gavel <notify@gavel.local>"),
        timeout_s=float(settings.option("SMTP_TIMEOUT_S", "10")),
        ca_file=settings.option("SMTP_CA_FILE", ""),
    )


def sms_config(settings: Settings) -> SmsConfig:
    return SmsConfig(
        endpoint=settings.option("SMS_URL", "http://127.0.0.1:8026").rstrip("/"),
        key=settings.option("SMS_KEY", "sandbox-key"),
        sender_id=settings.option("SMS_SENDER_ID", "Gavel"),
    )


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        attempts_per_run=int(settings.option("SEND_ATTEMPTS", "3")),
        max_attempts=int(settings.option("MAX_ATTEMPTS", "9")),
        first_wait_s=float(settings.option("RETRY_FIRST_WAIT_S", "0.5")),
        max_wait_s=float(settings.option("RETRY_MAX_WAIT_S", "5")),
        run_backoff=timedelta(seconds=float(settings.option("RUN_BACKOFF_S", "30"))),
        run_backoff_cap=timedelta(seconds=float(settings.option("RUN_BACKOFF_CAP_S", "1800"))),
    )


def limits(settings: Settings) -> Limits:
    return Limits(
        window=timedelta(seconds=float(settings.option("FOLD_WINDOW_S", "60"))),
        fold_after=int(settings.option("FOLD_AFTER", "3")),
        per_hour={
            Channel.EMAIL: int(settings.option("EMAIL_PER_HOUR", "60")),
            Channel.SMS: int(settings.option("SMS_PER_HOUR", "20")),
        },
    )


def make_wire(clock: Callable[[], datetime], on_wired: Callable[[NotifyComponents], None] | None) -> Hook:
    async def wire(rt: Runtime) -> None:
        settings = rt.settings

        def unit_of_work() -> SqlNotifyUnitOfWork:
            return SqlNotifyUnitOfWork(rt.db)

        links = LinkBuilder(
            _key(settings, "unsubscribe"), settings.option("WEB_URL", "http://127.0.0.1:8080").rstrip("/")
        )
        sms = HttpSmsSender(sms_config(settings))
        schedule = CatalogSchedule(settings.service_addresses["catalog"], lambda: rt.service_token)
        buckets = {
            channel: TokenBucket(float(settings.option(f"{channel.value.upper()}_RATE", "20")), 20, time.monotonic)
            for channel in Channel
        }
        replica = settings.option("REPLICA_ID", f"{socket.gethostname()}-{os.getpid()}")
        dispatcher = Dispatcher(
            unit_of_work,
            senders={Channel.EMAIL: SmtpSender(smtp_config(settings)), Channel.SMS: sms},
            renderer=JinjaRenderer(),
            links=links,
            schedule=schedule,
            clock=clock,
            owner=replica,
            limits=limits(settings),
            retry=retry_policy(settings),
            buckets=buckets,
            on_outcome=record_outcome,
            log_error=log_delivery_error,
        )
        loop = DispatchLoop(dispatcher, clock, poll_s=float(settings.option("POLL_S", "1")))
        consumers = EventConsumers(rt.js, unit_of_work, clock, loop.wake)
        servicer = NotifyServicer(
            unit_of_work,
            clock=clock,
            link_key=_key(settings, "unsubscribe"),
            code_key=_key(settings, "codes"),
            on_queued=loop.wake,
        )
        notify_service_pb2_grpc.add_NotifyServiceServicer_to_server(servicer, rt.server)
        digest_interval = float(settings.option("DIGEST_INTERVAL_S", "60"))
        receipt_interval = float(settings.option("RECEIPT_INTERVAL_S", "5"))

        async def start(runtime: Runtime) -> None:
            for consumer in consumers.consumers:
                runtime.spawn(consumer.run(), f"consumer-{consumer.durable}")
            runtime.spawn(loop.run(), "notify-dispatch")
            if digest_interval > 0:
                runtime.spawn(digest_loop(unit_of_work, clock, loop.wake, digest_interval), "notify-digests")
            if receipt_interval > 0:
                runtime.spawn(receipt_loop(dispatcher, sms, clock, receipt_interval), "notify-receipts")

        async def stop(runtime: Runtime) -> None:
            await sms.close()
            await schedule.close()

        rt.on_ready(start)
        rt.on_stop(stop)
        if on_wired is not None:
            on_wired(NotifyComponents(dispatcher, loop, consumers, sms))

    return wire


def definition(
    clock: Callable[[], datetime] = utcnow, on_wired: Callable[[NotifyComponents], None] | None = None
) -> ServiceDefinition:
    """notify; tests pass their own clock and watch what was wired."""
    return ServiceDefinition(name="notify", wire=make_wire(clock, on_wired), metadata=metadata, migrations=MIGRATIONS)


DEFINITION = definition()


def main() -> int:
    return service.main(DEFINITION)


if __name__ == "__main__":
    sys.exit(main())
