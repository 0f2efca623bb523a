"""The lots' log on JetStream, and the announcements watchers follow.

Stream ROOM_EVENTS holds subjects `gavel.room.lot.<lot_id>`: one LotEventBatch per accepted
command, appended with `Nats-Msg-Id = <lot_id>:<command_id>` (scoped by lot, so two lots' client
ids never collide in the stream-wide dedupe window) and `Nats-Expected-Last-Subject-Sequence` =
the stream sequence of the lot's previous batch (0 for the first). Rebuilding a lot reads its
subject with batched direct gets (the stream allows them), no consumer.

Once a batch is stored its owner announces its public projection (codec.public_batch: no secrets,
no command id, actor or fingerprint) on `gavel.room.live.<lot_id>` (core NATS, header
`Gavel-Stream-Sequence`). Watchers do not subscribe to the lot subject itself on
purpose: a core subscriber there also receives appends the stream *refuses* (a stale owner's
batch failing its expected-sequence check), so it would show events that never happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Sequence

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js import JetStreamContext
from nats.js.errors import APIError

from gavel.events.v1 import room_events_pb2 as ev
from gavel_core.errors import FieldViolation, InvalidArgument, Unavailable
from gavel_kit import nats as gavel_nats
from gavel_kit import roomlog
from gavel_kit.logging import get_logger
from gavel_kit.nats import StreamSpec
from gavel_kit.streamread import DirectGetUnavailable, last_per_subject, read_subject
from room.adapters.codec import (
    EVENT_TYPE,
    Rename,
    batch_from_message,
    encode_batch,
    public_batch,
    sale_of,
    watch_response,
)
from room.adapters.metrics import ANNOUNCE_FAILURES, APPEND_SECONDS, APPENDS
from room.app.model import Batch, StoredBatch
from room.app.ports import Appended, AppendUnconfirmed, FeedItem, WrongLastSequence
from room.app.views import Pseudonyms

log = get_logger("room.event_log")

STREAM = roomlog.STREAM
LOT_SUBJECTS = roomlog.SUBJECTS
STREAM_SPEC = StreamSpec(
    name=STREAM,
    subjects=[LOT_SUBJECTS],
    description="Room lots' event logs: one LotEventBatch per accepted command (docs/room-service.md)",
    duplicate_window_s=120,
    extra={"allow_direct": True},
)
STREAM_SEQUENCE = "Gavel-Stream-Sequence"
WRONG_LAST_SEQUENCE = 10071
LOT_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def lot_subject(lot_id: str) -> str:
    return f"gavel.room.lot.{lot_id}"


def live_subject(lot_id: str) -> str:
    return f"gavel.room.live.{lot_id}"


def valid_lot_id(lot_id: str, field: str = "lot_id") -> str:
    """Lot ids become subject tokens: letters, digits, '-' and '_' only (UUIDs and ULIDs fit)."""
    if not LOT_ID.match(lot_id):
        raise InvalidArgument([FieldViolation(field, "1 to 128 letters, digits, '-' or '_'")])
    return lot_id


class JetStreamEventLog:
    def __init__(self, nc: Client, js: JetStreamContext, ack_wait_s: float = 5.0) -> None:
        self._nc = nc
        self._js = js
        self._ack_wait_s = ack_wait_s

    async def append(self, batch: Batch, expected_stream_sequence: int) -> Appended:
        data = encode_batch(batch)
        started = time.perf_counter()
        try:
            ack = await gavel_nats.publish(
                self._js,
                lot_subject(batch.lot_id),
                data,
                msg_id=f"{batch.lot_id}:{batch.command_id}",
                event_type=EVENT_TYPE,
                expected_last_subject_sequence=expected_stream_sequence,
                ack_wait_s=self._ack_wait_s,
            )
        except APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                APPENDS.labels("conflict").inc()
                raise WrongLastSequence(str(exc.description)) from None
            APPENDS.labels("unconfirmed").inc()
            raise AppendUnconfirmed(repr(exc)) from exc
        except (nats.errors.Error, TimeoutError) as exc:
            APPENDS.labels("unconfirmed").inc()
            self._recover_if_missing(exc)
            raise AppendUnconfirmed(repr(exc)) from exc
        APPEND_SECONDS.observe(time.perf_counter() - started)
        if ack.duplicate:  # this command id is already stored: the rebuilt lot has its answer
            APPENDS.labels("unconfirmed").inc()
            raise AppendUnconfirmed("duplicate")
        APPENDS.labels("stored").inc()
        return Appended(ack.seq, data)

    def _recover_if_missing(self, exc: BaseException) -> None:
        if gavel_nats.is_missing(exc):  # the stream is gone (a NATS server restarted empty): ensure it again
            gavel_nats.resources(self._nc).recover(f"{STREAM} missing")

    async def read(self, lot_id: str, after_stream_sequence: int = 0) -> list[StoredBatch]:
        try:
            messages = await read_subject(self._nc, STREAM, lot_subject(lot_id), after_sequence=after_stream_sequence)
        except (nats.errors.Error, TimeoutError, DirectGetUnavailable) as exc:
            self._recover_if_missing(exc)
            raise Unavailable(f"the event log of lot {lot_id!r} cannot be read right now; retry") from exc
        return [
            StoredBatch(batch_from_message(ev.LotEventBatch.FromString(m.data)), m.sequence, m.data) for m in messages
        ]


ANNOUNCE_RETRIES_S = (0.1, 0.5, 2.0)


class NatsAnnouncer:
    """Announces stored batches — only their public projection: core NATS reaches anyone allowed to
    listen, so no secrets, and bidders by their per-sale pseudonym. One that cannot be published is
    tried again in the background (and counted): watchers also find it by their gap and tail
    checks, never only a warning."""

    def __init__(self, nc: Client, pseudonyms: Pseudonyms) -> None:
        self._nc = nc
        self._pseudonyms = pseudonyms
        self._retries: set[asyncio.Task[None]] = set()

    async def announce(self, lot_id: str, stream_sequence: int, encoded: bytes, sale_id: str = "") -> None:
        alias = self._pseudonyms.alias

        def rename(subject: str) -> str:
            return alias(sale_id, subject)

        public = public_batch(encoded, rename)
        if await self._publish(lot_id, stream_sequence, public):
            return
        task = asyncio.get_running_loop().create_task(self._retry(lot_id, stream_sequence, public))
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    async def _publish(self, lot_id: str, stream_sequence: int, encoded: bytes) -> bool:
        try:
            await self._nc.publish(live_subject(lot_id), encoded, headers={STREAM_SEQUENCE: str(stream_sequence)})
        except nats.errors.Error:
            ANNOUNCE_FAILURES.inc()
            return False
        return True

    async def _retry(self, lot_id: str, stream_sequence: int, encoded: bytes) -> None:
        for delay in ANNOUNCE_RETRIES_S:
            await asyncio.sleep(delay)
            if await self._publish(lot_id, stream_sequence, encoded):
                return
        log.error(
            "a batch could not be announced; watchers will read it from the log at their next tail check",
            lot_id=lot_id,
            stream_sequence=stream_sequence,
        )


class _Subscription:
    def __init__(self, subscription: NatsSubscription) -> None:
        self._subscription = subscription

    async def close(self) -> None:
        with contextlib.suppress(nats.errors.Error):
            await self._subscription.unsubscribe()


FINAL_PHASES = ("sold", "unsold")


def feed_item(message: ev.LotEventBatch, stream_sequence: int, rename: Rename | None = None) -> FeedItem:
    final = message.after.phase in FINAL_PHASES
    return FeedItem(message.lot_sequence, stream_sequence, watch_response(message, rename), final)


class NatsLiveFeeds:
    """The watchers' side: announcements (core NATS, already public) and the log (direct gets,
    made public here with the sale's pseudonyms: the lot's first batch names its sale)."""

    def __init__(self, nc: Client, pseudonyms: Pseudonyms) -> None:
        self._nc = nc
        self._pseudonyms = pseudonyms
        self._sales: dict[str, str] = {}

    def _from_log(self, lot_id: str, data: bytes, stream_sequence: int) -> FeedItem:
        message = ev.LotEventBatch.FromString(data)
        sale = sale_of(message)
        if sale is not None:
            self._sales[lot_id] = sale
        sale_id = self._sales.get(lot_id, "")
        alias = self._pseudonyms.alias
        return feed_item(message, stream_sequence, lambda subject: alias(sale_id, subject))

    async def subscribe(self, lot_id: str, deliver: Callable[[FeedItem], None]) -> _Subscription:
        async def on_message(msg: Msg) -> None:
            try:
                sequence = int((msg.headers or {})[STREAM_SEQUENCE])
                deliver(feed_item(ev.LotEventBatch.FromString(msg.data), sequence))
            except Exception:
                log.warning("bad announcement", lot_id=lot_id, exc_info=True)

        return _Subscription(await self._nc.subscribe(live_subject(lot_id), cb=on_message))

    async def history(self, lot_id: str, after_stream_sequence: int) -> Sequence[FeedItem]:
        messages = await read_subject(self._nc, STREAM, lot_subject(lot_id), after_sequence=after_stream_sequence)
        # a feed reads its lot from the first batch (LotConfigured names the sale), then onwards
        return [self._from_log(lot_id, m.data, m.sequence) for m in messages]

    async def tails(self, lot_ids: Sequence[str]) -> dict[str, int]:
        if not lot_ids:
            return {}
        messages = await last_per_subject(self._nc, STREAM, [lot_subject(lot_id) for lot_id in lot_ids])
        prefix = lot_subject("")
        return {m.subject[len(prefix) :]: m.sequence for m in messages}

    def on_loss(self, listener: Callable[[str | None], None]) -> None:
        prefix = live_subject("")

        def lost(subject: str | None) -> None:
            if subject is None:
                listener(None)
            elif subject.startswith(prefix):
                listener(subject[len(prefix) :])

        gavel_nats.on_possible_loss(self._nc, lost)
