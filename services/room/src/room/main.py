"""Composition root of the room service: `python -m room.main [serve|project|migrate]`.

- `serve` (default): the shared runtime (gavel_kit.service) serves gavel.room.v1.RoomService on
  GAVEL_ROOM_GRPC_PORT (default 50052) once its database is migrated and NATS is connected (stream
  ROOM_EVENTS). Then this replica claims its share of the partitions and starts its timers,
  consumers, watch feeds and its followers of the payment service's bans and limits and the
  catalog's registrations and staff (readiness conditions `eligibility`, `registrations`, `staff`:
  not ready, and bid-like commands UNAVAILABLE, until each has caught up; docs/room-service.md).
  It also writes the reports (projections) unless GAVEL_ROOM_PROJECTIONS=false.
- `project`: the room-projector worker — only the reports: the room-projections consumer and the
  catalog closer, off the bid path (health on GAVEL_ROOM_PROJECTOR_GRPC_PORT, default 50062,
  metrics on GAVEL_ROOM_PROJECTOR_METRICS_PORT, default 9112). `gavel up` runs one and sets
  GAVEL_ROOM_PROJECTIONS=false for the serving replicas.
- `migrate`: upgrade the room's tables (version table room_alembic_version) and exit.

Room settings (besides the kit's): GAVEL_ROOM_REPLICA_ID (default hostname-pid),
GAVEL_ROOM_PARTITIONS (64), GAVEL_ROOM_LEASE_TTL_S (1.2), GAVEL_ROOM_CLOSING_SOON_S (60, 0: off),
GAVEL_ROOM_MAX_IN_FLIGHT (256 appends), GAVEL_ROOM_MAX_PENDING (2000 queued commands),
GAVEL_ROOM_FORWARD_TIMEOUT_S (5), GAVEL_ROOM_WATCHER_LIMIT (10000 batches a watcher may lag),
GAVEL_ROOM_CATALOG_CALLS (true; false: never call the catalog),
GAVEL_ROOM_PROJECTIONS (true; false: a `project` process writes the reports).
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from collections.abc import Coroutine
from typing import Any

from gavel.events.v1 import catalog_events_pb2 as cev
from gavel.room.v1 import room_service_pb2_grpc
from gavel_core.auth import Principal, Role
from gavel_kit import nats as gavel_nats
from gavel_kit import service
from gavel_kit.consumers import DurableConsumer, StreamFollower, ensure_stream_exists
from gavel_kit.keys import load_secret
from gavel_kit.logging import get_logger
from gavel_kit.service import Hook, Runtime, ServiceDefinition
from room.adapters import orm
from room.adapters.catalog_client import CatalogClient
from room.adapters.consumers import (
    BIDDER_EVENTS,
    CATALOG_STREAM,
    GATEWAY_SPEC,
    LOT_STARTING,
    LOT_WITHDRAWN,
    PAYMENT_SPEC,
    REGISTRATION_DECIDED,
    REVOCATIONS,
    STAFF_CHANGED,
    apply_bidder_event,
    apply_registration,
    apply_revocation,
    apply_staff,
    lot_statement_handler,
    projections_handler,
)
from room.adapters.event_log import LOT_SUBJECTS, STREAM, STREAM_SPEC, JetStreamEventLog, NatsAnnouncer, NatsLiveFeeds
from room.adapters.forwarding import CallRouter
from room.adapters.grpc_servicer import RoomHandlers, RoomServicer
from room.adapters.leases import KvActiveLots, LeaseKeeper
from room.adapters.lookups import Registrations, Staff, StartedLots
from room.adapters.metrics import FOLLOWER_STOPS, LOADED_LOTS, OWNED_PARTITIONS, WATCHED_LOTS, track
from room.adapters.projections import CatalogCloser, Projector
from room.adapters.repositories import CatalogCloses, Paddles, Reports
from room.adapters.seating import SeatBook
from room.adapters.settings import RoomSettings, from_kit
from room.app.books import RegistrationBook, StaffBook
from room.app.eligibility import EligibilityBook
from room.app.feeds import Feeds
from room.app.lots import LotDeps, LotDirectory
from room.app.revocations import RevocationBook
from room.app.room import RoomService
from room.app.timers import WakeUps
from room.app.views import Pseudonyms
from room.domain.draws import SECRET_BYTES

log = get_logger("room.main")

MIGRATIONS = "room.adapters:migrations"
STREAMS = [STREAM_SPEC]
EVICT_EVERY_S = 60
EVICT_IDLE_MS = 10 * 60_000
DRAIN_ON_HANDOVER_S = 0.5
PROJECTIONS_LINGER_S = 0.1  # reports may trail the bids by this much; fewer, larger transactions
# Readiness: the replica renews its heartbeat and holds its share (room.app.ownership, "status").
PARTITIONS_CONDITION = "partitions"


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def draw_secret() -> bytes:
    """A lucky lot's secret: the winning option comes from it, so it must be unpredictable."""
    return secrets.token_bytes(SECRET_BYTES)


