"""Domain events the catalog publishes, one class per gavel.events.v1 message of catalog_events.proto.

Use cases hand them to the unit of work (`collect`), which stores them with the change and
publishes them after commit (transactional outbox). `subject` is the NATS subject:
`gavel.catalog.<kind>.<id>`, the id being what consumers filter or partition on. `event_id` is
also the `Nats-Msg-Id`, so a re-publish after a crash is deduplicated by JetStream.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import ClassVar

from catalog.domain.lots import Lot, LotOutcome
from catalog.domain.registrations import RegistrationStatus
from catalog.domain.retiming import Retimed
from catalog.domain.sales import Sale, SaleKind
from catalog.domain.staff import StaffAssignment
from gavel_core.formats import Format, LotTerms

SUBJECT_PREFIX = "gavel.catalog"
STREAM = "CATALOG"  # subjects gavel.catalog.>


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogEvent:
    KIND: ClassVar[str] = ""

    event_id: str
    occurred_at: datetime

    @property
    def subject_id(self) -> str:
        raise NotImplementedError

    @property
    def subject(self) -> str:
        return f"{SUBJECT_PREFIX}.{self.KIND}.{self.subject_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SalePublished(CatalogEvent):
    KIND: ClassVar[str] = "sale_published"

    sale_id: str
    owner_id: str
    title: str
    kind: SaleKind
    time_zone: str
    starts_at: datetime
    ends_at: datetime
    lot_ids: tuple[str, ...]

    @property
    def subject_id(self) -> str:
        return self.sale_id


@dataclass(frozen=True, slots=True, kw_only=True)
class SaleCancelled(CatalogEvent):
    KIND: ClassVar[str] = "sale_cancelled"

    sale_id: str
    reason: str
    lot_ids: tuple[str, ...]

    @property
    def subject_id(self) -> str:
        return self.sale_id


@dataclass(frozen=True, slots=True)
class PublishedLot:
    """A lot as it was published: its identity, place and terms (secrets included), which nothing
    changes afterwards (only drafts are edited). LotScheduled, LotStarting and LotWithdrawn carry
    it, and the room runs the lot from exactly this."""

    lot_id: str
    group_id: str
    sale_id: str
    product_id: str
    seller_id: str
    room_index: int
    room_count: int
    position: int
    duration_slots: int
    estimated_start: datetime | None
    terms: LotTerms
    registration_required: bool = True

    @classmethod
    def of(cls, lot: Lot, sale: Sale | None) -> PublishedLot:
        """`sale` None: a sale whose registration rule is not known here (taken as required)."""
        return cls(
            lot_id=lot.id,
            group_id=lot.group_id,
            sale_id=lot.sale_id,
            product_id=lot.product_id,
            seller_id=lot.seller_id,
            room_index=lot.room_index,
            room_count=lot.room_count,
            position=lot.position,
            duration_slots=lot.duration_slots,
            estimated_start=lot.estimated_start,
            terms=lot.terms,
            registration_required=sale.registration.required if sale is not None else True,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LotScheduled(CatalogEvent):
    """Carries the terms, secrets included: the room and tender engines run the lot from this."""

    KIND: ClassVar[str] = "lot_scheduled"

    lot_id: str
    group_id: str
    sale_id: str
    product_id: str
    seller_id: str
    room_index: int
    room_count: int
    position: int
    duration_slots: int
    estimated_start: datetime | None
    terms: LotTerms
    registration_required: bool = True

    @classmethod
    def of(cls, lot: Lot, event_id: str, now: datetime, sale: Sale | None = None) -> LotScheduled:
        published = PublishedLot.of(lot, sale)
        return cls(
            event_id=event_id, occurred_at=now, **{f.name: getattr(published, f.name) for f in fields(published)}
        )

    @property
    def published(self) -> PublishedLot:
        return PublishedLot(**{f.name: getattr(self, f.name) for f in fields(PublishedLot)})

    @property
    def subject_id(self) -> str:
        return self.lot_id


@dataclass(frozen=True, slots=True, kw_only=True)
class LotStarting(CatalogEvent):
    KIND: ClassVar[str] = "lot_starting"

    lot_id: str
    group_id: str
    sale_id: str
    format: Format
    started_at: datetime
    lot: PublishedLot | None = None  # what the room runs; always set by StartLot

    @property
    def subject_id(self) -> str:
        return self.lot_id


@dataclass(frozen=True, slots=True, kw_only=True)
class LotWithdrawn(CatalogEvent):
    """A published lot stopped before it started (WithdrawLot, or its sale cancelled)."""

    KIND: ClassVar[str] = "lot_withdrawn"

    lot: PublishedLot
    reason: str
    sale_cancelled: bool
    withdrawn_by: str

    @property
    def subject_id(self) -> str:
        return self.lot.lot_id


@dataclass(frozen=True, slots=True, kw_only=True)
class SaleStaffChanged(CatalogEvent):
    """The whole staff of a sale after a change: the last one on a sale's subject is its staff."""

    KIND: ClassVar[str] = "sale_staff_changed"

    sale_id: str
    staff: tuple[StaffAssignment, ...]

    @property
    def subject_id(self) -> str:
        return self.sale_id


@dataclass(frozen=True, slots=True, kw_only=True)
class LotsRetimed(CatalogEvent):
    """A live-session lot started late and the groups after it moved (catalog.domain.retiming)."""

    KIND: ClassVar[str] = "lots_retimed"

    sale_id: str
    started_lot_id: str
    groups: tuple[Retimed, ...]

    @property
    def subject_id(self) -> str:
        return self.sale_id


@dataclass(frozen=True, slots=True, kw_only=True)
class LotOutcomeRecorded(CatalogEvent):
    KIND: ClassVar[str] = "lot_outcome_recorded"

    lot_id: str
    sale_id: str
    seller_id: str
    outcome: LotOutcome
    winner_id: str
    hammer_price: int | None
    currency: str
    buyer_premium_bp: int
    tax_bp: int
    closed_at: datetime
    sale_closed: bool
    room_sequence: int = 0

    @property
    def subject_id(self) -> str:
        return self.lot_id


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationCreated(CatalogEvent):
    KIND: ClassVar[str] = "reservation_created"

    reservation_id: str
    group_id: str
    sale_id: str
    bidder_id: str
    estimated_start: datetime | None

    @property
    def subject_id(self) -> str:
        return self.group_id


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationCancelled(CatalogEvent):
    KIND: ClassVar[str] = "reservation_cancelled"

    reservation_id: str
    group_id: str
    sale_id: str
    bidder_id: str

    @property
    def subject_id(self) -> str:
        return self.group_id


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationDecided(CatalogEvent):
    KIND: ClassVar[str] = "registration_decided"

    registration_id: str
    sale_id: str
    bidder_id: str
    status: RegistrationStatus
    reason: str
    decided_by: str  # empty: the sale's rule decided

    @property
    def subject_id(self) -> str:
        return self.sale_id


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatAssigned(CatalogEvent):
    KIND: ClassVar[str] = "seat_assigned"

    group_id: str
    lot_id: str
    sale_id: str
    bidder_id: str
    room_index: int

    @property
    def subject_id(self) -> str:
        return self.lot_id
