"""NATS and JetStream helpers: connect, idempotent stream setup, traced and deduplicated publishing."""

from __future__ import annotations

import time
import urllib.parse
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import PubAck, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from opentelemetry.trace import SpanKind
from tenacity import AsyncRetrying, stop_after_delay, wait_exponential

from gavel_kit import telemetry
from gavel_kit.logging import get_logger

log = get_logger("gavel.nats")

MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
EVENT_TYPE = "Gavel-Event-Type"

SLOW_CONSUMER_LOG_EVERY_S = 10.0
LossListener = Callable[[str | None], None]
_loss_listeners: weakref.WeakKeyDictionary[Client, list[LossListener]] = weakref.WeakKeyDictionary()


def on_possible_loss(client: Client, listener: LossListener) -> None:
    """Call `listener(subject)` whenever core NATS messages to `client` may have been dropped:
    with the subject of a subscription that overflowed (a slow consumer), or with None after a
    reconnect (whatever was in flight meanwhile is gone). Core NATS is at most once; this is how a
    reader that needs every message knows when to catch up from JetStream instead of polling."""
    _loss_listeners.setdefault(client, []).append(listener)


def _notify_loss(client: Client, subject: str | None) -> None:
    for listener in list(_loss_listeners.get(client, ())):
        try:
            listener(subject)
        except Exception:
            log.warning("loss listener failed", exc_info=True)


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A JetStream stream a service owns; created or updated at start, so setup is idempotent."""

    name: str
    subjects: Sequence[str]
    description: str = ""
    max_age_s: float = 0  # 0: keep forever
    duplicate_window_s: float = 120
    replicas: int = 1
    retention: RetentionPolicy = RetentionPolicy.LIMITS
    extra: Mapping[str, Any] = field(default_factory=dict)

    def config(self) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            description=self.description or None,
            subjects=list(self.subjects),
            storage=StorageType.FILE,
            retention=self.retention,
            num_replicas=self.replicas,
            max_age=self.max_age_s or None,
            duplicate_window=self.duplicate_window_s,
            **dict(self.extra),
        )


def client_options(credentials: Path | None) -> dict[str, Any]:
    """What nats-py's connect needs to log in as the user of a credentials file
    (`gavel_kit.natsserver.write_credentials`): user, password and the user's own inbox prefix."""
    if credentials is None:
        return {}
    from gavel_kit.natsperms import inbox_prefix
    from gavel_kit.natsserver import read_credentials

    user, password = read_credentials(credentials)
    return {"user": user, "password": password, "inbox_prefix": inbox_prefix(user)}


def redacted(url: str) -> str:
    """The URL without a password, for logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


async def connect(
    url: str,
    name: str,
    client: Client | None = None,
    first_connect_timeout_s: float = 60,
    credentials: Path | None = None,
) -> Client:
    """Connect (`client` if given, else a new one), retrying the first connection too; reconnect forever.
    With `credentials`, log in as that file's user."""
    nc = client or Client()
    options = client_options(credentials)
    url_for_logs = redacted(url)

    async def on_disconnect() -> None:
        log.warning("nats disconnected", url=url_for_logs)

    async def on_reconnect() -> None:
        log.info("nats reconnected", url=url_for_logs)
        _notify_loss(nc, None)

    dropped = {"since_log": 0, "logged_at": 0.0}

    async def on_error(exc: Exception) -> None:
        if isinstance(exc, nats.errors.SlowConsumerError):
            _notify_loss(nc, exc.subject)
            dropped["since_log"] += 1  # one error per dropped message: log a count now and then
            if time.monotonic() - dropped["logged_at"] >= SLOW_CONSUMER_LOG_EVERY_S:
                log.warning("nats slow consumer: messages dropped", dropped=dropped["since_log"], subject=exc.subject)
                dropped.update(since_log=0, logged_at=time.monotonic())
            return
        log.warning("nats error", error=str(exc))

    retry = AsyncRetrying(
        stop=stop_after_delay(first_connect_timeout_s), wait=wait_exponential(multiplier=0.2, max=2), reraise=True
    )
    async for attempt in retry:
        with attempt:
            await _connect_once(nc, url, name, options, on_disconnect, on_reconnect, on_error)
    return nc


async def _connect_once(
    client: Client, url: str, name: str, options: Mapping[str, Any], *callbacks: Callable[..., Awaitable[None]]
) -> None:
    on_disconnect, on_reconnect, on_error = callbacks
    await client.connect(
        **options,
        servers=[url],
        name=name,
        allow_reconnect=True,
        connect_timeout=2,
        reconnect_time_wait=1,
        max_reconnect_attempts=-1,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        error_cb=on_error,
    )


async def ensure_streams(js: JetStreamContext, specs: Sequence[StreamSpec]) -> None:
    """Create each stream, or bring an existing one's config up to date."""
    for spec in specs:
        config = spec.config()
        try:
            await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(config)
            log.info("stream created", stream=spec.name, subjects=list(spec.subjects))
        else:
            await js.update_stream(config)


def headers_for(
    msg_id: str | None, event_type: str | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    headers: dict[str, str] = dict(extra or {})
    if msg_id:
        headers[MSG_ID] = msg_id
    if event_type:
        headers[EVENT_TYPE] = event_type
    telemetry.inject_headers(headers)
    return headers


async def publish(
    js: JetStreamContext,
    subject: str,
    payload: bytes,
    *,
    msg_id: str,
    event_type: str | None = None,
    expected_last_subject_sequence: int | None = None,
    headers: Mapping[str, str] | None = None,
    ack_wait_s: float = 5.0,
) -> PubAck:
    """Publish to JetStream under a PRODUCER span, with `Nats-Msg-Id` dedupe and `traceparent`.

    With `expected_last_subject_sequence`, the server refuses the append unless the subject's last
    message has exactly that sequence (0: the subject must be empty) — the one-writer-per-lot guard.
    """
    extra = dict(headers or {})
    if expected_last_subject_sequence is not None:
        extra[EXPECTED_LAST_SUBJECT_SEQUENCE] = str(expected_last_subject_sequence)
    if not telemetry.tracing_enabled():  # no span to record: skip building one (the room's hot path)
        return await js.publish(subject, payload, timeout=ack_wait_s, headers=headers_for(msg_id, event_type, extra))
    with telemetry.tracer("gavel.nats").start_as_current_span(f"{subject} publish", kind=SpanKind.PRODUCER) as span:
        span.set_attribute("messaging.system", "nats")
        span.set_attribute("messaging.destination.name", subject)
        span.set_attribute("messaging.message.id", msg_id)
        return await js.publish(subject, payload, timeout=ack_wait_s, headers=headers_for(msg_id, event_type, extra))


def traced_handler(name: str, handler: Callable[[Msg], Awaitable[None]]) -> Callable[[Msg], Awaitable[None]]:
    """Wrap a subscription callback so it runs under a CONSUMER span linked to the publisher's trace."""

    async def run(msg: Msg) -> None:
        with (
            telemetry.extracted_context(msg.headers),
            telemetry.tracer("gavel.nats").start_as_current_span(f"{msg.subject} {name}", kind=SpanKind.CONSUMER),
        ):
            await handler(msg)

    return run
