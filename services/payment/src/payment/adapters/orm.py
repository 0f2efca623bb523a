"""The payment service's tables (SQLAlchemy 2 Core, one MetaData, every table prefixed `payment_`).

Money is integer minor units in BigInteger columns next to a currency column. Balances live in
`payment_accounts.balance` only as a cache of the sum of `payment_entries` for the account, updated
in the same transaction as the entries and checked by VerifyLedger (and the tests).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from gavel_kit.db import KitTables, kit_tables, new_metadata

metadata = new_metadata()

ID = 128
ACCOUNT = 400
CURRENCY = 24  # ISO 4217 or TICKETS:<ISO>


def _at(name: str, nullable: bool = False) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


accounts = Table(
    "payment_accounts",
    metadata,
    Column("id", String(ACCOUNT), primary_key=True),
    Column("owner_kind", String(16), nullable=False),
    Column("owner_id", String(ID), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("scope", String(ID), nullable=False),
    Column("currency", String(CURRENCY), nullable=False),
    Column("balance", BigInteger, nullable=False),
    _at("updated_at"),
    Index("ix_payment_accounts_owner", "owner_kind", "owner_id"),
)

transactions = Table(
    "payment_transactions",
    metadata,
    Column("id", String(300), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("cause", String(300), nullable=False, index=True),
    Column("memo", Text, nullable=False),
    _at("created_at"),
)

entries = Table(
    "payment_entries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("transaction_id", String(300), ForeignKey("payment_transactions.id"), nullable=False, index=True),
    Column("account_id", String(ACCOUNT), ForeignKey("payment_accounts.id"), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(CURRENCY), nullable=False),
    _at("created_at"),
)

sale_terms = Table(
    "payment_sale_terms",
    metadata,
    Column("sale_id", String(ID), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("premium_bands", Text, nullable=False),  # JSON [[from_minor, bp], ...]
    Column("tax_bp", Integer, nullable=False),
    Column("tax_base", String(16), nullable=False),
    Column("commission_bp", Integer, nullable=False),
    Column("deposit_minor", BigInteger, nullable=False),
    Column("buying_power_bp", Integer, nullable=False),
    Column("penalty_fee_minor", BigInteger, nullable=False),
    Column("penalty_fee_bp", Integer, nullable=False),
    Column("payment_due_days", Integer, nullable=False),
    Column("credit_scope", String(16), nullable=False),
    Column("frozen", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
)

lots = Table(
    "payment_lots",
    metadata,
    Column("lot_id", String(ID), primary_key=True),
    Column("sale_id", String(ID), nullable=False, index=True),
    Column("seller_id", String(ID), nullable=False),
    Column("product_id", String(ID), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("buyer_premium_bp", Integer, nullable=False),
    Column("tax_bp", Integer, nullable=False),
    Column("title", String(200), nullable=False),
    # From the catalog's LotOutcomeRecorded: who won (empty: nobody, or not known yet).
    Column("winner_id", String(ID), nullable=False),
)

closed_sales = Table(
    "payment_closed_sales",
    metadata,
    Column("sale_id", String(ID), primary_key=True),
    _at("closed_at"),
)

invoices = Table(
    "payment_invoices",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("number", String(64), nullable=False, unique=True),
    Column("bidder_id", String(ID), nullable=False, index=True),
    Column("seller_id", String(ID), nullable=False, index=True),
    Column("sale_id", String(ID), nullable=False, index=True),
    Column("lot_id", String(ID), nullable=False, unique=True),
    Column("product_id", String(ID), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("hammer", BigInteger, nullable=False),
    Column("discount", BigInteger, nullable=False),
    Column("premium", BigInteger, nullable=False),
    Column("tax", BigInteger, nullable=False),
    Column("deposit_applied", BigInteger, nullable=False),
    Column("credit_applied", BigInteger, nullable=False),
    Column("commission", BigInteger, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    _at("issued_at"),
    _at("due_at"),
    _at("paid_at", nullable=True),
    Column("paid_by", String(32), nullable=False),
    Column("cause", String(300), nullable=False),
    Column("terms_version", Integer, nullable=False),
)

charges = Table(
    "payment_charges",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("purpose", String(16), nullable=False),
    Column("target_id", String(ID), nullable=False, index=True),
    Column("bidder_id", String(ID), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", String(24), nullable=False, index=True),
    Column("provider_ref", String(ID), nullable=False),
    Column("provider_version", Integer, nullable=False),
    Column("action_url", String(2000), nullable=False),
    Column("failure_reason", String(200), nullable=False),
    Column("payment_method", String(64), nullable=False),
    Column("return_url", String(2000), nullable=False),
    Column("refunded", BigInteger, nullable=False),
    Column("detail", Text, nullable=False),  # JSON: the pack bought, the sale of a deposit
    _at("created_at"),
    _at("updated_at"),
)

refunds = Table(
    "payment_refunds",
    metadata,
    Column("id", String(300), primary_key=True),
    Column("charge_id", String(ID), ForeignKey("payment_charges.id"), nullable=False, index=True),
    Column("bidder_id", String(ID), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("purpose", String(24), nullable=False),
    Column("target_id", String(ID), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("provider_ref", String(ID), nullable=False),
    Column("failure_reason", String(200), nullable=False),
    _at("created_at"),
    _at("updated_at"),
)

deposits = Table(
    "payment_deposits",
    metadata,
    Column("bidder_id", String(ID), nullable=False),
    Column("sale_id", String(ID), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("applied", BigInteger, nullable=False),
    Column("forfeited", BigInteger, nullable=False),
    Column("refunded", BigInteger, nullable=False),
    Column("released", Boolean, nullable=False),
    PrimaryKeyConstraint("bidder_id", "sale_id"),
    Index("ix_payment_deposits_sale", "sale_id"),
)

penalties = Table(
    "payment_penalties",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("bidder_id", String(ID), nullable=False, index=True),
    Column("sale_id", String(ID), nullable=False),
    Column("lot_id", String(ID), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("from_deposit", BigInteger, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("cause", String(300), nullable=False, unique=True),
    _at("created_at"),
    _at("reversed_at", nullable=True),
    Column("reversed_by", String(200), nullable=False),
    Column("reversal_reason", String(500), nullable=False),
)

bans = Table(
    "payment_bans",
    metadata,
    Column("bidder_id", String(ID), nullable=False),
    Column("sale_id", String(ID), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("source", String(16), nullable=False),
    Column("active", Boolean, nullable=False),
    _at("banned_at"),
    Column("banned_by", String(200), nullable=False),
    _at("lifted_at", nullable=True),
    Column("lifted_by", String(200), nullable=False),
    Column("lift_reason", String(500), nullable=False),
    PrimaryKeyConstraint("bidder_id", "sale_id"),
)

ticket_packs = Table(
    "payment_ticket_packs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("tickets", Integer, nullable=False),
    Column("unit_minor", BigInteger, nullable=False),
    Column("active", Boolean, nullable=False),
)

ticket_batches = Table(
    "payment_ticket_batches",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("bidder_id", String(ID), nullable=False, index=True),
    Column("pack_id", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("unit_minor", BigInteger, nullable=False),
    Column("bought", Integer, nullable=False),
    Column("remaining", Integer, nullable=False),
    Column("refunded", Integer, nullable=False),
    _at("bought_at"),
    Column("charge_id", String(ID), nullable=False),
)

ticket_spends = Table(
    "payment_ticket_spends",
    metadata,
    Column("bidder_id", String(ID), nullable=False),
    Column("lot_id", String(ID), nullable=False),
    Column("product_id", String(ID), nullable=False),
    Column("sale_id", String(ID), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("tickets", Integer, nullable=False),
    Column("value_minor", BigInteger, nullable=False),
    Column("settled", Boolean, nullable=False),
    PrimaryKeyConstraint("bidder_id", "lot_id"),
    Index("ix_payment_ticket_spends_lot", "lot_id"),
)

processed = Table(
    "payment_processed",
    metadata,
    Column("event_id", String(300), primary_key=True),
    _at("processed_at"),
)

tables: KitTables = kit_tables(metadata, "payment")  # payment_idempotency, payment_outbox, payment_outbox_dead
