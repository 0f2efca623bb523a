"""The gateway's tables: migrations and the SQL user repository, on SQLite (and PostgreSQL when configured)."""

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from gateway.adapters.users_sql import MIGRATIONS, VERSION_TABLE, SqlUserRepository, metadata
from gateway.domain.accounts import User
from gavel_core.auth import Role
from gavel_core.errors import AlreadyExists
from gavel_kit.db import Database

pytestmark = pytest.mark.integration


@pytest.fixture
async def db(database_url):
    database = Database(database_url)
    await database.migrate(MIGRATIONS, VERSION_TABLE)
    yield database
    await database.dispose()


def _user(user_id="u1", email="ann@example.com"):
    return User(
        id=user_id,
        email=email,
        display_name="Ann",
        password_hash="$scrypt$ln=8,r=8,p=1$c2FsdA$aGFzaA",
        roles=frozenset({Role.BIDDER, Role.SELLER}),
        created_at=dt.datetime(2025, 6, 1, 9, 0, tzinfo=dt.UTC),
    )


async def test_migrating_twice_is_harmless_and_records_the_revision_in_the_gateway_version_table(db):
    await db.migrate(MIGRATIONS, VERSION_TABLE)
    async with db.engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        version = (await connection.exec_driver_sql("SELECT version_num FROM gateway_alembic_version")).scalar_one()
    assert {"gateway_users", "gateway_refresh_tokens", "gateway_outbox", VERSION_TABLE} <= set(tables)
    assert version == "0002_gateway_sessions"


async def test_the_migrations_build_exactly_the_tables_the_code_declares(db):
    def differences(sync_connection):
        context = MigrationContext.configure(sync_connection, opts={"compare_type": True})
        return [d for d in compare_metadata(context, metadata) if VERSION_TABLE not in repr(d)]

    async with db.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_a_user_is_stored_and_read_back_by_id_and_by_email(db):
    users = SqlUserRepository(db)
    await users.add(_user())
    assert await users.get("u1") == _user()
    assert await users.get_by_email("ann@example.com") == _user()
    assert await users.get("nobody") is None


async def test_a_second_account_with_the_same_email_is_refused(db):
    users = SqlUserRepository(db)
    await users.add(_user())
    with pytest.raises(AlreadyExists):
        await users.add(_user(user_id="u2"))


async def test_an_update_replaces_name_hash_and_roles(db):
    users = SqlUserRepository(db)
    await users.add(_user())
    changed = _user().with_changes(display_name="Ann B.", password_hash="$scrypt$new", roles=frozenset({Role.CRIER}))
    await users.update(changed)
    assert await users.get("u1") == changed
