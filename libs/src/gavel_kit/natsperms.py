"""Who may publish and subscribe what on NATS: one user per Gavel process kind, least privilege.

Every process connects as its own user (credentials from `GAVEL_NATS_CREDENTIALS_FILE`, which
`gavel up` writes under `var/secrets/nats/<user>.json`) in one account, `GAVEL`, which has
JetStream (one account because the services share streams; users are what separate them). A user
may publish only the subjects of its own domain and manage only its own streams, and reads other
streams only through the named durable consumers below (or direct gets, which only read). Replies
to requests go to a per-user inbox prefix (`_INBOX_<user>.`), so no process can listen to another's
replies.

To give a service a new stream, subject or consumer, add it to its `Access` entry in `TABLE`
(docs/security.md "NATS permissions"). Denied operations are refused by the server and logged
there as "Permissions Violation".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

ACCOUNT = "GAVEL"


def inbox_prefix(user: str) -> str:
    return f"_INBOX_{user.replace('-', '_')}"


@dataclass(frozen=True)
class Access:
    """What one NATS user may do (subjects are NATS subjects; streams are JetStream stream names)."""

    publish: tuple[str, ...] = ()  # core or stream subjects it publishes (appends to its streams included)
    subscribe: tuple[str, ...] = ()  # core subjects it listens to
    streams: tuple[str, ...] = ()  # streams it creates, updates and consumes freely (its own)
    buckets: tuple[str, ...] = ()  # JetStream KV buckets it owns
    reads: tuple[str, ...] = ()  # other streams it reads by direct get or message get
    durables: tuple[tuple[str, str], ...] = ()  # (stream, durable) pull consumers it runs on others' streams
    # others' streams it follows with ordered (ephemeral) consumers; it may create such a stream
    # while it is missing (its owner not deployed yet: the same config), never update or delete it
    follows: tuple[str, ...] = ()
    responds: bool = False  # answers requests (core request/reply)
    inspects: bool = False  # operators' tools: read-only look at every stream, consumer and bucket

    def permissions(self, user: str) -> dict[str, object]:
        publish: list[str] = ["$JS.API.INFO", "$JS.API.STREAM.NAMES", *self.publish]
        for stream in (*self.streams, *(f"KV_{bucket}" for bucket in self.buckets)):
            publish += [
                f"$JS.API.STREAM.*.{stream}",
                f"$JS.API.STREAM.MSG.GET.{stream}",
                f"$JS.API.DIRECT.GET.{stream}",
                f"$JS.API.DIRECT.GET.{stream}.>",
                f"$JS.API.CONSUMER.*.{stream}",
                f"$JS.API.CONSUMER.*.{stream}.>",
                f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>",
                f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>",
                f"$JS.ACK.{stream}.>",
                f"$JS.FC.{stream}.>",
            ]
        publish += [f"$KV.{bucket}.>" for bucket in self.buckets]
        for stream in {*self.reads, *(s for s, _ in self.durables), *self.follows}:
            publish += [
                f"$JS.API.STREAM.INFO.{stream}",
                f"$JS.API.STREAM.MSG.GET.{stream}",
                f"$JS.API.DIRECT.GET.{stream}",
                f"$JS.API.DIRECT.GET.{stream}.>",
            ]
        for stream, durable in self.durables:
            publish += [
                f"$JS.API.CONSUMER.CREATE.{stream}.{durable}",
                f"$JS.API.CONSUMER.CREATE.{stream}.{durable}.>",
                f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
                f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
                f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
                f"$JS.ACK.{stream}.{durable}.>",
            ]
        for stream in self.follows:
            publish += [
                f"$JS.API.STREAM.CREATE.{stream}",
                f"$JS.API.CONSUMER.CREATE.{stream}",
                f"$JS.API.CONSUMER.INFO.{stream}.*",
                f"$JS.FC.{stream}.>",
            ]
        if self.inspects:
            publish += [
                "$JS.API.STREAM.INFO.*",
                "$JS.API.STREAM.NAMES",
                "$JS.API.STREAM.LIST",
                "$JS.API.STREAM.MSG.GET.*",
                "$JS.API.DIRECT.GET.>",
                "$JS.API.CONSUMER.INFO.*.*",
                "$JS.API.CONSUMER.NAMES.*",
                "$JS.API.CONSUMER.LIST.*",
            ]
        permissions: dict[str, object] = {
            "publish": {"allow": sorted(set(publish))},
            "subscribe": {"allow": sorted({*self.subscribe, f"{inbox_prefix(user)}.>"})},
        }
        if self.responds:
            permissions["allow_responses"] = True
        return permissions


CATALOG, ROOM, PAYMENT, GATEWAY = "CATALOG", "ROOM_EVENTS", "PAYMENT_EVENTS", "GATEWAY_EVENTS"

TABLE: Mapping[str, Access] = {
    "catalog": Access(publish=("gavel.catalog.>",), streams=(CATALOG,)),
    "room": Access(
        # only room replicas forward commands, announce batches and append to ROOM_EVENTS
        publish=("gavel.room.cmd.>", "gavel.room.live.>", "gavel.room.lot.>"),
        subscribe=("gavel.room.cmd.>", "gavel.room.live.>"),
        streams=(ROOM,),
        buckets=("ROOM_REPLICAS", "ROOM_OWNERS", "ROOM_ACTIVE_LOTS"),
        reads=(CATALOG,),
        durables=((CATALOG, "room-lot-starting"), (CATALOG, "room-lot-withdrawn")),
        follows=(PAYMENT, GATEWAY, CATALOG),  # bans and limits; revocations; registrations and staff
        responds=True,
    ),
    # the room's reports: reads the log through its durable, publishes nothing
    "room-projector": Access(durables=((ROOM, "room-projections"),)),
    "tender": Access(publish=("gavel.tender.>",), reads=(CATALOG,)),
    # payment and notify: as docs/events.md lists their durables
    "payment": Access(
        publish=("gavel.payment.>",),
        streams=(PAYMENT,),
        reads=(CATALOG, ROOM),
        durables=((ROOM, "payment-room-events"), (CATALOG, "payment-lot-outcomes")),
    ),
    "notify": Access(
        reads=(CATALOG, ROOM, PAYMENT),
        durables=((CATALOG, "notify-catalog"), (ROOM, "notify-room"), (PAYMENT, "notify-payment")),
    ),
    "gateway": Access(publish=("gavel.gateway.>",), streams=(GATEWAY,)),
    # operators' tools (gavel bench, audits): look, never touch
    # (it may listen to domain events, never to gavel.room.cmd.>, whose calls carry bearer tokens)
    "ops": Access(
        inspects=True,
        subscribe=(
            "gavel.catalog.>",
            "gavel.payment.>",
            "gavel.notify.>",
            "gavel.gateway.>",
            "gavel.room.lot.>",
            "gavel.room.live.>",
        ),
    ),
}

USERS = tuple(TABLE)


@dataclass(frozen=True)
class User:
    name: str
    password_hash: str  # bcrypt: the server config never holds a password
    access: Access = field(default_factory=Access)
    superuser: bool = False  # tests only: everything (never in a generated deployment config)


def account_block(users: Iterable[User]) -> dict[str, object]:
    entries = []
    for user in users:
        entry: dict[str, object] = {"user": user.name, "password": user.password_hash}
        if not user.superuser:
            entry["permissions"] = user.access.permissions(user.name)
        entries.append(entry)
    return {ACCOUNT: {"jetstream": "enabled", "users": entries}}
