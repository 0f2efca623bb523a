"""The gateway's tables and the SQL implementations of its ports: `gateway_users` (accounts),
`gateway_refresh_tokens` (hashes only), and the kit's `gateway_outbox` for AccountRevoked events."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Column, DateTime, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.domain.accounts import RefreshToken, Revocation, User, format_roles, roles_from_stored
from gavel.events.v1 import account_events_pb2 as aev
from gavel_core.errors import AlreadyExists, NotFound
from gavel_kit.db import Database, SqlUnitOfWork, kit_tables, new_metadata

metadata = new_metadata()

users = Table(
    "gateway_users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("display_name", String(100), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("roles", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled_at", DateTime(timezone=True), nullable=True),
)

refresh_tokens = Table(
    "gateway_refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 of the token: the token is never stored
    Column("family_id", String(36), nullable=False, index=True),
    Column("user_id", String(36), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("spent_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

tables = kit_tables(metadata, "gateway")
EVENTS_STREAM = "GATEWAY_EVENTS"
REVOKED_SUBJECT = "gavel.gateway.account.revoked"
REVOKED_TYPE = "gavel.events.v1.AccountRevoked"

MIGRATIONS = "gateway.adapters:migrations"
VERSION_TABLE = "gateway_alembic_version"


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands timestamps back without a zone; every stored value is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _to_user(row: Any) -> User:
    return User(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        password_hash=row.password_hash,
        roles=roles_from_stored(row.roles),
        created_at=_utc(row.created_at),
        disabled=row.disabled_at is not None,
    )


def _stamp(moment: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def _emit_revocation(session: AsyncSession, db: Database, revocation: Revocation) -> None:
    event = aev.AccountRevoked(
        event_id=str(uuid.uuid4()),
        occurred_at=_stamp(revocation.at),
        user_id=revocation.user_id,
        revoked_at=_stamp(revocation.at),
        reason=revocation.reason,
    )
    uow = SqlUnitOfWork(db, tables)
    uow.session = session
    await uow.emit(
        f"{REVOKED_SUBJECT}.{revocation.user_id}",
        event.SerializeToString(),
        msg_id=event.event_id,
        event_type=REVOKED_TYPE,
    )


class SqlUserRepository:
    """One short transaction per call: account reads and writes are single-row."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, user_id: str) -> User | None:
        async with self._db.sessions() as session:
            row = (await session.execute(select(users).where(users.c.id == user_id))).first()
        return None if row is None else _to_user(row)

    async def get_by_email(self, email: str) -> User | None:
        async with self._db.sessions() as session:
            row = (await session.execute(select(users).where(users.c.email == email))).first()
        return None if row is None else _to_user(row)

    async def add(self, user: User) -> None:
        try:
            async with self._db.sessions.begin() as session:
                await session.execute(
                    insert(users).values(
                        id=user.id,
                        email=user.email,
                        display_name=user.display_name,
                        password_hash=user.password_hash,
                        roles=format_roles(user.roles),
                        created_at=user.created_at,
                    )
                )
        except IntegrityError:
            raise AlreadyExists("user", user.email, "an account with this email already exists") from None

    async def update(self, user: User, revocation: Revocation | None = None) -> None:
        async with self._db.sessions.begin() as session:
            current = (await session.execute(select(users.c.disabled_at).where(users.c.id == user.id))).first()
            if current is None:
                raise NotFound("user", user.id)
            disabled_at = (current.disabled_at or dt.datetime.now(dt.UTC)) if user.disabled else None
            await session.execute(
                update(users)
                .where(users.c.id == user.id)
                .values(
                    display_name=user.display_name,
                    password_hash=user.password_hash,
                    roles=format_roles(user.roles),
                    disabled_at=disabled_at,
                )
            )
            if revocation is not None:  # in the same transaction: the event goes out iff the change holds
                await _emit_revocation(session, self._db, revocation)


def _to_refresh(row: Any) -> RefreshToken:
    return RefreshToken(
        token_hash=row.token_hash,
        family_id=row.family_id,
        user_id=row.user_id,
        created_at=_utc(row.created_at),
        expires_at=_utc(row.expires_at),
        spent_at=_utc(row.spent_at) if row.spent_at is not None else None,
        revoked_at=_utc(row.revoked_at) if row.revoked_at is not None else None,
    )


class SqlRefreshTokens:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, token: RefreshToken) -> None:
        async with self._db.sessions.begin() as session:
            await session.execute(
                insert(refresh_tokens).values(
                    token_hash=token.token_hash,
                    family_id=token.family_id,
                    user_id=token.user_id,
                    created_at=token.created_at,
                    expires_at=token.expires_at,
                )
            )

    async def get(self, token_hash: str) -> RefreshToken | None:
        async with self._db.sessions() as session:
            row = (
                await session.execute(select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash))
            ).first()
        return None if row is None else _to_refresh(row)

    async def spend(self, token_hash: str, now: dt.datetime) -> bool:
        async with self._db.sessions.begin() as session:
            result = await session.execute(
                update(refresh_tokens)
                .where(
                    refresh_tokens.c.token_hash == token_hash,
                    refresh_tokens.c.spent_at.is_(None),
                    refresh_tokens.c.revoked_at.is_(None),
                    refresh_tokens.c.expires_at > now,
                )
                .values(spent_at=now)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def revoke_family(self, family_id: str, now: dt.datetime) -> None:
        async with self._db.sessions.begin() as session:
            await session.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )

    async def revoke_user(self, user_id: str, now: dt.datetime) -> None:
        async with self._db.sessions.begin() as session:
            await session.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.user_id == user_id, refresh_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
