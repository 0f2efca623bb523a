"""The catalog's tables (SQLAlchemy 2 Core, one MetaData) and the codecs between rows and entities.

Every table is prefixed `catalog_`, so the catalog can share a PostgreSQL database with other
services. The domain's dataclasses stay free of SQLAlchemy: `catalog.adapters.repositories` maps
rows to entities and back explicitly with the `*_row` / `*_of` functions below (the entities use
`slots=True`, which SQLAlchemy's instrumentation cannot map, and several fields are value objects
stored as JSON text: lot terms, time slots, image URLs, attributes, allow-lists).

Conventions:
  * instants are `DateTime(timezone=True)` holding UTC; SQLite hands them back naive, `utc()`
    re-attaches the zone;
  * money is integer minor units in `BigInteger` columns next to a `currency` column (amounts inside
    lot terms travel in the terms' JSON, in the lot's currency);
  * `version` is the optimistic-locking counter of every mutable row: an UPDATE or DELETE names the
    version it read, and no row matched means a concurrent change won (gavel_core.errors.Aborted);
  * `title_folded` is `title.lower()`, computed here, so a case-insensitive search means the same on
    SQLite (whose lower() folds ASCII only) and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from catalog.domain.lots import Lot, LotOutcome
from catalog.domain.products import Product
from catalog.domain.registrations import Registration, RegistrationStatus
from catalog.domain.reservations import Reservation, ReservationState
from catalog.domain.sales import (
    ApprovalRule,
    LiveSession,
    RegistrationPolicy,
    Sale,
    SaleKind,
    TimedTender,
    TimeSlot,
)
from catalog.domain.seating import Seat
from catalog.domain.staff import StaffAssignment, StaffRole
from catalog.domain.states import State
from gavel_core.formats import (
    DutchParams,
    DutchStepMode,
    EnglishClose,
    EnglishParams,
    Format,
    FormatParams,
    LotTerms,
    LuckyParams,
    LuckyWinningRule,
    SoftCloseMode,
    TenderParams,
)
from gavel_core.increments import IncrementTable
from gavel_kit.db import KitTables, kit_tables, new_metadata

metadata = new_metadata()

ID = 128  # catalog.domain.validation.MAX_ID
SUBJECT = 200  # principal subjects (user ids, svc:<name>), as long as the kit's idempotency caller column


def _instant(name: str, *, nullable: bool = False, index: bool = False) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=nullable, index=index)


products = Table(
    "catalog_products",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("seller_id", String(SUBJECT), nullable=False, index=True),
    Column("title", String(200), nullable=False),
    Column("title_folded", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("image_urls", Text, nullable=False),  # JSON list of strings
    Column("attributes", Text, nullable=False),  # JSON object of strings
    Column("quantity", Integer, nullable=False),
    _instant("created_at"),
    _instant("updated_at"),
    Column("version", Integer, nullable=False),
    Index("ix_catalog_products_order", "created_at", "id"),
)

sales = Table(
    "catalog_sales",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("owner_id", String(SUBJECT), nullable=False, index=True),
    Column("title", String(200), nullable=False),
    Column("title_folded", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("session_date", Date, nullable=True),  # live sessions: the local date
    Column("time_slots", Text, nullable=True),  # live sessions: JSON [[start_minute, end_minute], ...]
    Column("registration_rule", String(32), nullable=False),
    Column("allow_list", Text, nullable=False),  # JSON list of bidder ids
    Column("state", String(16), nullable=False, index=True),
    _instant("starts_at"),
    _instant("ends_at"),
    _instant("created_at"),
    _instant("updated_at"),
    _instant("published_at", nullable=True),
    Column("cancel_reason", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_catalog_sales_order", "starts_at", "id"),
)

lots = Table(
    "catalog_lots",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("group_id", String(ID), nullable=False, index=True),
    Column("sale_id", String(ID), ForeignKey("catalog_sales.id"), nullable=False),
    Column("product_id", String(ID), ForeignKey("catalog_products.id"), nullable=False, index=True),
    Column("seller_id", String(SUBJECT), nullable=False, index=True),
    Column("room_index", Integer, nullable=False),
    Column("room_count", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    Column("duration_slots", Integer, nullable=False),
    Column("format", String(40), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("terms", Text, nullable=False),  # JSON, see encode_terms
    Column("state", String(16), nullable=False),
    _instant("created_at"),
    _instant("updated_at"),
    _instant("estimated_start", nullable=True, index=True),
    _instant("started_at", nullable=True),
    _instant("closed_at", nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("winner_id", String(SUBJECT), nullable=False),
    Column("hammer_price_minor", BigInteger, nullable=True),  # in `currency`
    Column("room_sequence", BigInteger, nullable=False, server_default="0"),  # the room's batch that ended it
    Column("version", Integer, nullable=False),
    Index("ix_catalog_lots_order", "sale_id", "position", "room_index"),
)

registrations = Table(
    "catalog_registrations",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("sale_id", String(ID), ForeignKey("catalog_sales.id"), nullable=False),
    Column("bidder_id", String(SUBJECT), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    _instant("created_at"),
    Column("reason", Text, nullable=False),
    Column("decided_by", String(SUBJECT), nullable=False),
    _instant("decided_at", nullable=True),
    Column("version", Integer, nullable=False),
    UniqueConstraint("sale_id", "bidder_id", name="uq_catalog_registrations_sale_bidder"),
    Index("ix_catalog_registrations_order", "created_at", "id"),
)

ACTIVE = ReservationState.ACTIVE.value

reservations = Table(
    "catalog_reservations",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("group_id", String(ID), nullable=False),
    Column("sale_id", String(ID), ForeignKey("catalog_sales.id"), nullable=False, index=True),
    Column("bidder_id", String(SUBJECT), nullable=False),
    Column("state", String(16), nullable=False),
    _instant("created_at"),
    _instant("estimated_start", nullable=True),
    _instant("cancelled_at", nullable=True),
    Column("version", Integer, nullable=False),
    Index("ix_catalog_reservations_bidder_order", "bidder_id", "created_at", "id"),
    # At most one ACTIVE reservation per bidder and group: a partial unique index (both dialects).
    Index(
        "uq_catalog_reservations_active",
        "group_id",
        "bidder_id",
        unique=True,
        sqlite_where=text(f"state = '{ACTIVE}'"),
        postgresql_where=text(f"state = '{ACTIVE}'"),
    ),
)

seats = Table(
    "catalog_seats",
    metadata,
    Column("group_id", String(ID), nullable=False),
    Column("bidder_id", String(SUBJECT), nullable=False),
    Column("sale_id", String(ID), ForeignKey("catalog_sales.id"), nullable=False),
    Column("lot_id", String(ID), ForeignKey("catalog_lots.id"), nullable=False),
    Column("room_index", Integer, nullable=False),
    Column("ordinal", Integer, nullable=False),
    _instant("assigned_at"),
    PrimaryKeyConstraint("group_id", "bidder_id", name="pk_catalog_seats"),
    # Two bidders seated at once cannot share an ordinal, so round-robin seating stays exact.
    UniqueConstraint("group_id", "ordinal", name="uq_catalog_seats_group_ordinal"),
)

staff = Table(
    "catalog_sale_staff",
    metadata,
    Column("sale_id", String(ID), ForeignKey("catalog_sales.id"), nullable=False),
    Column("user_id", String(SUBJECT), nullable=False),
    Column("role", String(16), nullable=False),
    Column("assigned_by", String(SUBJECT), nullable=False),
    _instant("assigned_at"),
    PrimaryKeyConstraint("sale_id", "user_id", "role", name="pk_catalog_sale_staff"),
)

tables: KitTables = kit_tables(metadata, "catalog")  # catalog_idempotency, catalog_outbox


# -- value codecs ---------------------------------------------------------------------------------


def utc(value: datetime) -> datetime:
    """An instant read back from the database, as an aware UTC datetime (SQLite returns it naive)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def to_db(value: datetime | None) -> datetime | None:
    """An instant as stored: UTC (SQLite keeps the wall time and drops the offset, so convert first)."""
    return None if value is None else value.astimezone(UTC)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _json_value(value: Any) -> Any:
    if isinstance(value, IncrementTable):
        return value.as_lists()
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


