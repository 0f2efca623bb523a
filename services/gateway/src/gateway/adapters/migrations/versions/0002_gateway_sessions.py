"""gateway sessions: disabled accounts, refresh tokens (hashed), outbox and idempotency for account events

Revision ID: 0002_gateway_sessions
Revises: 0001_gateway_users
Create Date: 2026-12-04 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_gateway_sessions"
down_revision: str | None = "0001_gateway_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gateway_users") as batch:
        batch.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "gateway_refresh_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("family_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("spent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_gateway_refresh_tokens")),
    )
    op.create_index(op.f("ix_gateway_refresh_tokens_family_id"), "gateway_refresh_tokens", ["family_id"])
    op.create_index(op.f("ix_gateway_refresh_tokens_user_id"), "gateway_refresh_tokens", ["user_id"])
    op.create_table(
        "gateway_idempotency",
        sa.Column("caller", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("caller", "method", "request_id", name=op.f("pk_gateway_idempotency")),
    )
    op.create_table(
        "gateway_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("msg_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_outbox")),
    )
    op.create_index(op.f("ix_gateway_outbox_published_at"), "gateway_outbox", ["published_at"])


def downgrade() -> None:
    op.drop_table("gateway_outbox")
    op.drop_table("gateway_idempotency")
    op.drop_table("gateway_refresh_tokens")
    with op.batch_alter_table("gateway_users") as batch:
        batch.drop_column("disabled_at")
