"""What the room reads from JetStream besides its lots' logs (the consumer machinery is gavel_kit.consumers).

Durable consumers (shared by the replicas: each message is handled by one of them):
- `room-lot-terms` on CATALOG, `gavel.catalog.lot_scheduled.>`: store the lot's terms (room_lots)
  and have the lot's owner start its log with LotConfigured.
- `room-lot-starting` on CATALOG, `gavel.catalog.lot_starting.>`: have the owner open the lot
  (crier lots are opened by their crier instead).
- `room-projections` on ROOM_EVENTS, `gavel.room.lot.>`: the SQL projections and the catalog-close
  queue (room.adapters.projections).

Per-replica followers (ordered consumers, no durable state: every replica needs every event):
- the payment service's bans and bid limits, `gavel.payment.bidder.>` on PAYMENT_EVENTS, into the
  replica's EligibilityBook, read from the start when the replica starts; the replica reports
  SERVING only once it has caught up, so a restarted replica never admits a banned bidder. After
  every reconnect it follows again from the event after the last one applied (a restarted NATS
  server has forgotten the ordered consumer; the client would notice only after missed heartbeats).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

from google.protobuf.message import Message
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from gavel.catalog.v1 import resources_pb2 as res
from gavel.events.v1 import account_events_pb2 as aev
from gavel.events.v1 import catalog_events_pb2 as cev
from gavel.events.v1 import eligibility_events_pb2 as eev
from gavel_core.auth import Principal
from gavel_core.errors import GavelError, NotFound
from gavel_kit import nats as gavel_nats
from gavel_kit import roomlog
from gavel_kit.consumers import Handle, ensure_stream_exists
from gavel_kit.logging import get_logger
from gavel_kit.nats import StreamSpec
from room.adapters.codec import batch_from_message, is_live_format
from room.adapters.event_log import LOT_ID
from room.adapters.projections import Projector
from room.adapters.repositories import ScheduledLots
from room.app.eligibility import BidderBanned, BidderUnbanned, BidLimitSet, EligibilityBook, EligibilityEvent
from room.app.revocations import RevocationBook

log = get_logger("room.consumers")

CATALOG_STREAM = "CATALOG"
LOT_SCHEDULED = "gavel.catalog.lot_scheduled.>"
LOT_STARTING = "gavel.catalog.lot_starting.>"
PAYMENT_STREAM = "PAYMENT_EVENTS"
PAYMENT_SPEC = StreamSpec(
    name=PAYMENT_STREAM,
    subjects=["gavel.payment.>"],
    description="Payment events (owned by the payment service; created by the room if missing)",
)
BIDDER_EVENTS = "gavel.payment.bidder.>"
GATEWAY_SPEC = StreamSpec(
    name="GATEWAY_EVENTS",
    subjects=["gavel.gateway.>"],
    description="The gateway's account events (owned by the gateway; created by the room if missing)",
    max_age_s=7 * 24 * 3600,
)
REVOCATIONS = "gavel.gateway.account.revoked.>"
Identity = Callable[[], Principal]  # the room's own service principal, with a current credential

# -- handlers -------------------------------------------------------------------------------------------

RouteCall = Callable[[str, str, Message, Principal], Awaitable[Message]]


def lot_terms_handler(scheduled: ScheduledLots, route: RouteCall, identity: Identity) -> Handle:
    """room-lot-terms: keep the terms of a fetched run of lots in one transaction, then have each
    lot's owner write its first batch (the owners work on them at the same time)."""

    async def configure(message: Msg, lot: res.Lot) -> Msg | None:
        try:
            await route("ConfigureLot", lot.id, lot, identity())
        except GavelError as exc:
            log.warning("lot could not be configured", lot_id=lot.id, error=exc.message)
        except Exception:
            log.warning("configuring a scheduled lot failed; will retry", lot_id=lot.id, exc_info=True)
            return message
        return None

    async def handle(messages: Sequence[Msg]) -> Sequence[Msg]:
        scheduled_lots: dict[str, tuple[Msg, res.Lot]] = {}  # a lot scheduled twice: its latest terms
        for message in messages:
            event = cev.LotScheduled.FromString(message.data)
            lot = event.lot if event.HasField("lot") else res.Lot()
            if not is_live_format(lot.format):
                continue  # tenders run in the tender service
            if not lot.id:
                lot.id = event.lot_id
            if not LOT_ID.match(lot.id):
                log.warning("lot id unusable as a subject token; lot ignored", lot_id=lot.id)
                continue
            scheduled_lots[lot.id] = (message, lot)
        if not scheduled_lots:
            return []
        try:
            await scheduled.store([lot for _, lot in scheduled_lots.values()])
        except Exception:
            log.warning("storing scheduled lots failed; will retry", lots=len(scheduled_lots), exc_info=True)
            return list(messages)
        retry = await asyncio.gather(*(configure(message, lot) for message, lot in scheduled_lots.values()))
        return [message for message in retry if message is not None]

    return handle