# How to rebuild the parameter fields that are not plain JSON values; the others pass unchanged.
_PARAM_DECODERS: Mapping[str, Any] = {
    "increments": lambda tiers: IncrementTable(tuple((int(start), int(step)) for start, step in tiers)),
    "close": EnglishClose,
    "soft_close_mode": SoftCloseMode,
    "step_mode": DutchStepMode,
    "winning_rule": LuckyWinningRule,
    "options": tuple,
    "steps": lambda steps: tuple(int(step) for step in steps),
}
_PARAMS_TYPES: Mapping[str, type[FormatParams]] = {
    "english": EnglishParams,
    "dutch": DutchParams,
    "lucky": LuckyParams,
    "tender": TenderParams,
}
_PARAMS_NAMES = {kind: name for name, kind in _PARAMS_TYPES.items()}


def encode_terms(terms: LotTerms) -> str:
    """LotTerms as JSON text: the format-independent fields plus `params` tagged with its kind.

    Stored values were validated when written, so decoding rebuilds them without validating again.
    """
    params = terms.params
    return _dumps(
        {
            "currency": terms.currency,
            "format": terms.format.value,
            "buyer_premium_bp": terms.buyer_premium_bp,
            "tax_bp": terms.tax_bp,
            "confirmation_timeout_ms": terms.confirmation_timeout_ms,
            "seed": terms.seed,
            "extra": dict(terms.extra),
            "params_kind": _PARAMS_NAMES[type(params)],
            "params": {f.name: _json_value(getattr(params, f.name)) for f in dataclasses.fields(params)},
        }
    )