class _Partitions:
    """What happens when this replica gains, hands back or loses a partition."""

    def __init__(self, router: CallRouter, lots: LotDirectory, active: KvActiveLots, rt: Runtime) -> None:
        self._router = router
        self._lots = lots
        self._active = active
        self._rt = rt

    async def gained(self, partition: int) -> None:
        await self._router.serve(partition)
        self._rt.spawn(self._load_active(partition), f"load-partition-{partition}")

    async def _load_active(self, partition: int) -> None:
        lot_ids = await self._active.list(partition)
        if lot_ids:
            log.info("loading active lots", partition=partition, lots=len(lot_ids))
            await self._lots.load_lots(lot_ids)

    async def releasing(self, partition: int) -> None:
        await self._router.stop_serving(partition)
        await self._lots.drain_partition(partition, DRAIN_ON_HANDOVER_S)

    def lost(self, partition: int) -> None:
        self._rt.spawn(self._router.stop_serving(partition), f"stop-partition-{partition}")
        self._lots.drop_partition(partition)

    def resumed(self, partition: int) -> None:
        self._lots.rearm(partition)


def catalog_client(rt: Runtime, settings: RoomSettings) -> CatalogClient | None:
    if not settings.catalog_calls:
        return None
    return CatalogClient(rt.settings.service_addresses["catalog"], lambda: rt.service_token)


class Reporting:
    """The reports: the log's SQL projections, and each ended lot reported to the catalog.

    Competing consumers of one durable, so any number of processes may run this; it runs inside a
    serving replica or alone in a `project` process, where it takes no CPU from the bids.
    """

    def __init__(self, rt: Runtime, catalog: CatalogClient | None) -> None:
        self.rt = rt
        self.catalog = catalog

    def start(self) -> None:
        rt = self.rt
        consumer = DurableConsumer(
            rt.js,
            STREAM,
            "room-projections",
            LOT_SUBJECTS,
            projections_handler(Projector(rt.db)),
            batch=256,
            ack_all=True,
            linger_s=PROJECTIONS_LINGER_S,
        )
        rt.spawn(consumer.run(), consumer.durable)
        if self.catalog is not None:
            rt.spawn(CatalogCloser(CatalogCloses(rt.db), self.catalog).run(), "catalog-closer")


