"""SQLAlchemy 2 async: engine and sessions, Alembic migrations, and the shared tables every service keeps
(request-id idempotency store and transactional outbox), plus a unit-of-work base that ties them together.

SQLite under `var/db/` by default, PostgreSQL (asyncpg) by URL. All tables of a service carry the
service's prefix, so services can share one PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from gavel_core.errors import FailedPrecondition
from gavel_kit import telemetry
from gavel_kit.logging import get_logger

log = get_logger("gavel.db")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    """MetaData with the naming convention Alembic needs for stable constraint names."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite:///` URLs and pick the async drivers Gavel ships."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


class Database:
    """One async engine and its session factory."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
            kwargs["poolclass"] = NullPool  # aiosqlite connections are cheap; avoids cross-loop reuse in tests
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(self.engine, expire_on_commit=False)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")

    async def migrate(self, script_location: str, version_table: str) -> None:
        """Upgrade to head on this engine (Alembic's async cookbook: run sync Alembic on a connection)."""
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade, script_location, version_table)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_config(script_location: str, version_table: str, url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["version_table"] = version_table
    if url:
        config.set_main_option("sqlalchemy.url", normalise_url(url))
    return config


def _upgrade(connection: Connection, script_location: str, version_table: str) -> None:
    config = alembic_config(script_location, version_table)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def run_alembic_env(target_metadata: MetaData) -> None:
    """The whole body of every service's migrations/env.py: online migrations on the given connection,
    or on a fresh engine from `sqlalchemy.url` when run by the `alembic` CLI / `revision --autogenerate`."""
    from alembic import context

    config = context.config
    version_table = config.attributes.get("version_table") or config.get_main_option("version_table")

    def run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=version_table,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return

    async def run_with_engine() -> None:
        engine = create_async_engine(normalise_url(config.get_main_option("sqlalchemy.url") or ""), poolclass=NullPool)
        async with engine.begin() as conn:
            await conn.run_sync(run)
        await engine.dispose()

    asyncio.run(run_with_engine())


@dataclass(frozen=True, slots=True)
class KitTables:
    """The idempotency store and the outbox, declared in a service's own MetaData (and migrations)."""

    idempotency: Table
    outbox: Table


def kit_tables(metadata: MetaData, prefix: str) -> KitTables:
    idempotency = Table(
        f"{prefix}_idempotency",
        metadata,
        Column("caller", String(200), primary_key=True),
        Column("method", String(200), primary_key=True),
        Column("request_id", String(200), primary_key=True),
        Column("fingerprint", String(64), nullable=False),
        Column("response", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    outbox = Table(
        f"{prefix}_outbox",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("subject", String(300), nullable=False),
        Column("msg_id", String(200), nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True, index=True),
    )
    return KitTables(idempotency=idempotency, outbox=outbox)


def fingerprint(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


class SqlUnitOfWork:
    """A transaction plus the two kit tables: recall/remember idempotent answers, emit events to the outbox.

    Events go out only if the transaction commits (transactional outbox); `OutboxRelay` publishes them
    to JetStream with `Nats-Msg-Id` = the event id, so a re-publish after a crash is deduplicated.
    Services subclass it to add their repositories on `self.session`.
    """

    def __init__(self, db: Database, tables: KitTables, relay: OutboxRelay | None = None) -> None:
        self._db = db
        self._tables = tables
        self._relay = relay
        self._emitted = False
        self.session: AsyncSession

    async def __aenter__(self) -> Self:
        self.session = self._db.sessions()
        await self.session.begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self.session.in_transaction():
                await self.session.rollback()
        finally:
            await self.session.close()

    async def commit(self) -> None:
        await self.session.commit()
        if self._emitted and self._relay is not None:
            self._relay.wake()
        self._emitted = False

    async def rollback(self) -> None:
        await self.session.rollback()

    async def recall(self, caller: str, method: str, request_id: str, request_fingerprint: str) -> bytes | None:
        """The stored answer to this request id, or None if it is new. A reused id with another request is refused."""
        table = self._tables.idempotency
        row = (
            await self.session.execute(
                select(table.c.fingerprint, table.c.response).where(
                    table.c.caller == caller, table.c.method == method, table.c.request_id == request_id
                )
            )
        ).first()
        if row is None:
            return None
        if row.fingerprint != request_fingerprint:
            raise FailedPrecondition(
                "REQUEST_ID_REUSED",
                f"request_id {request_id!r} was already used for a different {method.rsplit('/', 1)[-1]} request",
                {"request_id": request_id},
            )
        response: bytes = row.response
        return response

    async def remember(
        self, caller: str, method: str, request_id: str, request_fingerprint: str, response: bytes
    ) -> None:
        await self.session.execute(
            insert(self._tables.idempotency).values(
                caller=caller,
                method=method,
                request_id=request_id,
                fingerprint=request_fingerprint,
                response=response,
                created_at=utcnow(),
            )
        )

    async def emit(self, subject: str, payload: bytes, *, msg_id: str, event_type: str) -> None:
        """Queue an event for publication when (and only if) this transaction commits."""
        headers = telemetry.inject_headers({})
        await self.session.execute(
            insert(self._tables.outbox).values(
                subject=subject,
                msg_id=msg_id,
                event_type=event_type,
                payload=payload,
                headers=json.dumps(dict(headers)),
                created_at=utcnow(),
            )
        )
        self._emitted = True


async def run_idempotent(
    uow_factory: Callable[[], SqlUnitOfWork],
    *,
    caller: str,
    method: str,
    request_id: str,
    request_bytes: bytes,
    action: Callable[[SqlUnitOfWork], Awaitable[bytes]],
) -> bytes:
    """Run `action` once per (caller, method, request_id); a repeat returns the first answer's bytes.

    The answer is stored in the same transaction as the action's effects, so an effect is never
    stored without its answer. Two racing first attempts: one commits, the other hits the primary key,
    rolls back, and returns the winner's answer.
    """
    request_fingerprint = fingerprint(request_bytes)
    for _ in range(2):
        async with uow_factory() as uow:
            stored = await uow.recall(caller, method, request_id, request_fingerprint)
            if stored is not None:
                return stored
            response = await action(uow)
            try:
                # The key collides here (INSERT) or at commit, depending on when the twin committed.
                await uow.remember(caller, method, request_id, request_fingerprint, response)
                await uow.commit()
            except IntegrityError:
                await uow.rollback()
                continue  # a concurrent twin committed first: read its answer
            return response
    raise FailedPrecondition("REQUEST_ID_REUSED", f"request_id {request_id!r} is being processed concurrently")


class OutboxRelay:
    """Publishes committed outbox rows to JetStream in order, then marks them published."""

    def __init__(
        self, db: Database, tables: KitTables, publish: Callable[..., Awaitable[Any]], poll_s: float = 1.0
    ) -> None:
        self._db = db
        self._table = tables.outbox
        self._publish = publish
        self._poll_s = poll_s
        self._wakeup = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wakeup.set()

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def drain_once(self, batch: int = 200) -> int:
        """Publish up to `batch` pending events; return how many went out."""
        table = self._table
        async with self._db.sessions() as session:
            rows = (
                await session.execute(
                    select(table).where(table.c.published_at.is_(None)).order_by(table.c.id).limit(batch)
                )
            ).all()
            published: list[int] = []
            try:
                for row in rows:
                    with telemetry.extracted_context(json.loads(row.headers)):
                        await self._publish(row.subject, row.payload, msg_id=row.msg_id, event_type=row.event_type)
                    published.append(row.id)
            finally:
                # One commit for the run (a crash before it republishes the run: Nats-Msg-Id dedupes it).
                if published:
                    await session.execute(update(table).where(table.c.id.in_(published)).values(published_at=utcnow()))
                    await session.commit()
            return len(rows)

    async def run(self) -> None:
        while not self._stopping:
            try:
                sent = await self.drain_once()
            except Exception:
                log.exception("outbox relay failed; retrying")
                sent = 0
                await asyncio.sleep(self._poll_s)
            if sent:
                continue
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll_s)
        await self.drain_once()