def decode_terms(text_value: str) -> LotTerms:
    data = json.loads(text_value)
    params_type = _PARAMS_TYPES[data["params_kind"]]
    known = {f.name for f in dataclasses.fields(params_type)}
    params = params_type(
        **{
            name: _PARAM_DECODERS[name](value) if name in _PARAM_DECODERS and value is not None else value
            for name, value in data["params"].items()
            if name in known
        }
    )
    return LotTerms(
        currency=data["currency"],
        format=Format(data["format"]),
        params=params,
        buyer_premium_bp=data["buyer_premium_bp"],
        tax_bp=data["tax_bp"],
        confirmation_timeout_ms=data["confirmation_timeout_ms"],
        seed=data["seed"],
        extra=dict(data.get("extra", {})),
    )


# -- rows <-> entities ------------------------------------------------------------------------------
# `*_row` gives every column but `version` (the unit of work owns it); `*_of` rebuilds the entity.


def product_row(product: Product) -> dict[str, Any]:
    return {
        "id": product.id,
        "seller_id": product.seller_id,
        "title": product.title,
        "title_folded": product.title.lower(),
        "description": product.description,
        "image_urls": _dumps(list(product.image_urls)),
        "attributes": _dumps(product.attributes),
        "quantity": product.quantity,
        "created_at": to_db(product.created_at),
        "updated_at": to_db(product.updated_at),
    }


def product_of(row: Any) -> Product:
    return Product(
        id=row.id,
        seller_id=row.seller_id,
        title=row.title,
        description=row.description,
        image_urls=tuple(json.loads(row.image_urls)),
        attributes=dict(json.loads(row.attributes)),
        quantity=row.quantity,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )


def sale_row(sale: Sale) -> dict[str, Any]:
    timing = sale.timing
    session = timing if isinstance(timing, LiveSession) else None
    return {
        "id": sale.id,
        "owner_id": sale.owner_id,
        "title": sale.title,
        "title_folded": sale.title.lower(),
        "description": sale.description,
        "time_zone": sale.time_zone,
        "kind": sale.kind.value,
        "session_date": session.date if session else None,
        "time_slots": _dumps([[s.start_minute, s.end_minute] for s in session.time_slots]) if session else None,
        "registration_rule": sale.registration.rule.value,
        "allow_list": _dumps(list(sale.registration.allow_list)),
        "state": sale.state.value,
        "starts_at": to_db(sale.starts_at),
        "ends_at": to_db(sale.ends_at),
        "created_at": to_db(sale.created_at),
        "updated_at": to_db(sale.updated_at),
        "published_at": to_db(sale.published_at),
        "cancel_reason": sale.cancel_reason,
    }


def sale_of(row: Any) -> Sale:
    starts_at, ends_at = utc(row.starts_at), utc(row.ends_at)
    timing: LiveSession | TimedTender
    if SaleKind(row.kind) is SaleKind.LIVE_SESSION:
        session_date: date = row.session_date
        slots = tuple(TimeSlot(start, end) for start, end in json.loads(row.time_slots))
        timing = LiveSession(session_date, slots)
    else:
        timing = TimedTender(starts_at, ends_at)
    return Sale(
        id=row.id,
        owner_id=row.owner_id,
        title=row.title,
        description=row.description,
        time_zone=row.time_zone,
        timing=timing,
        registration=RegistrationPolicy(ApprovalRule(row.registration_rule), tuple(json.loads(row.allow_list))),
        state=State(row.state),
        starts_at=starts_at,
        ends_at=ends_at,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        published_at=utc_or_none(row.published_at),
        cancel_reason=row.cancel_reason,
    )