class RoomReplica:
    """The pieces of one room replica, wired together (no I/O until `start`)."""

    def __init__(self, rt: Runtime, settings: RoomSettings) -> None:
        self.rt = rt
        self.settings = settings
        self.catalog = catalog_client(rt, settings)
        self.book = EligibilityBook()
        # per-sale bidder pseudonyms for everything public (no key, no start)
        self.pseudonyms = Pseudonyms(load_secret(rt.settings.keys_dir / "pseudonyms.key"))
        self.revocations = RevocationBook()
        rt.codec.revocations = self.revocations.revoked  # a disabled or demoted account stops bidding at once
        self.registrations = RegistrationBook()
        self.staff = StaffBook()
        self.active = KvActiveLots(rt.nc, rt.js, rt.settings.nats_replicas)
        self.followers = [
            self._follower("eligibility", BIDDER_EVENTS, apply_bidder_event(self.book)),
            self._follower("registrations", REGISTRATION_DECIDED, apply_registration(self.registrations)),
            self._follower("staff", STAFF_CHANGED, apply_staff(self.staff), last_per_subject=True),
            self._follower("revocations", REVOCATIONS, apply_revocation(self.revocations)),
        ]
        self.wakeups = WakeUps(wall_clock_ms, self.wake)
        deps = LotDeps(
            log=JetStreamEventLog(rt.nc, rt.js),
            announcer=NatsAnnouncer(rt.nc, self.pseudonyms),
            active=self.active,
            terms=StartedLots(self.catalog, wall_clock_ms),
            clock=wall_clock_ms,
            wakeups=self.wakeups,
            append_slots=asyncio.Semaphore(settings.max_in_flight),
            spawn=self.spawn,
            draw_secret=draw_secret,
            closing_soon_ms=settings.closing_soon_ms,
            max_pending=settings.max_pending,
            owns=self.owns,
        )
        self.lots = LotDirectory(deps, settings.partitions, self.owns)
        self.paddles = Paddles(rt.db, wall_clock_ms)
        room = RoomService(
            self.lots,
            self.book,
            SeatBook(rt.nc, self.catalog, wall_clock_ms),
            self.paddles,
            Registrations(self.registrations, self.catalog, wall_clock_ms),
            Staff(self.staff, self.catalog, wall_clock_ms),
            caught_up=lambda: all(follower.caught_up for follower in self.followers),
        )
        self.router = CallRouter(
            rt.nc,
            RoomHandlers(room, self.pseudonyms).routes(),
            self.lots.partition_of,
            self.owns,
            self.spawn,
            settings.forward_timeout_s,
            verifier=rt.codec,
            own_identity=lambda: Principal(
                subject=rt.credential.subject,
                roles=frozenset({Role.SERVICE}),
                display_name="room",
                credential=rt.service_token,
            ),
        )
        self.feeds = Feeds(
            NatsLiveFeeds(rt.nc, self.pseudonyms), self.spawn, wall_clock_ms, tail_check_ms=settings.watch_tail_check_ms
        )
        self.servicer = RoomServicer(
            self.router,
            self.feeds,
            Reports(rt.db),
            self.paddles,
            rt.db,
            room.staff,
            self.catalog,
            watcher_limit=settings.watcher_limit,
        )
        self.leases = LeaseKeeper(
            rt.settings.nats_url,
            rt.settings.nats_credentials_file,
            settings.replica_id,
            settings.partitions,
            _Partitions(self.router, self.lots, self.active, rt),
            ttl_s=settings.lease_ttl_s,
            renew_every_s=settings.renew_every_s,
            event_loop=rt.settings.event_loop,
            replicas=rt.settings.nats_replicas,
            on_status=lambda ok, detail: rt.conditions.set(PARTITIONS_CONDITION, ok, detail),
            on_failure=rt.fail,
        )
        rt.conditions.require(PARTITIONS_CONDITION, "claiming partitions")
        track(OWNED_PARTITIONS, lambda: len(self.leases.owned_partitions()))
        track(LOADED_LOTS, lambda: len(self.lots))
        track(WATCHED_LOTS, lambda: len(self.feeds.feeds))

    def _follower(self, name: str, subject: str, apply: Any, *, last_per_subject: bool = False) -> StreamFollower:
        conditions = self.rt.conditions
        conditions.require(name, "catching up")
        return StreamFollower(
            self.rt.js,
            name,
            subject,
            apply,
            on_ready=lambda met, detail: conditions.set(name, met, detail),
            on_stopped=FOLLOWER_STOPS.labels(name).inc,
            deliver_last_per_subject=last_per_subject,
        )

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> object:
        return self.rt.spawn(coro, "room")

    def owns(self, partition: int) -> bool:
        return self.leases.owns(partition)

    def wake(self, lot_id: str) -> None:
        self.lots.wake(lot_id)

    async def start(self, runtime: Runtime) -> None:
        rt, settings = self.rt, self.settings
        await self.active.check_partition_count(settings.partitions)
        await ensure_stream_exists(rt.js, PAYMENT_SPEC)
        await ensure_stream_exists(rt.js, GATEWAY_SPEC)
        for follower in self.followers:
            runtime.spawn(follower.run(), f"follow-{follower.name}")
            gavel_nats.resources(rt.nc).add(f"{follower.name} follower", follower.follow_again)
        await self.leases.start()  # claims a first share before the replica reports SERVING
        runtime.spawn(self.wakeups.run(), "lot-timers")
        runtime.spawn(self.feeds.run(), "watch-feeds")
        runtime.spawn(self._evict_idle_lots(), "evict-idle-lots")
        consumers = [
            DurableConsumer(
                rt.js,
                CATALOG_STREAM,
                "room-lot-starting",
                LOT_STARTING,
                lot_statement_handler(cev.LotStarting, "StartLot", self.router.call),
            ),
            DurableConsumer(
                rt.js,
                CATALOG_STREAM,
                "room-lot-withdrawn",
                LOT_WITHDRAWN,
                lot_statement_handler(cev.LotWithdrawn, "WithdrawFromCatalog", self.router.call),
            ),
        ]
        for consumer in consumers:
            runtime.spawn(consumer.run(), consumer.durable)
        if settings.projections:
            Reporting(rt, self.catalog).start()
        log.info(
            "room replica ready",
            replica=settings.replica_id,
            partitions=self.leases.owned_partitions(),
            of=settings.partitions,
        )

    async def stop(self, runtime: Runtime) -> None:
        await self.feeds.close_all()  # watchers resume on another replica
        await self.leases.stop()  # hand the partitions back: no waiting for the TTL
        if self.catalog is not None:
            await self.catalog.close()

    async def _evict_idle_lots(self) -> None:
        while True:
            await asyncio.sleep(EVICT_EVERY_S)
            self.lots.evict_idle(EVICT_IDLE_MS)


