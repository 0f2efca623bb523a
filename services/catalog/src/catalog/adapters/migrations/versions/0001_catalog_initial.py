"""catalog: every table (products, sales, lots, registrations, reservations, seats, idempotency, outbox)

Hand-checked after autogeneration from catalog.adapters.orm.metadata; runs on SQLite and PostgreSQL.
The integration tests check that migrating an empty database gives exactly that metadata.

Revision ID: 0001_catalog_initial
Revises:
Create Date: 2026-11-23 17:06:30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0001_catalog_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_idempotency",
        sa.Column("caller", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("caller", "method", "request_id", name=op.f("pk_catalog_idempotency")),
    )
    op.create_table(
        "catalog_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("msg_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_outbox")),
    )
    op.create_index(op.f("ix_catalog_outbox_published_at"), "catalog_outbox", ["published_at"], unique=False)

    op.create_table(
        "catalog_products",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("seller_id", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("title_folded", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("image_urls", sa.Text(), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_products")),
    )
    op.create_index("ix_catalog_products_order", "catalog_products", ["created_at", "id"], unique=False)
    op.create_index(op.f("ix_catalog_products_seller_id"), "catalog_products", ["seller_id"], unique=False)

    op.create_table(
        "catalog_sales",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("owner_id", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("title_folded", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("session_date", sa.Date(), nullable=True),
        sa.Column("time_slots", sa.Text(), nullable=True),
        sa.Column("registration_rule", sa.String(length=32), nullable=False),
        sa.Column("allow_list", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_sales")),
    )
    op.create_index("ix_catalog_sales_order", "catalog_sales", ["starts_at", "id"], unique=False)
    op.create_index(op.f("ix_catalog_sales_owner_id"), "catalog_sales", ["owner_id"], unique=False)
    op.create_index(op.f("ix_catalog_sales_state"), "catalog_sales", ["state"], unique=False)

    op.create_table(
        "catalog_lots",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("group_id", sa.String(length=128), nullable=False),
        sa.Column("sale_id", sa.String(length=128), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=False),
        sa.Column("seller_id", sa.String(length=200), nullable=False),
        sa.Column("room_index", sa.Integer(), nullable=False),
        sa.Column("room_count", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("duration_slots", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("estimated_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("winner_id", sa.String(length=200), nullable=False),
        sa.Column("hammer_price_minor", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["catalog_products.id"], name=op.f("fk_catalog_lots_product_id_catalog_products")
        ),
        sa.ForeignKeyConstraint(["sale_id"], ["catalog_sales.id"], name=op.f("fk_catalog_lots_sale_id_catalog_sales")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_lots")),
    )
    op.create_index(op.f("ix_catalog_lots_estimated_start"), "catalog_lots", ["estimated_start"], unique=False)
    op.create_index(op.f("ix_catalog_lots_group_id"), "catalog_lots", ["group_id"], unique=False)
    op.create_index("ix_catalog_lots_order", "catalog_lots", ["sale_id", "position", "room_index"], unique=False)
    op.create_index(op.f("ix_catalog_lots_product_id"), "catalog_lots", ["product_id"], unique=False)
    op.create_index(op.f("ix_catalog_lots_seller_id"), "catalog_lots", ["seller_id"], unique=False)

    op.create_table(
        "catalog_registrations",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("sale_id", sa.String(length=128), nullable=False),
        sa.Column("bidder_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sale_id"], ["catalog_sales.id"], name=op.f("fk_catalog_registrations_sale_id_catalog_sales")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_registrations")),
        sa.UniqueConstraint("sale_id", "bidder_id", name="uq_catalog_registrations_sale_bidder"),
    )
    op.create_index(op.f("ix_catalog_registrations_bidder_id"), "catalog_registrations", ["bidder_id"], unique=False)
    op.create_index("ix_catalog_registrations_order", "catalog_registrations", ["created_at", "id"], unique=False)

    op.create_table(
        "catalog_reservations",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("group_id", sa.String(length=128), nullable=False),
        sa.Column("sale_id", sa.String(length=128), nullable=False),
        sa.Column("bidder_id", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("estimated_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sale_id"], ["catalog_sales.id"], name=op.f("fk_catalog_reservations_sale_id_catalog_sales")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_reservations")),
    )
    op.create_index(
        "ix_catalog_reservations_bidder_order", "catalog_reservations", ["bidder_id", "created_at", "id"], unique=False
    )
    op.create_index(op.f("ix_catalog_reservations_sale_id"), "catalog_reservations", ["sale_id"], unique=False)
    op.create_index(
        "uq_catalog_reservations_active",
        "catalog_reservations",
        ["group_id", "bidder_id"],
        unique=True,
        sqlite_where=sa.text("state = 'active'"),
        postgresql_where=sa.text("state = 'active'"),
    )

    op.create_table(
        "catalog_seats",
        sa.Column("group_id", sa.String(length=128), nullable=False),
        sa.Column("bidder_id", sa.String(length=200), nullable=False),
        sa.Column("sale_id", sa.String(length=128), nullable=False),
        sa.Column("lot_id", sa.String(length=128), nullable=False),
        sa.Column("room_index", sa.Integer(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["lot_id"], ["catalog_lots.id"], name=op.f("fk_catalog_seats_lot_id_catalog_lots")),
        sa.ForeignKeyConstraint(["sale_id"], ["catalog_sales.id"], name=op.f("fk_catalog_seats_sale_id_catalog_sales")),
        sa.PrimaryKeyConstraint("group_id", "bidder_id", name="pk_catalog_seats"),
        sa.UniqueConstraint("group_id", "ordinal", name="uq_catalog_seats_group_ordinal"),
    )


def downgrade() -> None:
    # dropping a table drops its indexes
    for table in (
        "catalog_seats",
        "catalog_reservations",
        "catalog_registrations",
        "catalog_lots",
        "catalog_sales",
        "catalog_products",
        "catalog_outbox",
        "catalog_idempotency",
    ):
        op.drop_table(table)
