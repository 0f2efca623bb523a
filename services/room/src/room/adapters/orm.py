"""The room's tables (prefix room_). None is on the bid path: a lot's truth is its event log.

- room_lots: the lots the catalog scheduled (from LotScheduled), so an owner can configure a lot
  whose log is still empty without calling the catalog.
- room_paddles: the paddle registry per sale (RegisterPaddle; read by floor bids).
- room_bids, room_lot_results, room_penalties, room_crier_actions: projections of the event log,
  written by the durable consumer room-projections, keyed by (stream sequence, event index) or
  lot id, so a redelivered batch changes nothing.
- room_catalog_closes: lots whose outcome must still be reported to the catalog (CloseLot), with
  their retry schedule.
- room_idempotency, room_outbox: the kit's request-id store (RegisterPaddle) and outbox.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, Integer, LargeBinary, String, Table, Text

from gavel_kit.db import kit_tables, new_metadata

metadata = new_metadata()
tables = kit_tables(metadata, "room")

ID = 128

lots = Table(
    "room_lots",
    metadata,
    Column("lot_id", String(ID), primary_key=True),
    Column("sale_id", String(ID), nullable=False),
    Column("seller_id", String(200), nullable=False),
    Column("group_id", String(ID), nullable=False),
    Column("room_index", Integer, nullable=False),
    Column("room_count", Integer, nullable=False),
    Column("lot", LargeBinary, nullable=False),  # gavel.catalog.v1.Lot, secrets included
    Column("received_at", DateTime(timezone=True), nullable=False),
)

paddles = Table(
    "room_paddles",
    metadata,
    Column("sale_id", String(ID), primary_key=True),
    Column("paddle", String(32), primary_key=True),
    Column("bidder_id", String(200), nullable=False),
    Column("registered_by", String(200), nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
)

bids = Table(
    "room_bids",
    metadata,
    Column("stream_sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("event_index", Integer, primary_key=True, autoincrement=False),
    Column("lot_id", String(ID), nullable=False),
    Column("lot_sequence", BigInteger, nullable=False),
    Column("bid_id", String(200), nullable=False),
    Column("bidder_id", String(200), nullable=False),
    Column("source", String(16), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("leader_id", String(200), nullable=False),
    Column("paddle", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("undone", Boolean, nullable=False),
    Index("ix_room_bids_lot", "lot_id", "stream_sequence"),
    Index("ix_room_bids_lot_bid", "lot_id", "bid_id"),
)

lot_results = Table(
    "room_lot_results",
    metadata,
    Column("lot_id", String(ID), primary_key=True),
    Column("outcome", String(16), nullable=False),
    Column("buyer_id", String(200), nullable=False),
    Column("hammer_minor", BigInteger, nullable=True),
    Column("currency", String(3), nullable=False),
    Column("source", String(16), nullable=False),
    Column("paddle", String(32), nullable=False),
    Column("discount_bp", Integer, nullable=False),
    Column("unsold_reason", String(32), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("stream_sequence", BigInteger, nullable=False),
)

penalties = Table(
    "room_penalties",
    metadata,
    Column("stream_sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("event_index", Integer, primary_key=True, autoincrement=False),
    Column("lot_id", String(ID), nullable=False, index=True),
    Column("bidder_id", String(200), nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("reason", String(32), nullable=False),
)

crier_actions = Table(
    "room_crier_actions",
    metadata,
    Column("stream_sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("event_index", Integer, primary_key=True, autoincrement=False),
    Column("lot_id", String(ID), nullable=False),
    Column("lot_sequence", BigInteger, nullable=False),
    Column("action", String(64), nullable=False),
    Column("actor_id", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("details", Text, nullable=False),  # JSON object of strings
    Index("ix_room_crier_actions_lot", "lot_id", "stream_sequence"),
)

catalog_closes = Table(
    "room_catalog_closes",
    metadata,
    Column("lot_id", String(ID), primary_key=True),
    Column("outcome", String(16), nullable=False),
    Column("winner_id", String(200), nullable=False),
    Column("hammer_minor", BigInteger, nullable=True),
    Column("currency", String(3), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=False),
    Column("room_sequence", BigInteger, nullable=False, server_default="0"),  # the batch that ended the lot
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=False),
    Index("ix_room_catalog_closes_due", "done_at", "next_attempt_at"),
)
