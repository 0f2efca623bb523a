"""SQL access of the room: the paddle registry, the projections and the catalog-close queue.
Nothing here runs on the bid path except a paddle lookup on a floor bid's cache miss."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gavel_kit.db import Database, utcnow
from gavel_kit.logging import get_logger
from room.adapters import orm
from room.app.ports import Clock

log = get_logger("room.repositories")

PADDLE_CACHE_MS = 2_000


def insert_or_ignore(db: Database, table: Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING in the database's dialect (redelivered events change nothing)."""
    dialect = sqlite if db.is_sqlite else postgresql
    return dialect.insert(table).on_conflict_do_nothing()


def upsert(db: Database, table: Table, keys: Sequence[str], columns: Iterable[str]) -> Any:
    """INSERT … ON CONFLICT (keys) DO UPDATE the other `columns`; execute it with the row(s)."""
    dialect = sqlite if db.is_sqlite else postgresql
    statement = dialect.insert(table)
    changes = {name: statement.excluded[name] for name in columns if name not in keys}
    return statement.on_conflict_do_update(index_elements=list(keys), set_=changes)


def instant(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


# -- the paddle registry ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaddleRecord:
    sale_id: str
    paddle: str
    bidder_id: str
    registered_by: str
    registered_at: dt.datetime


class Paddles:
    """PaddleRegistry: who holds each paddle of a sale. Lookups are cached briefly per replica (a
    re-assigned paddle is seen by other replicas within PADDLE_CACHE_MS)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[str | None, int]] = {}

    async def register(self, session: AsyncSession, record: PaddleRecord) -> None:
        values = {
            "sale_id": record.sale_id,
            "paddle": record.paddle,
            "bidder_id": record.bidder_id,
            "registered_by": record.registered_by,
            "registered_at": record.registered_at,
        }
        await session.execute(upsert(self._db, orm.paddles, ["sale_id", "paddle"], values.keys()), values)
        self._cache.pop((record.sale_id, record.paddle), None)

    async def bidder_for(self, sale_id: str, paddle: str) -> str | None:
        now = self._clock()
        cached = self._cache.get((sale_id, paddle))
        if cached is not None and now - cached[1] < PADDLE_CACHE_MS:
            return cached[0]
        table = orm.paddles
        async with self._db.sessions() as session:
            bidder = (
                await session.execute(
                    select(table.c.bidder_id).where(table.c.sale_id == sale_id, table.c.paddle == paddle)
                )
            ).scalar()
        self._cache[(sale_id, paddle)] = (bidder, now)
        return bidder


# -- reports ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Any]
    next_offset: int | None
    total: int


class Reports:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _page(self, table: Table, lot_id: str, offset: int, size: int) -> Page:
        async with self._db.sessions() as session:
            rows = (
                await session.execute(
                    select(table)
                    .where(table.c.lot_id == lot_id)
                    .order_by(table.c.stream_sequence, table.c.event_index)
                    .offset(offset)
                    .limit(size + 1)
                )
            ).all()
            total = (
                await session.execute(select(func.count()).select_from(table).where(table.c.lot_id == lot_id))
            ).scalar_one()
        more = len(rows) > size
        return Page(list(rows[:size]), offset + size if more else None, int(total))

    async def bids(self, lot_id: str, offset: int, size: int) -> Page:
        return await self._page(orm.bids, lot_id, offset, size)

    async def crier_actions(self, lot_id: str, offset: int, size: int) -> Page:
        return await self._page(orm.crier_actions, lot_id, offset, size)

    async def result(self, lot_id: str) -> tuple[Any, list[str]] | None:
        async with self._db.sessions() as session:
            row = (await session.execute(select(orm.lot_results).where(orm.lot_results.c.lot_id == lot_id))).first()
            penalised = (
                await session.execute(
                    select(orm.penalties.c.bidder_id)
                    .where(orm.penalties.c.lot_id == lot_id)
                    .order_by(orm.penalties.c.stream_sequence)
                )
            ).scalars()
            names = list(penalised)
        if row is None:
            return None
        return row, names


# -- the catalog-close queue ----------------------------------------------------------------------------


class CatalogCloses:
    """Lots whose outcome the catalog has not acknowledged yet, with exponential backoff."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def due(self, limit: int = 50) -> list[Any]:
        table = orm.catalog_closes
        async with self._db.sessions() as session:
            return list(
                (
                    await session.execute(
                        select(table)
                        .where(and_(table.c.done_at.is_(None), table.c.next_attempt_at <= utcnow()))
                        .order_by(table.c.next_attempt_at)
                        .limit(limit)
                    )
                ).all()
            )

    async def done(self, lot_id: str) -> None:
        await self._set(lot_id, done_at=utcnow(), last_error="")

    async def failed(self, lot_id: str, attempts: int, error: str) -> None:
        delay = min(60.0, 0.5 * 2**attempts)
        await self._set(
            lot_id, attempts=attempts + 1, next_attempt_at=utcnow() + dt.timedelta(seconds=delay), last_error=error
        )

    async def _set(self, lot_id: str, **values: Any) -> None:
        table = orm.catalog_closes
        async with self._db.sessions() as session:
            await session.execute(update(table).where(table.c.lot_id == lot_id).values(**values))
            await session.commit()


def details_json(details: dict[str, str]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"))
