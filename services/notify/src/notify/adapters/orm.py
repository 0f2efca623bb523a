"""notify's tables (SQLAlchemy Core, one MetaData), every one prefixed `notify_`.

Instants are `DateTime(timezone=True)` in UTC (SQLite hands them back naive: `utc()` re-attaches
the zone); value objects (per-kind choices, quiet hours, a delivery's params) are JSON text.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from gavel_kit.db import kit_tables, new_metadata

metadata = new_metadata()
ID = 200  # user ids and subjects, as long as the kit's idempotency caller column

kit = kit_tables(metadata, "notify")

preferences = Table(
    "notify_preferences",
    metadata,
    Column("user_id", String(ID), primary_key=True),
    Column("locale", String(8), nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("email", String(254), nullable=False),
    Column("email_verified_at", DateTime(timezone=True), nullable=True),
    Column("phone", String(20), nullable=False),
    Column("phone_verified_at", DateTime(timezone=True), nullable=True),
    Column("choices", Text, nullable=False),
    Column("quiet_hours", Text, nullable=False),
    Column("reminder_offsets", Text, nullable=False),
    Column("digests", Text, nullable=False),
    Column("digest_hour", Integer, nullable=False),
    Column("channel_off", Text, nullable=False),
    Column("has_digests", Boolean, nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=True),
)

verifications = Table(
    "notify_verifications",
    metadata,
    Column("user_id", String(ID), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("address", String(254), nullable=False),
    Column("code_digest", String(64), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
    PrimaryKeyConstraint("user_id", "channel"),
)

deliveries = Table(
    "notify_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("dedupe_key", String(400), nullable=False, unique=True),
    Column("user_id", String(ID), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("lot_id", String(ID), nullable=False),
    Column("group_id", String(ID), nullable=False),
    Column("params", Text, nullable=False),
    Column("status", String(12), nullable=False),
    Column("reason", String(40), nullable=False),
    Column("summary", String(500), nullable=False),
    Column("address", String(254), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", String(1000), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("provider_id", String(100), nullable=False),
    Column("segments", Integer, nullable=False),
    Column("folded_into", String(40), nullable=False),
    Column("lease_owner", String(100), nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Index("ix_notify_deliveries_status_due", "status", "due_at"),
    Index("ix_notify_deliveries_user_created", "user_id", "created_at"),
    Index("ix_notify_deliveries_created", "created_at"),
    Index("ix_notify_deliveries_user_channel_sent", "user_id", "channel", "sent_at"),
    Index("ix_notify_deliveries_group_kind", "group_id", "kind"),
    Index("ix_notify_deliveries_folded_into", "folded_into"),
)

dead_letters = Table(
    "notify_dead_letters",
    metadata,
    Column("delivery_id", String(40), primary_key=True),
    Column("user_id", String(ID), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("error", String(1000), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("dead_at", DateTime(timezone=True), nullable=False, index=True),
    Column("retried_at", DateTime(timezone=True), nullable=True),
)

lots = Table(
    "notify_lots",
    metadata,
    Column("lot_id", String(ID), primary_key=True),
    Column("group_id", String(ID), nullable=False),
    Column("sale_id", String(ID), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("room_index", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("increments", Text, nullable=False),
    Column("estimated_start", DateTime(timezone=True), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
)

sales = Table(
    "notify_sales",
    metadata,
    Column("sale_id", String(ID), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("time_zone", String(64), nullable=False),
)

reservations = Table(
    "notify_reservations",
    metadata,
    Column("reservation_id", String(ID), primary_key=True),
    Column("user_id", String(ID), nullable=False),
    Column("group_id", String(ID), nullable=False, index=True),
    Column("sale_id", String(ID), nullable=False, index=True),
    Column("estimated_start", DateTime(timezone=True), nullable=True),
    Column("active", Boolean, nullable=False),
)

lot_bidders = Table(
    "notify_lot_bidders",
    metadata,
    Column("lot_id", String(ID), nullable=False),
    Column("user_id", String(ID), nullable=False),
    PrimaryKeyConstraint("lot_id", "user_id"),
)


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_at(value: datetime) -> datetime:
    """`utc` of a NOT NULL column."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