def make_wire(room_settings: RoomSettings | None = None) -> Hook:
    async def wire(rt: Runtime) -> None:
        replica = RoomReplica(rt, room_settings or from_kit(rt.settings))
        room_service_pb2_grpc.add_RoomServiceServicer_to_server(replica.servicer, rt.server)
        rt.on_ready(replica.start)
        rt.on_stop(replica.stop)

    return wire


def definition(room_settings: RoomSettings | None = None) -> ServiceDefinition:
    """The room service (its settings come from the kit's GAVEL_ROOM_* options unless given)."""
    return ServiceDefinition(
        name="room",
        wire=make_wire(room_settings),
        metadata=orm.metadata,
        migrations=MIGRATIONS,
        kit=orm.tables,
        streams=STREAMS,
    )


async def wire_projector(rt: Runtime) -> None:
    """The room-projector process: health, metrics and the reports, no RoomService."""
    reporting = Reporting(rt, catalog_client(rt, from_kit(rt.settings)))

    async def start(_: Runtime) -> None:
        reporting.start()
        log.info("room projector ready")

    async def stop(_: Runtime) -> None:
        if reporting.catalog is not None:
            await reporting.catalog.close()

    rt.on_ready(start)
    rt.on_stop(stop)


DEFINITION = definition()
PROJECTOR = ServiceDefinition(
    name="room",
    process="room-projector",
    wire=wire_projector,
    metadata=orm.metadata,
    migrations=MIGRATIONS,
    streams=(),  # the replicas own ROOM_EVENTS; the projector only reads it (its consumer waits for it)
)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["project"]:
        return service.main(PROJECTOR, ["serve", *args[1:]])
    return service.main(DEFINITION, args)


if __name__ == "__main__":
    sys.exit(main())
