"""Alembic environment of notify: all the work is in gavel_kit.db.run_alembic_env."""

from gavel_kit.db import run_alembic_env
from notify.adapters.orm import metadata

run_alembic_env(metadata)
