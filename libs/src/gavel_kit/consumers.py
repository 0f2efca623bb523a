"""JetStream consumers every service uses: a durable pull consumer with per-message retries, and
creating a stream another service owns when it is missing (never changing its configuration)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError

from gavel_kit.logging import get_logger
from gavel_kit.nats import StreamSpec

log = get_logger("gavel.consumers")

RETRY_DELAY_S = 1.0
RESUBSCRIBE_DELAY_S = 2.0

Handle = Callable[[Sequence[Msg]], Awaitable[Sequence[Msg]]]


class DurableConsumer:
    """A durable pull consumer: fetch a batch, handle it, ack what worked, redeliver the rest later.

    `handle` returns the messages to try again (negatively acknowledged with a delay); an
    exception retries the whole batch. A missing stream (the catalog not started yet) is waited for.

    `ack_all` (for handlers that never ask for single retries, e.g. the projections) creates the
    consumer with AckPolicy.ALL and acknowledges a handled batch with one ack of its last message
    instead of one per message. `linger_s` waits that long after a batch smaller than `batch`
    before fetching again, so a busy stream is handled in fewer, larger batches (fewer
    transactions) at the cost of that much delay.
    """

    def __init__(
        self,
        js: JetStreamContext,
        stream: str,
        durable: str,
        filter_subject: str,
        handle: Handle,
        *,
        batch: int = 100,
        ack_wait_s: float = 30,
        ack_all: bool = False,
        linger_s: float = 0.0,
    ) -> None:
        self._js = js
        self.stream = stream
        self.durable = durable
        self._filter = filter_subject
        self._handle = handle
        self._batch = batch
        self._ack_wait_s = ack_wait_s
        self._ack_all = ack_all
        self._linger_s = linger_s
        self._acks_all = False  # what the consumer on the server does (it may predate ack_all)

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.ALL if self._ack_all else AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=self._filter,
            ack_wait=self._ack_wait_s,
            max_ack_pending=10_000,
        )
        try:
            info = await self._js.consumer_info(self.stream, self.durable)
        except NotFoundError:
            info = await self._js.add_consumer(self.stream, config)
        self._acks_all = info.config.ack_policy == AckPolicy.ALL
        return await self._js.pull_subscribe_bind(durable=self.durable, stream=self.stream)

    async def run(self) -> None:
        while True:
            try:
                subscription = await self._subscribe()
            except Exception as exc:
                log.info("consumer waiting for its stream", consumer=self.durable, stream=self.stream, error=repr(exc))
                await asyncio.sleep(RESUBSCRIBE_DELAY_S)
                continue
            try:
                await self._consume(subscription)
            except Exception:  # a bug in one batch's handling must not stop the consumer for good
                log.exception("consumer failed; resubscribing", consumer=self.durable)
            finally:  # also on cancellation: an abandoned pull subscription would stall the NATS drain
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
            await asyncio.sleep(RESUBSCRIBE_DELAY_S)

    async def _consume(self, subscription: JetStreamContext.PullSubscription) -> None:
        while True:
            try:
                messages = await subscription.fetch(self._batch, timeout=1.0)
            except TimeoutError:  # nothing new within the poll interval
                _raise_if_cancelled()
                continue
            except Exception as exc:
                log.warning("consumer fetch failed; resubscribing", consumer=self.durable, error=repr(exc))
                return
            if not messages:  # nats-py may return an empty batch (e.g. only status messages arrived)
                continue
            try:
                retry = set(map(id, await self._handle(messages)))
            except Exception:
                log.exception("consumer batch failed; redelivering", consumer=self.durable)
                retry = set(map(id, messages))
            await self._acknowledge(messages, retry)
            if self._linger_s and len(messages) < self._batch:
                await asyncio.sleep(self._linger_s)

    async def _acknowledge(self, messages: Sequence[Msg], retry: set[int]) -> None:
        if not messages:
            return
        try:
            if self._acks_all:
                if not retry:
                    await messages[-1].ack()  # acknowledges every earlier message of the consumer too
                    return
                retry = set(map(id, messages))  # a later ack would settle the earlier retries: redo all
            for message in messages:
                if id(message) in retry:
                    await message.nak(delay=RETRY_DELAY_S)
                else:
                    await message.ack()
        except nats.errors.Error:
            log.warning("could not acknowledge", consumer=self.durable)


def _raise_if_cancelled() -> None:
    """asyncio.wait_for (inside nats-py's fetch) can turn a cancellation into a TimeoutError; a loop
    that retries on timeouts would then never stop. The task still knows it was asked to stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def ensure_stream_exists(js: JetStreamContext, spec: StreamSpec) -> None:
    """Create a stream another service owns if it is missing; never change its configuration."""
    try:
        await js.stream_info(spec.name)
    except NotFoundError:
        config: StreamConfig = spec.config()
        try:
            await js.add_stream(config)
            log.info("stream created", stream=spec.name)
        except Exception:  # created concurrently by its owner or another replica
            await js.stream_info(spec.name)


# -- per-process followers --------------------------------------------------------------------------

Apply = Callable[[Msg], None]
FOLLOWER_RETRY_S = 5.0
CATCH_UP_POLL_S = 0.02


class StreamFollower:
    """Every process's own reader of a subject filter, from the start of the stream (an ordered
    consumer: no durable state, every process sees every event), for books a process keeps in
    memory (bans, registrations, staff).

    Fail closed: `caught_up` is False until the follower has applied everything the stream held
    when it started (so a restarted process never answers from half a book), and `on_ready(met,
    detail)` says so (wire it to `rt.conditions.set`). A message `apply` cannot read (it raises)
    is never skipped: the follower stops there with an alert (error log with the subject and
    sequence, `on_ready(False, …)`, `on_stopped`) and retries that very message every
    FOLLOWER_RETRY_S — deleting or fixing it in the stream lets it go on.
    """

    def __init__(
        self,
        js: JetStreamContext,
        name: str,
        subject: str,
        apply: Apply,
        *,
        on_ready: Callable[[bool, str], None] = lambda met, detail: None,
        on_stopped: Callable[[], None] = lambda: None,
        deliver_last_per_subject: bool = False,
        retry_s: float = FOLLOWER_RETRY_S,
    ) -> None:
        self._js = js
        self.name = name
        self._subject = subject
        self._apply = apply
        self._on_ready = on_ready
        self._on_stopped = on_stopped
        self._last_per_subject = deliver_last_per_subject
        self._retry_s = retry_s
        self.caught_up = False
        self.stopped_at: int | None = None  # the stream sequence it could not read
        self.last_sequence = 0
        self.applied = 0
        self._subscription: Any = None
        self._handled = 0
        self._again = False
        self._resubscribe: asyncio.Event | None = None

    async def run(self) -> None:
        """Follow for the life of the process (cancel to stop)."""
        self._resubscribe = asyncio.Event()
        self._on_ready(False, "catching up")
        start: int | None = None
        while True:
            try:
                await self._subscribe(start)
                await self._catch_up()
                await self._resubscribe.wait()
            except asyncio.CancelledError:
                await self._unsubscribe()
                raise
            except Exception as exc:
                log.warning("follower failed; retrying", follower=self.name, error=repr(exc))
            await self._unsubscribe()
            self._resubscribe.clear()
            start = self.stopped_at or (self.last_sequence + 1 if self.last_sequence else None)
            if self._again:  # a reconnect: follow again at once from the event after the last one
                self._again = False
            else:
                await asyncio.sleep(self._retry_s)

    async def follow_again(self) -> None:
        """After a reconnect (a restarted server has forgotten ordered consumers): resubscribe from
        the event after the last one applied. Register it with `gavel_kit.nats.resources(nc).add`."""
        if self._resubscribe is not None and self.stopped_at is None:
            self._again = True
            self._resubscribe.set()

    async def _subscribe(self, start: int | None) -> None:
        self.stopped_at = None
        self._handled = 0  # messages of this subscription handled (its consumer sequence)
        if start is not None:
            policy, extra = DeliverPolicy.BY_START_SEQUENCE, {"opt_start_seq": start}
        elif self._last_per_subject:
            policy, extra = DeliverPolicy.LAST_PER_SUBJECT, {}
        else:
            policy, extra = DeliverPolicy.ALL, {}
        config = ConsumerConfig(deliver_policy=policy, **extra)  # type: ignore[arg-type]
        self._subscription = await self._js.subscribe(
            self._subject, ordered_consumer=True, config=config, cb=self._on_message
        )

    async def _unsubscribe(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _catch_up(self) -> None:
        while self.stopped_at is None:
            info = await self._subscription.consumer_info()
            delivered = info.delivered.consumer_seq if info.delivered is not None else 0
            if info.num_pending == 0 and self._handled >= (delivered or 0):
                if not self.caught_up:
                    log.info("follower caught up", follower=self.name, events=self.applied)
                self.caught_up = True
                self._on_ready(True, "")
                return
            await asyncio.sleep(CATCH_UP_POLL_S)

    async def _on_message(self, message: Msg) -> None:
        if self.stopped_at is not None:
            return  # already stopped: what follows the unreadable message waits for it
        sequence = message.metadata.sequence.stream
        try:
            self._apply(message)
        except Exception:
            self.stopped_at = sequence
            self.caught_up = False
            log.error(
                "follower stopped at a message it cannot read; fix or delete it in the stream",
                follower=self.name,
                subject=message.subject,
                stream_sequence=sequence,
                exc_info=True,
            )
            self._on_ready(False, f"stopped at unreadable message {sequence} ({message.subject})")
            self._on_stopped()
            if self._resubscribe is not None:
                self._resubscribe.set()
            return
        self.last_sequence = sequence
        self.applied += 1
        self._handled += 1