def lot_row(lot: Lot) -> dict[str, Any]:
    return {
        "id": lot.id,
        "group_id": lot.group_id,
        "sale_id": lot.sale_id,
        "product_id": lot.product_id,
        "seller_id": lot.seller_id,
        "room_index": lot.room_index,
        "room_count": lot.room_count,
        "position": lot.position,
        "duration_slots": lot.duration_slots,
        "format": lot.terms.format.value,
        "currency": lot.terms.currency,
        "terms": encode_terms(lot.terms),
        "state": lot.state.value,
        "created_at": to_db(lot.created_at),
        "updated_at": to_db(lot.updated_at),
        "estimated_start": to_db(lot.estimated_start),
        "started_at": to_db(lot.started_at),
        "closed_at": to_db(lot.closed_at),
        "outcome": lot.outcome.value if lot.outcome else None,
        "winner_id": lot.winner_id,
        "hammer_price_minor": lot.hammer_price,
        "room_sequence": lot.room_sequence,
    }


def lot_of(row: Any) -> Lot:
    return Lot(
        id=row.id,
        group_id=row.group_id,
        sale_id=row.sale_id,
        product_id=row.product_id,
        seller_id=row.seller_id,
        room_index=row.room_index,
        room_count=row.room_count,
        position=row.position,
        duration_slots=row.duration_slots,
        terms=decode_terms(row.terms),
        state=State(row.state),
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        estimated_start=utc_or_none(row.estimated_start),
        started_at=utc_or_none(row.started_at),
        closed_at=utc_or_none(row.closed_at),
        outcome=LotOutcome(row.outcome) if row.outcome else None,
        winner_id=row.winner_id,
        hammer_price=row.hammer_price_minor,
        room_sequence=row.room_sequence or 0,
    )


def registration_row(registration: Registration) -> dict[str, Any]:
    return {
        "id": registration.id,
        "sale_id": registration.sale_id,
        "bidder_id": registration.bidder_id,
        "status": registration.status.value,
        "created_at": to_db(registration.created_at),
        "reason": registration.reason,
        "decided_by": registration.decided_by,
        "decided_at": to_db(registration.decided_at),
    }


def registration_of(row: Any) -> Registration:
    return Registration(
        id=row.id,
        sale_id=row.sale_id,
        bidder_id=row.bidder_id,
        status=RegistrationStatus(row.status),
        created_at=utc(row.created_at),
        reason=row.reason,
        decided_by=row.decided_by,
        decided_at=utc_or_none(row.decided_at),
    )


def reservation_row(reservation: Reservation) -> dict[str, Any]:
    return {
        "id": reservation.id,
        "group_id": reservation.group_id,
        "sale_id": reservation.sale_id,
        "bidder_id": reservation.bidder_id,
        "state": reservation.state.value,
        "created_at": to_db(reservation.created_at),
        "estimated_start": to_db(reservation.estimated_start),
        "cancelled_at": to_db(reservation.cancelled_at),
    }


def reservation_of(row: Any) -> Reservation:
    return Reservation(
        id=row.id,
        group_id=row.group_id,
        sale_id=row.sale_id,
        bidder_id=row.bidder_id,
        state=ReservationState(row.state),
        created_at=utc(row.created_at),
        estimated_start=utc_or_none(row.estimated_start),
        cancelled_at=utc_or_none(row.cancelled_at),
    )


def seat_row(seat: Seat) -> dict[str, Any]:
    return {
        "group_id": seat.group_id,
        "bidder_id": seat.bidder_id,
        "sale_id": seat.sale_id,
        "lot_id": seat.lot_id,
        "room_index": seat.room_index,
        "ordinal": seat.ordinal,
        "assigned_at": to_db(seat.assigned_at),
    }


def seat_of(row: Any) -> Seat:
    return Seat(
        group_id=row.group_id,
        bidder_id=row.bidder_id,
        sale_id=row.sale_id,
        lot_id=row.lot_id,
        room_index=row.room_index,
        ordinal=row.ordinal,
        assigned_at=utc(row.assigned_at),
    )


def staff_row(assignment: StaffAssignment) -> dict[str, Any]:
    return {
        "sale_id": assignment.sale_id,
        "user_id": assignment.user_id,
        "role": assignment.role.value,
        "assigned_by": assignment.assigned_by,
        "assigned_at": to_db(assignment.assigned_at),
    }


def staff_of(row: Any) -> StaffAssignment:
    return StaffAssignment(
        sale_id=row.sale_id,
        user_id=row.user_id,
        role=StaffRole(row.role),
        assigned_by=row.assigned_by,
        assigned_at=utc(row.assigned_at),
    )
