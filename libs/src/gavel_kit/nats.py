"""NATS and JetStream helpers: connect, idempotent stream setup that recovers, traced and deduplicated publishing.

What a service needs to exist on the server — its streams, key-value buckets, consumers — is
registered once with the connection's `Resources` and ensured again whenever it may be gone:
after every reconnect (a NATS restart loses memory-stored buckets, and a server restarted with an
empty store loses everything) and whenever an operation finds one missing (`is_missing`). The
connection's state (`on_state`) says whether it is usable: connected and everything ensured.
"""

from __future__ import annotations

import asyncio
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
from nats.js.errors import (
    APIError,
    BucketNotFoundError,
    KeyValueError,
    NoStreamResponseError,
    NotFoundError,
    ServiceUnavailableError,
)
from opentelemetry.trace import SpanKind
from tenacity import AsyncRetrying, stop_after_delay, wait_exponential

from gavel_kit import telemetry
from gavel_kit.logging import get_logger
from gavel_kit.streamread import DirectGetUnavailable

log = get_logger("gavel.nats")

MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
EVENT_TYPE = "Gavel-Event-Type"

SLOW_CONSUMER_LOG_EVERY_S = 10.0
RECONNECT_WAIT_S = 0.5  # between reconnect attempts: bidding resumes soon after NATS answers again
# JetStream API error codes meaning "what you addressed does not exist" (stream, consumer).
STREAM_NOT_FOUND = 10059
CONSUMER_NOT_FOUND = 10014
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


def is_missing(exc: BaseException) -> bool:
    """Whether a NATS error means the stream, bucket or consumer an operation addressed does not
    exist on the server (now): nobody answers its subjects, or the API says not found."""
    if isinstance(exc, NoStreamResponseError | ServiceUnavailableError | DirectGetUnavailable | BucketNotFoundError):
        return True
    if isinstance(exc, KeyValueError):  # a key not found, a wrong revision: the bucket is there
        return False
    return isinstance(exc, APIError) and exc.err_code in (STREAM_NOT_FOUND, CONSUMER_NOT_FOUND)


Ensure = Callable[[], Awaitable[None]]
StateListener = Callable[[bool, str], None]
_FIRST_RETRY_S = 0.1
_MAX_RETRY_S = 2.0


class Resources:
    """What a connection's users need on the server, ensured again whenever it may be gone.

    Each user `add`s a named, idempotent ensure step (create a stream or bucket if missing, bring
    its configuration up to date). `recover` runs every step in the background, retrying with
    backoff until all succeed; it is called after every reconnect and by any operation that found
    something missing (`is_missing`). Steps run in the order added, so a bucket's stream exists
    before a consumer on it. Listeners (`on_state`) hear whether the connection is usable:
    connected and every step done since the last reconnect.
    """

    def __init__(self) -> None:
        self._steps: dict[str, Ensure] = {}
        self._listeners: list[StateListener] = []
        self._recovering: asyncio.Task[None] | None = None
        self._again = False
        self.usable = True
        self.detail = ""
        self.recoveries = 0  # completed recoveries (tests wait on it)
        self._recovered = asyncio.Event()

    def add(self, name: str, ensure: Ensure) -> None:
        """Register (or replace) a step; it is not run now."""
        self._steps[name] = ensure

    def on_state(self, listener: StateListener) -> None:
        self._listeners.append(listener)
        listener(self.usable, self.detail)

    async def ensure_all(self) -> None:
        """Run every step now, raising the first failure."""
        for name, step in list(self._steps.items()):
            try:
                await step()
            except Exception as exc:
                raise RuntimeError(f"could not ensure {name}: {exc!r}") from exc

    def disconnected(self) -> None:
        self._set(False, "NATS disconnected")

    def recover(self, why: str) -> None:
        """Ensure every step again in the background until it works (one run at a time; a call
        during a run makes it run once more)."""
        self._set(False, f"ensuring streams and buckets again ({why})")
        if self._recovering is not None and not self._recovering.done():
            self._again = True
            return
        self._recovered.clear()
        self._recovering = asyncio.get_running_loop().create_task(self._recover(why))

    async def wait_recovered(self) -> None:
        """Until the recovery under way (if any) has succeeded."""
        if self._recovering is not None and not self._recovering.done():
            await self._recovered.wait()

    async def _recover(self, why: str) -> None:
        delay = _FIRST_RETRY_S
        while True:
            self._again = False
            try:
                await self.ensure_all()
            except Exception as exc:
                log.warning("nats resources not ensured yet; retrying", error=str(exc), reason=why)
                self._set(False, str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_RETRY_S)
                continue
            if not self._again:
                break
        self.recoveries += 1
        log.info("nats resources ensured", steps=len(self._steps), reason=why)
        self._set(True, "")
        self._recovered.set()

    def _set(self, usable: bool, detail: str) -> None:
        if (usable, detail) == (self.usable, self.detail):
            return
        self.usable, self.detail = usable, detail
        for listener in list(self._listeners):
            try:
                listener(usable, detail)
            except Exception:
                log.warning("nats state listener failed", exc_info=True)


