"""The catalog's unit of work: one SQL transaction, its repositories, and the outbox for its events."""

from __future__ import annotations

from typing import Self

from catalog.adapters.mapping import event_message
from catalog.adapters.orm import tables
from catalog.adapters.repositories import (
    SqlLotRepository,
    SqlProductRepository,
    SqlRegistrationRepository,
    SqlReservationRepository,
    SqlSaleRepository,
    SqlSeatRepository,
    SqlStaffRepository,
    Tracker,
)
from catalog.domain.events import CatalogEvent
from gavel_kit.db import Database, KitTables, OutboxRelay, SqlUnitOfWork


class SqlCatalogUnitOfWork(SqlUnitOfWork):
    """`catalog.app.ports.CatalogUnitOfWork` over SQLAlchemy, with the kit's idempotency store and outbox.

    Entities the repositories return are tracked (see `catalog.adapters.repositories.Tracker`):
    changes made to them in place are written, version-checked, before every query and on commit.
    `collect` writes the event to `catalog_outbox` in the same transaction; the outbox relay
    publishes it to JetStream after commit with `Nats-Msg-Id` = the event id.
    """

    products: SqlProductRepository
    sales: SqlSaleRepository
    lots: SqlLotRepository
    reservations: SqlReservationRepository
    registrations: SqlRegistrationRepository
    seats: SqlSeatRepository
    staff: SqlStaffRepository

    def __init__(self, db: Database, relay: OutboxRelay | None = None, kit: KitTables = tables) -> None:
        super().__init__(db, kit, relay)
        self._tracker: Tracker | None = None

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        tracker = self._tracker = Tracker(self.session)
        self.products = SqlProductRepository(tracker)
        self.sales = SqlSaleRepository(tracker)
        self.lots = SqlLotRepository(tracker)
        self.reservations = SqlReservationRepository(tracker)
        self.registrations = SqlRegistrationRepository(tracker)
        self.seats = SqlSeatRepository(tracker)
        self.staff = SqlStaffRepository(tracker)
        return self

    async def collect(self, event: CatalogEvent) -> None:
        message = event_message(event)
        await self.emit(
            event.subject,
            message.SerializeToString(deterministic=True),
            msg_id=event.event_id,
            event_type=message.DESCRIPTOR.full_name,
        )

    async def flush(self) -> None:
        """Write the tracked changes now (Aborted on a concurrent change), without committing."""
        if self._tracker is not None:
            await self._tracker.flush()

    async def commit(self) -> None:
        await self.flush()
        await super().commit()
