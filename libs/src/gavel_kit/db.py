"""SQLAlchemy 2 async: engine and sessions, Alembic migrations, and the shared tables every service keeps
(request-id idempotency store and transactional outbox), plus a unit-of-work base that ties them together.

SQLite under `var/db/` by default, PostgreSQL (asyncpg) by URL. All tables of a service carry the
service's prefix, so services can share one PostgreSQL database.

The outbox is fit for money (docs/architecture.md "Idempotency and events"): an event that could
never be published (larger than the NATS server's max_payload, a malformed subject) is refused
before its transaction commits; the relay drains with one owner at a time per table (a
transaction-scoped lock), pipelines its publishes, moves a row that keeps failing to a dead-letter
table instead of letting it block the rows behind it, and prunes published rows and expired
idempotency keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import re
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from alembic import command
from alembic.config import Config
from nats.errors import MaxPayloadError
from nats.js import JetStreamContext
from nats.js.errors import APIError
from prometheus_client import Counter
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
    delete,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from gavel_core.errors import FailedPrecondition, ResourceExhausted
from gavel_kit import telemetry
from gavel_kit.logging import get_logger
from gavel_kit.nats import headers_for

log = get_logger("gavel.db")

OUTBOX_PUBLISHED = Counter("gavel_outbox_published_total", "Outbox rows published to JetStream", ["table"])
OUTBOX_DEAD_LETTERS = Counter(
    "gavel_outbox_dead_letters_total", "Outbox rows moved to the dead-letter table (never published)", ["table"]
)
OUTBOX_PRUNED = Counter(
    "gavel_outbox_pruned_total", "Published outbox rows and expired idempotency keys deleted", ["table"]
)

# The NATS server's default max_payload; the runtime replaces it with the connected server's.
DEFAULT_MAX_PAYLOAD = 1024 * 1024
# What a message costs beyond its payload and header values (header names, the NATS/1.0 line, CRLFs).
_MESSAGE_OVERHEAD = 512
_SUBJECT = re.compile(r"^[^\s.*>]+(\.[^\s.*>]+)*$")

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
            create_late_kit_tables(connection, target_metadata)

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
    """The idempotency store, the outbox and its dead letters, declared in a service's own MetaData.

    The first two are in each service's migrations; `dead_letters` came later and is created by
    the kit's migration environment (`run_alembic_env`, create-if-missing), so no service needed a
    migration of its own for it.
    """

    idempotency: Table
    outbox: Table
    dead_letters: Table


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
    dead_letters = Table(
        f"{prefix}_outbox_dead",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("outbox_id", BigInteger, nullable=False),
        Column("subject", String(300), nullable=False),
        Column("msg_id", String(200), nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("failed_at", DateTime(timezone=True), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("error", Text, nullable=False),
    )
    metadata.info.setdefault(LATE_KIT_TABLES, []).append(dead_letters.name)
    return KitTables(idempotency=idempotency, outbox=outbox, dead_letters=dead_letters)


LATE_KIT_TABLES = "gavel_kit_late_tables"


def create_late_kit_tables(connection: Connection, metadata: MetaData) -> None:
    """Create the kit tables added after a service's first migration, if they are missing."""
    for name in metadata.info.get(LATE_KIT_TABLES, ()):
        metadata.tables[name].create(connection, checkfirst=True)


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
        """Queue an event for publication when (and only if) this transaction commits.

        An event the relay could never publish is refused here, before anything commits: a subject
        that is not dot-separated tokens, an empty or oversized id or type (ValueError: a bug), a
        message larger than the NATS server's max_payload (ResourceExhausted: the request made it so).
        """
        headers = telemetry.inject_headers({})
        max_payload = self._relay.max_payload if self._relay is not None else DEFAULT_MAX_PAYLOAD
        check_event(subject, payload, msg_id=msg_id, event_type=event_type, max_payload=max_payload)
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


def check_event(subject: str, payload: bytes, *, msg_id: str, event_type: str, max_payload: int) -> None:
    """Refuse an event that JetStream would refuse (see `SqlUnitOfWork.emit`)."""
    if len(subject) > 300 or not _SUBJECT.match(subject):
        raise ValueError(f"outbox: invalid subject {subject!r} (dot-separated tokens, no wildcards)")
    if not msg_id or len(msg_id) > 200 or not event_type or len(event_type) > 200:
        raise ValueError(f"outbox: an event needs an id and a type of 1 to 200 characters ({msg_id!r}, {event_type!r})")
    size = len(payload) + len(subject) + len(msg_id) + len(event_type) + _MESSAGE_OVERHEAD
    if size > max_payload:
        raise ResourceExhausted(
            f"the {event_type.rsplit('.', 1)[-1]} event this request causes is {len(payload)} bytes, "
            f"more than the event bus carries ({max_payload} bytes per message)"
        )