_resources: weakref.WeakKeyDictionary[Client, Resources] = weakref.WeakKeyDictionary()


def resources(client: Client) -> Resources:
    """The connection's resources (created on first use)."""
    found = _resources.get(client)
    if found is None:
        found = _resources[client] = Resources()
    return found


def on_state(client: Client, listener: StateListener) -> None:
    """Call `listener(usable, detail)` now and whenever the connection becomes usable or stops
    being so (disconnected, or re-ensuring what a reconnect may have lost)."""
    resources(client).on_state(listener)


def servers(url: str) -> list[str]:
    """`GAVEL_NATS_URL` may list several servers of one cluster, comma-separated."""
    return [part.strip() for part in url.split(",") if part.strip()]


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

    def config(self, replicas: int | None = None) -> StreamConfig:
        """The stream's configuration; `replicas` (the deployment's setting) wins over the spec's."""
        return StreamConfig(
            name=self.name,
            description=self.description or None,
            subjects=list(self.subjects),
            storage=StorageType.FILE,
            retention=self.retention,
            num_replicas=replicas or self.replicas,
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
        resources(nc).disconnected()

    async def on_reconnect() -> None:
        log.info("nats reconnected", url=url_for_logs)
        _notify_loss(nc, None)
        resources(nc).recover("reconnected")

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
        servers=servers(url),
        name=name,
        allow_reconnect=True,
        connect_timeout=2,
        reconnect_time_wait=RECONNECT_WAIT_S,  # type: ignore[arg-type]  # used as seconds; typed int
        max_reconnect_attempts=-1,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        error_cb=on_error,
    )


async def ensure_stream(js: JetStreamContext, spec: StreamSpec, replicas: int | None = None) -> None:
    """Create the stream, or bring an existing one's config up to date."""
    config = spec.config(replicas)
    try:
        await js.stream_info(spec.name)
    except NotFoundError:
        await js.add_stream(config)
        log.info("stream created", stream=spec.name, subjects=list(spec.subjects))
    else:
        await js.update_stream(config)


async def ensure_streams(
    js: JetStreamContext, specs: Sequence[StreamSpec], replicas: int | None = None, client: Client | None = None
) -> None:
    """Create each stream, or bring an existing one's config up to date; with `client`, also
    register them with its resources, so they are ensured again after every reconnect."""
    for spec in specs:
        await ensure_stream(js, spec, replicas)
        if client is not None:
            resources(client).add(f"stream {spec.name}", _stream_step(js, spec, replicas))


def _stream_step(js: JetStreamContext, spec: StreamSpec, replicas: int | None) -> Ensure:
    async def step() -> None:
        await ensure_stream(js, spec, replicas)

    return step


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
