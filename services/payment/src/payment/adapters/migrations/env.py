"""Alembic environment of the payment service: all the work is in gavel_kit.db.run_alembic_env."""

from gavel_kit.db import run_alembic_env
from payment.adapters.orm import metadata

run_alembic_env(metadata)
