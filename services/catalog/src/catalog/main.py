"""Composition root of the catalog: `python -m catalog.main [serve|migrate]`.

- `serve` (default): the shared runtime (gavel_kit.service) serves gavel.catalog.v1.CatalogService
  on GAVEL_CATALOG_GRPC_PORT (default 50051) once its database is migrated and NATS is connected
  (stream CATALOG, subjects gavel.catalog.>); the outbox relay publishes committed events and the
  lot-starting scheduler opens lots as their start comes near.
- `migrate`: upgrade the catalog's tables to the newest revision (version table
  catalog_alembic_version) and exit.

The scheduler reads two variables of its own (the kit's Settings has no per-service extras yet):
GAVEL_CATALOG_LOT_START_LEAD_MINUTES (default 5: start lots whose estimated start is that close)
and GAVEL_CATALOG_SCHEDULER_INTERVAL_S (default 5; 0 turns the scheduler off).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, timedelta

from catalog.adapters.deposits import NoDepositsYet
from catalog.adapters.grpc_servicer import CatalogServicer
from catalog.adapters.ids import SecureIds
from catalog.adapters.orm import metadata, tables
from catalog.adapters.scheduler import LotStartingScheduler, SchedulerConfig
from catalog.adapters.unit_of_work import SqlCatalogUnitOfWork
from catalog.domain.events import STREAM, SUBJECT_PREFIX
from gavel.catalog.v1 import catalog_service_pb2_grpc
from gavel_kit import service
from gavel_kit.db import utcnow
from gavel_kit.nats import StreamSpec
from gavel_kit.service import Hook, Runtime, ServiceDefinition
from gavel_kit.settings import Settings

MIGRATIONS = "catalog.adapters:migrations"
STREAMS = [
    StreamSpec(
        name=STREAM,
        subjects=[f"{SUBJECT_PREFIX}.>"],
        description="Catalog events: sales published and cancelled, lots scheduled, starting and closed, "
        "reservations, registration decisions, seats (payloads: gavel.events.v1, docs/events.md)",
        # The room reads a lot's seats by subject on demand; direct gets make that one request.
        extra={"allow_direct": True},
    )
]


def scheduler_config(settings: Settings) -> SchedulerConfig:
    """GAVEL_CATALOG_LOT_START_LEAD_MINUTES (default 0: start lots at their estimated start) and
    GAVEL_CATALOG_SCHEDULER_INTERVAL_S (default 5; 0 turns the scheduler off)."""
    lead = float(settings.option("LOT_START_LEAD_MINUTES", "0"))
    interval = float(settings.option("SCHEDULER_INTERVAL_S", "5"))
    return SchedulerConfig(lead=timedelta(minutes=lead), interval_s=interval, enabled=interval > 0)


def make_wire(scheduler: SchedulerConfig | None = None, clock: Callable[[], datetime] = utcnow) -> Hook:
    """The wire hook: the servicer on rt.server, and the scheduler started once the runtime is ready."""

    async def wire(rt: Runtime) -> None:
        def unit_of_work() -> SqlCatalogUnitOfWork:
            return SqlCatalogUnitOfWork(rt.db, rt.relay)

        servicer = CatalogServicer(unit_of_work, ids=SecureIds(), deposits=NoDepositsYet(), clock=clock)
        catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, rt.server)
        config = scheduler or scheduler_config(rt.settings)
        if config.enabled:
            lot_starter = LotStartingScheduler(unit_of_work, servicer.start_lot, config, clock)

            async def start_scheduler(runtime: Runtime) -> None:
                runtime.spawn(lot_starter.run(), "lot-starting-scheduler")

            rt.on_ready(start_scheduler)

    return wire


def definition(scheduler: SchedulerConfig | None = None, clock: Callable[[], datetime] = utcnow) -> ServiceDefinition:
    """The catalog service; tests pass their own scheduler settings and clock."""
    return ServiceDefinition(
        name="catalog",
        wire=make_wire(scheduler, clock),
        metadata=metadata,
        migrations=MIGRATIONS,
        kit=tables,
        streams=STREAMS,
    )


DEFINITION = definition()


def main() -> int:
    return service.main(DEFINITION)


if __name__ == "__main__":
    sys.exit(main())
