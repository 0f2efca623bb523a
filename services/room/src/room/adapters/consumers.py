"""What the room reads from JetStream besides its lots' logs (the consumer machinery is gavel_kit.consumers).

Durable consumers (shared by the replicas: each message is handled by one of them):
- `room-lot-starting` on CATALOG, `gavel.catalog.lot_starting.>`: the catalog published and
  started a lot; its owner starts the lot's log with the published lot (LotConfigured, byte for
  byte) and opens it (crier lots are opened by their crier). The only way a lot reaches the room
  besides the catalog's GetLot answer that it is live (room.adapters.lookups.StartedLots).
- `room-lot-withdrawn` on CATALOG, `gavel.catalog.lot_withdrawn.>`: a published lot was withdrawn
  or its sale cancelled before it started; its owner ends it (Withdrawn + LotUnsold WITHDRAWN), so
  a watcher waiting for it is told.
- `room-projections` on ROOM_EVENTS, `gavel.room.lot.>`: the SQL projections and the catalog-close
  queue (room.adapters.projections).

Per-replica followers (gavel_kit.consumers.StreamFollower: ordered consumers from the start of the
stream, no durable state — every replica needs every event; fail closed: until caught up the
replica is not ready and refuses bid-like commands; an unreadable event stops the follower there
with an alert instead of being skipped; after every reconnect each follows again from the event
after the last one applied — a restarted NATS server has forgotten ordered consumers):
- `eligibility`: the payment service's bans and bid limits, `gavel.payment.bidder.>` on PAYMENT_EVENTS;
- `registrations`: `gavel.catalog.registration_decided.>` on CATALOG;
- `staff`: `gavel.catalog.sale_staff_changed.>` on CATALOG (last per subject: each carries the whole staff).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from google.protobuf.message import Message
from nats.aio.msg import Msg

from gavel.catalog.v1 import resources_pb2 as res
from gavel.events.v1 import account_events_pb2 as aev
from gavel.events.v1 import catalog_events_pb2 as cev
from gavel.events.v1 import eligibility_events_pb2 as eev
from gavel_core.auth import Principal, Role
from gavel_core.errors import GavelError
from gavel_kit import roomlog
from gavel_kit.consumers import Handle
from gavel_kit.logging import get_logger
from gavel_kit.nats import StreamSpec
from room.adapters.codec import batch_from_message, is_live_format
from room.adapters.event_log import LOT_ID
from room.adapters.projections import Projector
from room.app.books import RegistrationBook, StaffBook
from room.app.eligibility import BidderBanned, BidderUnbanned, BidLimitSet, EligibilityBook, EligibilityEvent
from room.app.revocations import RevocationBook

log = get_logger("room.consumers")

CATALOG_STREAM = "CATALOG"
LOT_STARTING = "gavel.catalog.lot_starting.>"
LOT_WITHDRAWN = "gavel.catalog.lot_withdrawn.>"
REGISTRATION_DECIDED = "gavel.catalog.registration_decided.>"
STAFF_CHANGED = "gavel.catalog.sale_staff_changed.>"
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
ROOM_SERVICE = Principal(subject="svc:room", roles=frozenset({Role.SERVICE}), display_name="room")
STAFF_ROLES = {res.STAFF_ROLE_CRIER: "crier", res.STAFF_ROLE_CLERK: "clerk", res.STAFF_ROLE_SALE_ADMIN: "sale_admin"}

# -- handlers -------------------------------------------------------------------------------------------

RouteCall = Callable[[str, str, Message, Principal], Awaitable[Message]]


def _routable(lot_id: str, lot: res.Lot) -> bool:
    if not is_live_format(lot.format):
        return False  # tenders run in the tender service
    if not LOT_ID.match(lot_id) or lot.id != lot_id:
        log.error("a catalog lot statement the room cannot use; lot ignored", lot_id=lot_id)
        return False
    return True


def lot_statement_handler(kind: type[cev.LotStarting] | type[cev.LotWithdrawn], rpc: str, route: RouteCall) -> Handle:
    """room-lot-starting / room-lot-withdrawn: the lot's owner acts on the catalog's statement
    (the owners work on a fetched run of lots at the same time)."""

    async def one(message: Msg) -> Msg | None:
        event = kind.FromString(message.data)
        if not event.HasField("lot") or not _routable(event.lot_id, event.lot):
            return None
        try:
            await route(rpc, event.lot_id, event, ROOM_SERVICE)
        except GavelError as exc:
            log.error("the room could not act on the catalog's lot statement", lot_id=event.lot_id, error=exc.message)
        except Exception:
            log.warning("acting on a catalog lot statement failed; will retry", lot_id=event.lot_id, exc_info=True)
            return message
        return None

    async def handle(messages: Sequence[Msg]) -> Sequence[Msg]:
        retry = await asyncio.gather(*(one(message) for message in messages))
        return [message for message in retry if message is not None]

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
    """gavel.payment.bidder.<kind>.<bidder_id> → the event (None: a kind the room does not use).
    Raises on a payload that is not the kind's message or names no bidder."""
    parts = subject.split(".")
    kind = parts[3] if len(parts) >= 5 else ""
    if kind == "banned":
        banned = eev.BidderBanned.FromString(data)
        if not banned.bidder_id:
            raise ValueError("BidderBanned without bidder_id")
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


def apply_bidder_event(book: EligibilityBook) -> Callable[[Msg], None]:
    """A payment bidder event into the book; raises on one the room cannot read (the follower stops)."""

    def apply(message: Msg) -> None:
        event = eligibility_event(message.subject, message.data)
        if event is not None:
            book.apply(event)

    return apply


def apply_registration(book: RegistrationBook) -> Callable[[Msg], None]:
    def apply(message: Msg) -> None:
        decided = cev.RegistrationDecided.FromString(message.data)
        if not decided.sale_id or not decided.bidder_id:
            raise ValueError("RegistrationDecided without sale_id or bidder_id")
        book.decided(decided.sale_id, decided.bidder_id, decided.status == res.REGISTRATION_STATUS_APPROVED)

    return apply


def apply_staff(book: StaffBook) -> Callable[[Msg], None]:
    def apply(message: Msg) -> None:
        changed = cev.SaleStaffChanged.FromString(message.data)
        if not changed.sale_id:
            raise ValueError("SaleStaffChanged without sale_id")
        book.replace(
            changed.sale_id, [(a.user_id, STAFF_ROLES[a.role]) for a in changed.staff if a.role in STAFF_ROLES]
        )

    return apply


def apply_revocation(book: RevocationBook) -> Callable[[Msg], None]:
    """The gateway's AccountRevoked events (the stream keeps a week; tokens live 5 minutes)."""

    def apply(message: Msg) -> None:
        event = aev.AccountRevoked.FromString(message.data)
        if not event.user_id:
            raise ValueError("AccountRevoked without user_id")
        book.revoke(event.user_id, event.revoked_at.seconds + event.revoked_at.nanos / 1e9)

    return apply
