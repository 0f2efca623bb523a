"""room: the lot_sequence of the batch that ended each lot travels with its CloseLot

Revision ID: 0002_room_close_sequence
Revises: 0001_room_initial
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_room_close_sequence"
down_revision: str | None = "0001_room_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("room_catalog_closes") as batch:
        batch.add_column(sa.Column("room_sequence", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("room_catalog_closes") as batch:
        batch.drop_column("room_sequence")
