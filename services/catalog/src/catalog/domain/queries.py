"""Search filters and sort orders for every list, with their meaning written as pure predicates.

A repository translates a filter into its query language; `matches` is the reference meaning an
adapter must reproduce (the unit-test fakes use it directly). Fields left as None/empty do not
filter. Text queries are case-insensitive substrings of the title (`lower(title) LIKE
lower('%' || :q || '%')`, with `%` and `_` escaped). Drafts are visible only to their owner and
to admins (`Viewer`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from catalog.domain.access import Viewer
from catalog.domain.lots import Lot
from catalog.domain.paging import SortKey, instant_key
from catalog.domain.products import Product
from catalog.domain.registrations import Registration, RegistrationStatus
from catalog.domain.reservations import Reservation, ReservationState
from catalog.domain.sales import Sale, SaleKind
from catalog.domain.states import State
from catalog.domain.validation import MAX_QUERY, check_id, check_text, check_time_range
from gavel_core.errors import Violations
from gavel_core.formats import Format

# Scopes name the list a page token belongs to, so a token cannot be replayed against another list.
PRODUCTS = "products"
SALES = "sales"
LOTS = "lots"
RESERVATIONS = "reservations"
REGISTRATIONS = "registrations"


def _text_matches(query: str | None, title: str) -> bool:
    return not query or query.lower() in title.lower()


def _in_range(moment: datetime | None, start: datetime | None, end: datetime | None) -> bool:
    if start is None and end is None:
        return True
    if moment is None:
        return False
    return (start is None or moment >= start) and (end is None or moment < end)


def check_query(violations: Violations, path: str, query: str | None) -> None:
    if query:
        check_text(violations, path, query, max_length=MAX_QUERY)


@dataclass(frozen=True, slots=True)
class ProductFilter:
    seller_id: str | None = None
    query: str | None = None

    def validate(self) -> None:
        violations = Violations()
        check_id(violations, "seller_id", self.seller_id or "", required=False)
        check_query(violations, "query", self.query)
        violations.raise_if_any()

    def matches(self, product: Product) -> bool:
        return (self.seller_id is None or product.seller_id == self.seller_id) and _text_matches(
            self.query, product.title
        )


def product_key(product: Product) -> SortKey:
    """Products: oldest first, by (created_at, id)."""
    return instant_key(product.created_at), product.id


@dataclass(frozen=True, slots=True)
class SaleFilter:
    viewer: Viewer
    owner_id: str | None = None
    states: frozenset[State] = frozenset()
    kind: SaleKind | None = None
    format: Format | None = None  # sales holding at least one lot of this format (EXISTS on lots)
    starts_from: datetime | None = None
    starts_before: datetime | None = None
    query: str | None = None

    def validate(self) -> None:
        violations = Violations()
        check_id(violations, "seller_id", self.owner_id or "", required=False)
        check_time_range(violations, "starts_from", self.starts_from, "starts_before", self.starts_before)
        check_query(violations, "query", self.query)
        violations.raise_if_any()

    def matches(self, sale: Sale, formats_in_sale: frozenset[Format]) -> bool:
        return (
            (sale.state is not State.DRAFT or self.viewer.sees_draft_of(sale.owner_id))
            and (self.owner_id is None or sale.owner_id == self.owner_id)
            and (not self.states or sale.state in self.states)
            and (self.kind is None or sale.kind is self.kind)
            and (self.format is None or self.format in formats_in_sale)
            and _in_range(sale.starts_at, self.starts_from, self.starts_before)
            and _text_matches(self.query, sale.title)
        )


def sale_key(sale: Sale) -> SortKey:
    """Sales: soonest first, by (starts_at, id)."""
    return instant_key(sale.starts_at), sale.id


@dataclass(frozen=True, slots=True)
class LotFilter:
    viewer: Viewer
    sale_id: str | None = None
    seller_id: str | None = None
    product_id: str | None = None
    states: frozenset[State] = frozenset()
    format: Format | None = None
    starts_from: datetime | None = None  # on estimated_start; lots without one never match a range
    starts_before: datetime | None = None

    def validate(self) -> None:
        violations = Violations()
        check_id(violations, "sale_id", self.sale_id or "", required=False)
        check_id(violations, "seller_id", self.seller_id or "", required=False)
        check_time_range(violations, "starts_from", self.starts_from, "starts_before", self.starts_before)
        violations.raise_if_any()

    def matches(self, lot: Lot) -> bool:
        return (
            (lot.state is not State.DRAFT or self.viewer.sees_draft_of(lot.seller_id))
            and (self.sale_id is None or lot.sale_id == self.sale_id)
            and (self.seller_id is None or lot.seller_id == self.seller_id)
            and (self.product_id is None or lot.product_id == self.product_id)
            and (not self.states or lot.state in self.states)
            and (self.format is None or lot.terms.format is self.format)
            and _in_range(lot.estimated_start, self.starts_from, self.starts_before)
        )


def lot_key(lot: Lot) -> SortKey:
    """Lots: by (sale_id, position, room_index) — a sale's running order, rooms together."""
    return lot.sale_id, lot.position, lot.room_index


def lot_schedule_key(lot: Lot) -> SortKey:
    """The schedule's order: by estimated start, then running order (lots it lists all have a start)."""
    start = instant_key(lot.estimated_start) if lot.estimated_start else 0
    return start, lot.sale_id, lot.position, lot.room_index


@dataclass(frozen=True, slots=True)
class ReservationFilter:
    bidder_id: str
    sale_id: str | None = None
    include_cancelled: bool = False

    def validate(self) -> None:
        violations = Violations()
        check_id(violations, "sale_id", self.sale_id or "", required=False)
        violations.raise_if_any()

    def matches(self, reservation: Reservation) -> bool:
        return (
            reservation.bidder_id == self.bidder_id
            and (self.sale_id is None or reservation.sale_id == self.sale_id)
            and (self.include_cancelled or reservation.state is ReservationState.ACTIVE)
        )


def reservation_key(reservation: Reservation) -> SortKey:
    """Reservations: oldest first, by (created_at, id)."""
    return instant_key(reservation.created_at), reservation.id


@dataclass(frozen=True, slots=True)
class RegistrationFilter:
    sale_id: str | None = None
    bidder_id: str | None = None
    statuses: frozenset[RegistrationStatus] = field(default_factory=frozenset)

    def validate(self) -> None:
        violations = Violations()
        check_id(violations, "sale_id", self.sale_id or "", required=False)
        check_id(violations, "bidder_id", self.bidder_id or "", required=False)
        violations.raise_if_any()

    def matches(self, registration: Registration) -> bool:
        return (
            (self.sale_id is None or registration.sale_id == self.sale_id)
            and (self.bidder_id is None or registration.bidder_id == self.bidder_id)
            and (not self.statuses or registration.status in self.statuses)
        )


def registration_key(registration: Registration) -> SortKey:
    """Registrations: oldest first, by (created_at, id)."""
    return instant_key(registration.created_at), registration.id
