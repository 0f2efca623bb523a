"""Alembic environment of the catalog: all the work is in gavel_kit.db.run_alembic_env."""

from catalog.adapters.orm import metadata
from gavel_kit.db import run_alembic_env

run_alembic_env(metadata)
