"""notify's background work, per replica: one durable consumer per source (notify.adapters.events),
the dispatcher loop, the digest loop and the SMS receipt poller. All of them are safe to run on
any number of replicas at once (dedupe keys, row leases, idempotent digests)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from prometheus_client import Counter, Histogram

from gavel_kit.consumers import DurableConsumer
from gavel_kit.logging import get_logger
from notify.adapters.events import SOURCES, Source, decode_all
from notify.adapters.unit_of_work import SqlNotifyUnitOfWork
from notify.app import events as app_events
from notify.app.dispatch import Dispatcher, enqueue_digests
from notify.app.ports import ReceiptSource

log = get_logger("notify.workers")

EVENTS = Counter("gavel_notify_events_total", "Events notify consumed", ["consumer"])
RECORDED = Counter("gavel_notify_recorded_total", "Deliveries recorded from events", ["consumer"])
OUTCOMES = Counter("gavel_notify_deliveries_total", "What became of due deliveries", ["channel", "kind", "outcome"])
BATCH_SECONDS = Histogram("gavel_notify_event_batch_seconds", "Time to record one batch of events", ["consumer"])


def record_outcome(channel: object, kind: str, outcome: str) -> None:
    OUTCOMES.labels(getattr(channel, "value", str(channel)), kind, outcome).inc()


def log_delivery_error(delivery_id: str, error: str) -> None:
    log.warning("delivery postponed after an error", delivery_id=delivery_id, error=error)


class EventConsumers:
    """A DurableConsumer per source; a batch's facts are committed before its messages are acked."""

    def __init__(
        self,
        js: JetStreamContext,
        uow_factory: Callable[[], SqlNotifyUnitOfWork],
        clock: Callable[[], datetime],
        on_recorded: Callable[[], None],
        sources: Sequence[Source] = SOURCES,
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._on_recorded = on_recorded
        self.consumers = [
            DurableConsumer(js, source.stream, source.durable, source.filter_subject, self._handler(source), batch=100)
            for source in sources
        ]

    def _handler(self, source: Source) -> Callable[[Sequence[Msg]], asyncio.Future[Sequence[Msg]]]:
        async def handle(messages: Sequence[Msg]) -> Sequence[Msg]:
            with BATCH_SECONDS.labels(source.durable).time():
                found = list(decode_all(source, ((m.subject, m.data) for m in messages)))
                async with self._uow() as uow:
                    recorded = await app_events.apply(uow, found, self._clock())
            EVENTS.labels(source.durable).inc(len(messages))
            if recorded:
                RECORDED.labels(source.durable).inc(recorded)
                self._on_recorded()
            return []

        return handle  # type: ignore[return-value]


class DispatchLoop:
    """Runs the dispatcher whenever something is due: woken by new deliveries, else at the next
    due time (at most `poll_s` apart, which is also how a second replica's work is noticed)."""

    def __init__(self, dispatcher: Dispatcher, clock: Callable[[], datetime], poll_s: float = 1.0) -> None:
        self._dispatcher = dispatcher
        self._clock = clock
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        self.rounds = 0
        self.round_done = asyncio.Condition()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                handled = await self._dispatcher.run_once()
            except Exception:
                log.exception("dispatch round failed")
                handled = 0
            async with self.round_done:
                self.rounds += 1
                self.round_done.notify_all()
            if handled:
                continue
            delay = self._poll_s
            with contextlib.suppress(Exception):
                due = await self._dispatcher.next_due()
                if due is not None:
                    delay = min(delay, max((due - self._clock()).total_seconds(), 0.01))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)


async def digest_loop(
    uow_factory: Callable[[], SqlNotifyUnitOfWork],
    clock: Callable[[], datetime],
    wake: Callable[[], None],
    interval_s: float,
) -> None:
    while True:
        try:
            if await enqueue_digests(uow_factory, clock()):
                wake()
        except Exception:
            log.exception("digest round failed")
        await asyncio.sleep(interval_s)


async def receipt_loop(
    dispatcher: Dispatcher, receipts: ReceiptSource, clock: Callable[[], datetime], interval_s: float
) -> None:
    while True:
        try:
            await dispatcher.poll_receipts(receipts, clock() - timedelta(days=1))
        except Exception:
            log.exception("receipt round failed")
        await asyncio.sleep(interval_s)