async def emit_message(uow: SqlUnitOfWork, subject: str, message: Any, event_id: str) -> None:
    """Queue a protobuf event: its deterministic bytes, `Nats-Msg-Id` = the event id, its full type name."""
    await uow.emit(
        subject, message.SerializeToString(deterministic=True), msg_id=event_id, event_type=message.DESCRIPTOR.full_name
    )


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


class PermanentPublishError(Exception):
    """JetStream will never take this row as it is (too large, refused by the server's rules)."""


# JetStream API errors that retrying cannot fix: message too large, header too large, bad subject.
_PERMANENT_API_CODES = frozenset({10054, 10077, 10166})

Publish = Callable[..., Awaitable[Any]]


class OutboxRelay:
    """Publishes committed outbox rows to JetStream in order, then marks them published.

    * **One owner at a time.** Each run is one transaction that first takes a lock on the table:
      `pg_try_advisory_xact_lock` on PostgreSQL (a replica that does not get it skips the round),
      the database's write lock on SQLite. Any number of replicas may run a relay; the rows are
      published by one of them at a time, in id order, and a replica that dies mid-run releases
      the lock with its connection (nothing to expire).
    * **Pipelined.** With `js`, a run sends its rows back to back (`publish_async`, in order on one
      connection) and then waits for the PubAcks, instead of one round trip per row.
    * **No poison pill.** A row JetStream refuses for good (too large, invalid), or that failed
      `max_attempts` runs in a row, moves to the dead-letter table (`<prefix>_outbox_dead`) with
      the error, is counted (`gavel_outbox_dead_letters_total`) and logged as an error; the rows
      behind it go on. A transient failure (timeout, no stream yet) stops the run at that row: the
      rows before it are marked, the rest are sent again next run (Nats-Msg-Id dedupes those that
      had arrived), so order holds except around a row that is finally dead-lettered.
    * **Pruned.** Every `prune_every_s` published rows older than `retention_s` (well past the
      streams' duplicate window) and idempotency keys older than `idempotency_retention_s` are deleted.
    """

    def __init__(
        self,
        db: Database,
        tables: KitTables,
        publish: Publish,
        poll_s: float = 1.0,
        *,
        js: JetStreamContext | None = None,
        batch: int = 200,
        max_attempts: int = 5,
        ack_wait_s: float = 5.0,
        retention_s: float = 24 * 3600,
        idempotency_retention_s: float = 7 * 24 * 3600,
        prune_every_s: float = 300,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._db = db
        self._tables = tables
        self._table = tables.outbox
        self._publish = publish
        self._js = js
        self._poll_s = poll_s
        self._batch = batch
        self._max_attempts = max_attempts
        self._ack_wait_s = ack_wait_s
        self._retention = dt.timedelta(seconds=retention_s)
        self._idempotency_retention = dt.timedelta(seconds=idempotency_retention_s)
        self._prune_every_s = prune_every_s
        self._clock = clock
        self._lock_key = zlib.crc32(self._table.name.encode())  # one lock per outbox table
        self._attempts: dict[int, int] = {}
        self._wakeup = asyncio.Event()
        self._stopping = False
        self.max_payload = DEFAULT_MAX_PAYLOAD  # the connected server's, set by the runtime

    def wake(self) -> None:
        self._wakeup.set()

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def _take_lock(self, session: AsyncSession) -> bool:
        """Own the table for this transaction; False if another relay does (PostgreSQL only)."""
        if self._db.is_sqlite:
            # A write takes SQLite's one write lock until commit: other relays wait for this run.
            await session.execute(update(self._table).where(self._table.c.id == -1).values(published_at=None))
            return True
        got = (await session.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": self._lock_key})).scalar()
        return bool(got)

    async def drain_once(self, batch: int | None = None) -> int:
        """Publish up to `batch` pending events; return how many rows this run settled
        (published or dead-lettered). Raises the error of a transient failure after settling the
        rows before it."""
        table = self._table
        async with self._db.sessions() as session, session.begin():
            if not await self._take_lock(session):
                return 0
            rows = (
                await session.execute(
                    select(table).where(table.c.published_at.is_(None)).order_by(table.c.id).limit(batch or self._batch)
                )
            ).all()
            if not rows:
                return 0
            outcomes = await self._send(rows)
            published: list[int] = []
            dead: list[tuple[Any, int, BaseException]] = []
            transient: BaseException | None = None
            for row, error in zip(rows, outcomes, strict=True):
                if error is None:
                    published.append(row.id)
                    self._attempts.pop(row.id, None)
                    continue
                attempts = self._attempts.get(row.id, 0) + 1
                if isinstance(error, PermanentPublishError) or attempts >= self._max_attempts:
                    dead.append((row, attempts, error))
                    self._attempts.pop(row.id, None)
                    continue
                self._attempts[row.id] = attempts
                transient = error
                break  # keep the order: the rows behind it go again next run
            now = self._clock()
            if published:
                # One statement for the run (a crash before commit republishes it: Nats-Msg-Id dedupes).
                await session.execute(update(table).where(table.c.id.in_(published)).values(published_at=now))
                OUTBOX_PUBLISHED.labels(table.name).inc(len(published))
            for row, attempts, error in dead:
                await self._dead_letter(session, row, attempts, error, now)
        if transient is not None:
            raise transient
        return len(published) + len(dead)

    async def _send(self, rows: Sequence[Any]) -> list[BaseException | None]:
        """Publish the rows in order; the error of each row, or None for a PubAck."""
        if self._js is None:
            results: list[BaseException | None] = []
            for row in rows:
                try:
                    with telemetry.extracted_context(json.loads(row.headers)):
                        await self._publish(row.subject, row.payload, msg_id=row.msg_id, event_type=row.event_type)
                    results.append(None)
                except Exception as exc:
                    error = _classify(exc)
                    results.append(error)
                    last_try = self._attempts.get(row.id, 0) + 1 >= self._max_attempts
                    if not isinstance(error, PermanentPublishError) and not last_try:
                        break  # the run stops at this row (drain_once); the rest were not sent
            return results + [_NOT_SENT] * (len(rows) - len(results))
        futures: list[asyncio.Future[Any] | BaseException] = []
        for row in rows:
            try:
                with telemetry.extracted_context(json.loads(row.headers)):
                    headers = headers_for(row.msg_id, row.event_type)
                    futures.append(await self._js.publish_async(row.subject, row.payload, headers=headers))
            except Exception as exc:
                futures.append(_classify(exc))
        outcomes: list[BaseException | None] = []
        deadline = asyncio.get_running_loop().time() + self._ack_wait_s
        for future in futures:
            if isinstance(future, BaseException):
                outcomes.append(future)
                continue
            try:
                remaining = max(0.01, deadline - asyncio.get_running_loop().time())
                await asyncio.wait_for(asyncio.shield(future), timeout=remaining)
                outcomes.append(None)
            except Exception as exc:
                future.cancel()
                outcomes.append(_classify(exc))
        return outcomes

    async def _dead_letter(
        self, session: AsyncSession, row: Any, attempts: int, error: BaseException, now: dt.datetime
    ) -> None:
        dead = self._tables.dead_letters
        await session.execute(
            insert(dead).values(
                outbox_id=row.id,
                subject=row.subject,
                msg_id=row.msg_id,
                event_type=row.event_type,
                payload=row.payload,
                headers=row.headers,
                created_at=row.created_at,
                failed_at=now,
                attempts=attempts,
                error=repr(error)[:2000],
            )
        )
        await session.execute(delete(self._table).where(self._table.c.id == row.id))
        OUTBOX_DEAD_LETTERS.labels(self._table.name).inc()
        log.error(
            "outbox row dead-lettered: it will not be published",
            table=self._table.name,
            outbox_id=row.id,
            subject=row.subject,
            msg_id=row.msg_id,
            attempts=attempts,
            error=repr(error),
        )

    async def prune(self) -> int:
        """Delete published rows past the retention and expired idempotency keys; how many went."""
        now = self._clock()
        idempotency = self._tables.idempotency
        async with self._db.sessions() as session, session.begin():
            published = await session.execute(
                delete(self._table).where(
                    self._table.c.published_at.is_not(None), self._table.c.published_at < now - self._retention
                )
            )
            keys = await session.execute(
                delete(idempotency).where(idempotency.c.created_at < now - self._idempotency_retention)
            )
        pruned = int(getattr(published, "rowcount", 0) or 0) + int(getattr(keys, "rowcount", 0) or 0)
        if pruned:
            OUTBOX_PRUNED.labels(self._table.name).inc(pruned)
        return pruned

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_prune = loop.time() + min(self._prune_every_s, 5.0)
        while not self._stopping:
            try:
                sent = await self.drain_once()
            except Exception:
                log.exception("outbox relay failed; retrying", table=self._table.name)
                sent = 0
                await asyncio.sleep(self._poll_s)
            if loop.time() >= next_prune:
                next_prune = loop.time() + self._prune_every_s
                try:
                    await self.prune()
                except Exception:
                    log.exception("outbox pruning failed", table=self._table.name)
            if sent:
                continue
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll_s)
        with contextlib.suppress(Exception):
            await self.drain_once()


_NOT_SENT = RuntimeError("not sent: an earlier row of the run failed")


def _classify(error: BaseException) -> BaseException:
    """Wrap errors retrying cannot fix in PermanentPublishError; return the rest as they are."""
    if isinstance(error, MaxPayloadError) or (
        isinstance(error, APIError) and getattr(error, "err_code", None) in _PERMANENT_API_CODES
    ):
        permanent = PermanentPublishError(repr(error))
        permanent.__cause__ = error
        return permanent
    return error
