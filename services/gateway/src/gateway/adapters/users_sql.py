"""The `gateway_users` table and the SQL implementation of the UserRepository port."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Column, DateTime, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.domain.accounts import User, format_roles, roles_from_stored
from gavel_core.errors import AlreadyExists, NotFound
from gavel_kit.db import Database, new_metadata

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
)

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

    async def update(self, user: User) -> None:
        async with self._db.sessions.begin() as session:
            result = await session.execute(
                update(users)
                .where(users.c.id == user.id)
                .values(
                    display_name=user.display_name, password_hash=user.password_hash, roles=format_roles(user.roles)
                )
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound("user", user.id)
