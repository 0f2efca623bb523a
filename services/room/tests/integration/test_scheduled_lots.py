"""The terms the room keeps from LotScheduled, on real SQLite (and PostgreSQL when configured)."""

from __future__ import annotations

import pytest
from room_cluster import english_lot

from gavel_kit.db import Database
from room.adapters.repositories import ScheduledLots
from room.main import MIGRATIONS

pytestmark = pytest.mark.integration


@pytest.fixture
async def database(database_url: str):
    db = Database(database_url)
    await db.migrate(MIGRATIONS, "room_alembic_version")
    try:
        yield db
    finally:
        await db.dispose()


async def test_a_run_of_scheduled_lots_is_stored_at_once_and_a_reschedule_replaces_the_terms(database):
    lots = ScheduledLots(database, catalog=None)
    first, second = english_lot(opening=1_000), english_lot(opening=2_000)
    await lots.store([first, second])
    rescheduled = english_lot(first.id, opening=1_500)
    await lots.store([rescheduled])

    stored = {lot.id: await lots.lookup(lot.id) for lot in (first, second)}
    assert {lot_id: terms.params.opening_bid for lot_id, (_, terms) in stored.items()} == {
        first.id: 1_500,
        second.id: 2_000,
    }
    assert await lots.lookup("never-scheduled") is None