def lot_starting_handler(route: RouteCall, identity: Identity) -> Handle:
    """room-lot-starting: the catalog started a lot; its owner opens it."""

    async def handle(messages: Sequence[Msg]) -> Sequence[Msg]:
        retry: list[Msg] = []
        for message in messages:
            event = cev.LotStarting.FromString(message.data)
            if not is_live_format(event.format):
                continue
            try:
                await route("StartLot", event.lot_id, event, identity())
            except NotFound:
                retry.append(message)  # its LotScheduled has not been handled yet
            except GavelError as exc:
                log.warning("lot could not be opened", lot_id=event.lot_id, error=exc.message)
            except Exception:
                log.warning("opening a started lot failed; will retry", lot_id=event.lot_id, exc_info=True)
                retry.append(message)
        return retry

    return handle


def projections_handler(projector: Projector) -> Handle:
    async def handle(messages: Sequence[Msg]) -> Sequence[Msg]:
        batches = [
            (message.metadata.sequence.stream, batch_from_message(batch))
            for message in messages
            for batch in roomlog.lot_batches(message.data)
        ]
        await projector.project(batches)
        return ()

    return handle


# -- the payment service's eligibility events ------------------------------------------------------------


def eligibility_event(subject: str, data: bytes) -> EligibilityEvent | None:
    """gavel.payment.bidder.<kind>.<bidder_id> → the event (None: a kind the room does not use)."""
    parts = subject.split(".")
    kind = parts[3] if len(parts) >= 5 else ""
    if kind == "banned":
        banned = eev.BidderBanned.FromString(data)
        return BidderBanned(banned.bidder_id, banned.sale_id)
    if kind == "unbanned":
        unbanned = eev.BidderUnbanned.FromString(data)
        return BidderUnbanned(unbanned.bidder_id, unbanned.sale_id)
    if kind == "bid_limit_set":
        limit = eev.BidLimitSet.FromString(data)
        if limit.HasField("limit"):
            return BidLimitSet(limit.bidder_id, limit.sale_id, limit.limit.amount_minor, limit.limit.currency)
        return BidLimitSet(limit.bidder_id, limit.sale_id, None)
    return None


class EligibilityFollower:
    """Every replica's own reader of the bidder events (an ordered consumer from the first message)."""

    def __init__(self, nc: Client, js: JetStreamContext, book: EligibilityBook) -> None:
        self._nc = nc
        self._js = js
        self._book = book
        self._last_sequence = 0
        self._subscription: JetStreamContext.PushSubscription | None = None
        self.applied = 0
        self.resubscribed = 0

    async def start(self, catch_up_timeout_s: float = 30.0) -> None:
        await ensure_stream_exists(self._js, PAYMENT_SPEC)
        subscription = self._subscription = await self._subscribe()
        gavel_nats.resources(self._nc).add("eligibility follower", self._follow_again)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + catch_up_timeout_s
        while loop.time() < deadline:
            info = await subscription.consumer_info()
            delivered = info.delivered.stream_seq if info.delivered is not None else 0
            if info.num_pending == 0 and self._last_sequence >= (delivered or 0):
                log.info("eligibility caught up", events=self.applied)
                return
            await asyncio.sleep(0.02)
        log.warning("eligibility events not caught up in time; serving with what was read", events=self.applied)

    async def _subscribe(self) -> JetStreamContext.PushSubscription:
        if not self._last_sequence:
            return await self._js.subscribe(
                BIDDER_EVENTS, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL, cb=self._on_message
            )
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self._last_sequence + 1)
        return await self._js.subscribe(BIDDER_EVENTS, ordered_consumer=True, config=config, cb=self._on_message)

    async def _follow_again(self) -> None:
        """A reconnect step: a new ordered consumer from the event after the last one applied."""
        await ensure_stream_exists(self._js, PAYMENT_SPEC)
        previous, self._subscription = self._subscription, await self._subscribe()
        self.resubscribed += 1
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous.unsubscribe()

    async def _on_message(self, message: Msg) -> None:
        sequence = message.metadata.sequence.stream
        if sequence <= self._last_sequence:  # the old and the new consumer overlapped
            return
        try:
            event = eligibility_event(message.subject, message.data)
            if event is not None:
                self._book.apply(event)
                self.applied += 1
        except Exception:
            log.warning("bad eligibility event", subject=message.subject, exc_info=True)
        self._last_sequence = sequence


class RevocationFollower:
    """Every replica's own reader of the gateway's AccountRevoked events, from the first one kept
    (the stream keeps a week; tokens live 5 minutes), into the replica's RevocationBook."""

    def __init__(self, js: JetStreamContext, book: RevocationBook) -> None:
        self._js = js
        self._book = book
        self.applied = 0

    async def start(self, catch_up_timeout_s: float = 30.0) -> None:
        await ensure_stream_exists(self._js, GATEWAY_SPEC)
        subscription = await self._js.subscribe(
            REVOCATIONS,
            stream=GATEWAY_SPEC.name,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
            cb=self._on_message,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + catch_up_timeout_s
        while loop.time() < deadline:
            info = await subscription.consumer_info()
            if info.num_pending == 0:
                log.info("account revocations caught up", events=self.applied)
                return
            await asyncio.sleep(0.02)
        log.warning("account revocations not caught up in time; serving with what was read", events=self.applied)

    async def _on_message(self, message: Msg) -> None:
        try:
            event = aev.AccountRevoked.FromString(message.data)
            if event.user_id:
                at = event.revoked_at.seconds + event.revoked_at.nanos / 1e9
                self._book.revoke(event.user_id, at)
                self.applied += 1
        except Exception:
            log.warning("bad account revocation", subject=message.subject, exc_info=True)
