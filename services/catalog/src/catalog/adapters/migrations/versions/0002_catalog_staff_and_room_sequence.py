"""catalog: staff per sale (catalog_sale_staff) and the room's lot_sequence of each lot's end

Revision ID: 0002_catalog_staff
Revises: 0001_catalog_initial
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_catalog_staff"
down_revision: str | None = "0001_catalog_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_sale_staff",
        sa.Column("sale_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("assigned_by", sa.String(length=200), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sale_id"], ["catalog_sales.id"], name=op.f("fk_catalog_sale_staff_sale_id_catalog_sales")
        ),
        sa.PrimaryKeyConstraint("sale_id", "user_id", "role", name="pk_catalog_sale_staff"),
    )
    with op.batch_alter_table("catalog_lots") as batch:
        batch.add_column(sa.Column("room_sequence", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("catalog_lots") as batch:
        batch.drop_column("room_sequence")
    op.drop_table("catalog_sale_staff")
