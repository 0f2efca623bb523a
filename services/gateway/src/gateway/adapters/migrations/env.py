"""Alembic environment of the gateway: all the work is in gavel_kit.db.run_alembic_env."""

from gateway.adapters.users_sql import metadata
from gavel_kit.db import run_alembic_env

run_alembic_env(metadata)
