"""SQL implementations of the repository ports of `catalog.app.ports`, over one unit of work's session.

Entities stay plain dataclasses; a `Tracker` gives the unit of work what an ORM session would:
  * an identity map — loading a row that is already tracked returns the tracked object, so a use
    case that reaches one lot twice (by id, then with its group) changes one object;
  * change tracking — every tracked entity is compared with the row it was loaded from, and only
    changed columns are written;
  * optimistic locking — every UPDATE and DELETE names the `version` it read and bumps it; no row
    matched means a concurrent transaction changed it first (gavel_core.errors.Aborted);
  * autoflush — pending deletes, updates and inserts are written before every query and on
    commit, so queries see the transaction's own changes.
A unique-constraint violation while writing (two bidders taking one seat ordinal, a second active
reservation, a second registration) is Aborted too: the client retries with the same request id.

Filters are the SQL translation of the reference predicates in `catalog.domain.queries`; lists
use keyset paging on the sort keys defined there (`WHERE (k0, k1) > (:a, :b) ORDER BY k0, k1`).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    delete,
    exists,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.adapters import orm
from catalog.domain.access import Viewer
from catalog.domain.lots import Lot, RunningOrderEnd
from catalog.domain.paging import Page, PageRequest, SortKey, instant_of_key
from catalog.domain.products import Product
from catalog.domain.queries import (
    LotFilter,
    ProductFilter,
    RegistrationFilter,
    ReservationFilter,
    SaleFilter,
    lot_key,
    product_key,
    registration_key,
    reservation_key,
    sale_key,
)
from catalog.domain.registrations import Registration
from catalog.domain.reservations import Reservation, ReservationState
from catalog.domain.sales import Sale
from catalog.domain.seating import Seat
from catalog.domain.staff import StaffAssignment
from catalog.domain.states import State
from gavel_core.errors import Aborted, FieldViolation, InvalidArgument

E = TypeVar("E")
Key = tuple[Any, ...]

IN_CHUNK = 500  # ids per IN (...) list: far below SQLite's and asyncpg's bind-parameter limits
RETRY_HINT = "retry with the same request_id"


@dataclass(frozen=True)
class EntityMapper(Generic[E]):
    """How one entity type lives in one table."""

    name: str  # the resource name in error messages
    table: Table
    key_columns: tuple[str, ...]
    key_of: Callable[[E], Key]
    to_row: Callable[[E], dict[str, Any]]
    of_row: Callable[[Any], E]
    rank: int  # insert order (parents first); deletes go in reverse
    versioned: bool = True

    def row_key(self, row: Any) -> Key:
        return tuple(getattr(row, column) for column in self.key_columns)

    def matches_key(self, key: Key) -> ColumnElement[bool]:
        return and_(*(self.table.c[column] == value for column, value in zip(self.key_columns, key, strict=True)))


PRODUCT: EntityMapper[Product] = EntityMapper(
    "product", orm.products, ("id",), lambda p: (p.id,), orm.product_row, orm.product_of, 0
)
SALE: EntityMapper[Sale] = EntityMapper("sale", orm.sales, ("id",), lambda s: (s.id,), orm.sale_row, orm.sale_of, 1)
LOT: EntityMapper[Lot] = EntityMapper("lot", orm.lots, ("id",), lambda lot: (lot.id,), orm.lot_row, orm.lot_of, 2)
REGISTRATION: EntityMapper[Registration] = EntityMapper(
    "registration", orm.registrations, ("id",), lambda r: (r.id,), orm.registration_row, orm.registration_of, 3
)
RESERVATION: EntityMapper[Reservation] = EntityMapper(
    "reservation", orm.reservations, ("id",), lambda r: (r.id,), orm.reservation_row, orm.reservation_of, 4
)
SEAT: EntityMapper[Seat] = EntityMapper(
    "seat",
    orm.seats,
    ("group_id", "bidder_id"),
    lambda s: (s.group_id, s.bidder_id),
    orm.seat_row,
    orm.seat_of,
    5,
    versioned=False,  # seats never change
)
STAFF: EntityMapper[StaffAssignment] = EntityMapper(
    "staff assignment",
    orm.staff,
    ("sale_id", "user_id", "role"),
    lambda a: (a.sale_id, a.user_id, a.role.value),
    orm.staff_row,
    orm.staff_of,
    6,
    versioned=False,  # assignments are added and removed, never changed
)


def _state(entity: Any) -> tuple[Any, ...]:
    """The entity's field values, copied one level deep: a cheap way to see whether it changed."""
    return tuple(
        copy.copy(value) if isinstance(value, dict | list | set) else value
        for value in (getattr(entity, field.name) for field in dataclasses.fields(entity))
    )


@dataclass(eq=False)
class _Entry:
    mapper: EntityMapper[Any]
    entity: Any
    key: Key
    sequence: int
    snapshot: dict[str, Any] | None  # the row as the database has it; None: not inserted yet
    version: int = 0
    deleted: bool = False
    state: tuple[Any, ...] = ()  # the entity's fields when `snapshot` was taken

    def written(self, row: dict[str, Any]) -> None:
        self.snapshot, self.state = row, _state(self.entity)


class Tracker:
    """Identity map, change tracking and optimistic locking for one transaction (see module doc)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._entries: dict[tuple[str, Key], _Entry] = {}
        self._sequence = itertools.count()

    def _entry(self, mapper: EntityMapper[Any], key: Key) -> _Entry | None:
        return self._entries.get((mapper.table.name, key))

    def load(self, mapper: EntityMapper[E], row: Any) -> E:
        """The tracked entity for `row`: the one already tracked, else a new one built from the row."""
        key = mapper.row_key(row)
        entry = self._entry(mapper, key)
        if entry is not None:
            entity: E = entry.entity
            return entity
        entity = mapper.of_row(row)
        version = row.version if mapper.versioned else 0
        entry = _Entry(mapper, entity, key, next(self._sequence), None, version)
        entry.written(mapper.to_row(entity))
        self._entries[(mapper.table.name, key)] = entry
        return entity

    def add(self, mapper: EntityMapper[E], entity: E) -> None:
        key = mapper.key_of(entity)
        entry = self._entry(mapper, key)
        if entry is not None and not entry.deleted:
            return
        self._entries[(mapper.table.name, key)] = _Entry(mapper, entity, key, next(self._sequence), None)

    def remove(self, mapper: EntityMapper[E], entity: E) -> None:
        entry = self._entry(mapper, mapper.key_of(entity))
        if entry is not None:
            entry.deleted = True

    async def get(self, mapper: EntityMapper[E], key: Key) -> E | None:
        entry = self._entry(mapper, key)
        if entry is not None:
            return None if entry.deleted else entry.entity  # type: ignore[no-any-return]
        row = (await self.session.execute(select(mapper.table).where(mapper.matches_key(key)))).first()
        return None if row is None else self.load(mapper, row)

    async def get_many(self, mapper: EntityMapper[E], ids: Collection[str]) -> dict[str, E]:
        found: dict[str, E] = {}
        missing: list[str] = []
        for entity_id in set(ids):
            entry = self._entry(mapper, (entity_id,))
            if entry is None:
                missing.append(entity_id)
            elif not entry.deleted:
                found[entity_id] = entry.entity
        id_column = mapper.table.c[mapper.key_columns[0]]
        for chunk in _chunks(sorted(missing)):
            for entity in await self.all(mapper, select(mapper.table).where(id_column.in_(chunk))):
                found[mapper.key_of(entity)[0]] = entity
        return found

    async def all(self, mapper: EntityMapper[E], statement: Select[Any]) -> list[E]:
        """Run a query of `mapper`'s table after flushing, returning tracked entities in row order."""
        await self.flush()
        rows = (await self.session.execute(statement)).all()
        return [self.load(mapper, row) for row in rows]

    async def scalar(self, statement: Select[Any]) -> int:
        await self.flush()
        value = (await self.session.execute(statement)).scalar_one()
        return int(value)

    async def flush(self) -> None:
        """Write every pending change: deletes (children first), updates, then inserts (parents first).

        Deletes and updates go before inserts so that a row may take a unique value another row
        gave up in the same transaction (a new active reservation after cancelling the old one).
        """
        entries = sorted(self._entries.values(), key=lambda e: (e.mapper.rank, e.sequence))
        try:
            for entry in reversed(entries):
                if entry.deleted:
                    if entry.snapshot is not None:
                        await self._delete(entry)
                    del self._entries[(entry.mapper.table.name, entry.key)]
            for entry in entries:
                if entry.snapshot is not None and not entry.deleted:
                    await self._update(entry)
            for entry in entries:
                if entry.snapshot is None and not entry.deleted:
                    await self._insert(entry)
        except IntegrityError:
            raise Aborted(f"a concurrent request changed the same records; {RETRY_HINT}") from None

    async def _insert(self, entry: _Entry) -> None:
        row = entry.mapper.to_row(entry.entity)
        values = {**row, "version": 1} if entry.mapper.versioned else row
        await self.session.execute(insert(entry.mapper.table).values(**values))
        entry.written(row)
        entry.version = 1

    async def _update(self, entry: _Entry) -> None:
        assert entry.snapshot is not None
        if _state(entry.entity) == entry.state:
            return
        row = entry.mapper.to_row(entry.entity)
        changes = {column: value for column, value in row.items() if entry.snapshot[column] != value}
        if not changes:
            entry.written(row)
            return
        mapper, table = entry.mapper, entry.mapper.table
        statement = update(table).where(mapper.matches_key(entry.key))
        if mapper.versioned:
            statement = statement.where(table.c.version == entry.version).values(**changes, version=entry.version + 1)
        else:
            statement = statement.values(**changes)
        result = await self.session.execute(statement)
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise self._conflict(entry)
        entry.written(row)
        entry.version += 1

    async def _delete(self, entry: _Entry) -> None:
        mapper, table = entry.mapper, entry.mapper.table
        statement = delete(table).where(mapper.matches_key(entry.key))
        if mapper.versioned:
            statement = statement.where(table.c.version == entry.version)
        result = await self.session.execute(statement)
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise self._conflict(entry)

    @staticmethod
    def _conflict(entry: _Entry) -> Aborted:
        name = entry.mapper.name
        return Aborted(f"{name} {entry.key[0]!r} was changed by a concurrent request; {RETRY_HINT}")


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


# -- filters and keyset paging ----------------------------------------------------------------------


def _visible(table: Table, owner_column: str, viewer: Viewer) -> list[ColumnElement[bool]]:
    """Drafts only for their owner, or for everyone who sees all drafts (Viewer.sees_draft_of)."""
    if viewer.sees_all_drafts:
        return []
    not_draft = table.c.state != State.DRAFT.value
    if not viewer.subject:
        return [not_draft]
    return [or_(not_draft, table.c[owner_column] == viewer.subject)]


def _title_contains(table: Table, query: str | None) -> list[ColumnElement[bool]]:
    """Case-insensitive substring of the title; `%` and `_` in the query match themselves."""
    if not query:
        return []
    return [table.c.title_folded.contains(query.lower(), autoescape=True)]


def _states(table: Table, column: str, states: Collection[Any]) -> list[ColumnElement[bool]]:
    return [table.c[column].in_(sorted(state.value for state in states))] if states else []


def _range(column: Any, start: Any, end: Any) -> list[ColumnElement[bool]]:
    conditions = []
    if start is not None:
        conditions.append(column >= orm.to_db(start))
    if end is not None:
        conditions.append(column < orm.to_db(end))
    return conditions


INSTANT, TEXT, NUMBER = "instant", "text", "number"


def _cursor(page: PageRequest, kinds: Sequence[str]) -> list[Any] | None:
    """The page token's sort key as column values, checked against the list's key shape."""
    if page.after is None:
        return None
    bad = InvalidArgument([FieldViolation("page.page_token", "is not a page token of this list; start again")])
    if len(page.after) != len(kinds):
        raise bad
    values: list[Any] = []
    for part, kind in zip(page.after, kinds, strict=True):
        text = kind == TEXT and isinstance(part, str)
        number = kind == NUMBER and isinstance(part, int) and -(2**31) <= part < 2**31
        if text or number:
            values.append(part)
        elif kind == INSTANT and isinstance(part, int):
            try:
                values.append(instant_of_key(part))
            except (OverflowError, ValueError):
                raise bad from None
        else:
            raise bad
    return values


def _after(columns: Sequence[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """(c0, c1, …) > (v0, v1, …), spelt out so every dialect can use the index."""
    alternatives = []
    for index, column in enumerate(columns):
        equal = [columns[i] == values[i] for i in range(index)]
        alternatives.append(and_(*equal, column > values[index]))
    return or_(*alternatives) if alternatives else false()


async def _page(
    tracker: Tracker,
    mapper: EntityMapper[E],
    where: Sequence[ColumnElement[bool]],
    order: Sequence[Any],
    kinds: Sequence[str],
    page: PageRequest,
    key: Callable[[E], SortKey],
) -> Page[E]:
    table = mapper.table
    after = _cursor(page, kinds)
    total = await tracker.scalar(select(func.count()).select_from(table).where(*where))
    statement = select(table).where(*where)
    if after is not None:
        statement = statement.where(_after(order, after))
    rows = await tracker.all(mapper, statement.order_by(*order).limit(page.size + 1))
    return Page.build(rows, page, key, total)


# -- repositories -----------------------------------------------------------------------------------


class SqlProductRepository:
    def __init__(self, tracker: Tracker) -> None:
        self._tracker = tracker

    async def get(self, product_id: str) -> Product | None:
        return await self._tracker.get(PRODUCT, (product_id,))

    async def get_many(self, product_ids: Collection[str]) -> dict[str, Product]:
        return await self._tracker.get_many(PRODUCT, product_ids)

    async def add(self, product: Product) -> None:
        self._tracker.add(PRODUCT, product)

    async def list(self, filter: ProductFilter, page: PageRequest) -> Page[Product]:
        t = orm.products
        where = _title_contains(t, filter.query)
        if filter.seller_id is not None:
            where.append(t.c.seller_id == filter.seller_id)
        return await _page(self._tracker, PRODUCT, where, (t.c.created_at, t.c.id), (INSTANT, TEXT), page, product_key)


class SqlSaleRepository:
    def __init__(self, tracker: Tracker) -> None:
        self._tracker = tracker

    async def get(self, sale_id: str) -> Sale | None:
        return await self._tracker.get(SALE, (sale_id,))

    async def get_many(self, sale_ids: Collection[str]) -> dict[str, Sale]:
        return await self._tracker.get_many(SALE, sale_ids)

    async def add(self, sale: Sale) -> None:
        self._tracker.add(SALE, sale)

    async def list(self, filter: SaleFilter, page: PageRequest) -> Page[Sale]:
        t, lots = orm.sales, orm.lots
        where = [
            *_visible(t, "owner_id", filter.viewer),
            *_states(t, "state", filter.states),
            *_range(t.c.starts_at, filter.starts_from, filter.starts_before),
            *_title_contains(t, filter.query),
        ]
        if filter.owner_id is not None:
            where.append(t.c.owner_id == filter.owner_id)
        if filter.kind is not None:
            where.append(t.c.kind == filter.kind.value)
        if filter.format is not None:
            where.append(exists().where(lots.c.sale_id == t.c.id, lots.c.format == filter.format.value))
        return await _page(self._tracker, SALE, where, (t.c.starts_at, t.c.id), (INSTANT, TEXT), page, sale_key)


def _lot_conditions(filter: LotFilter) -> list[ColumnElement[bool]]:
    t = orm.lots
    where = [
        *_visible(t, "seller_id", filter.viewer),
        *_states(t, "state", filter.states),
        *_range(t.c.estimated_start, filter.starts_from, filter.starts_before),
    ]
    for column, value in (
        ("sale_id", filter.sale_id),
        ("seller_id", filter.seller_id),
        ("product_id", filter.product_id),
    ):
        if value is not None:
            where.append(t.c[column] == value)
    if filter.format is not None:
        where.append(t.c.format == filter.format.value)
    return where


class SqlLotRepository:
    def __init__(self, tracker: Tracker) -> None:
        self._tracker = tracker

    async def get(self, lot_id: str) -> Lot | None:
        return await self._tracker.get(LOT, (lot_id,))

    async def add(self, lot: Lot) -> None:
        self._tracker.add(LOT, lot)

    async def remove(self, lot: Lot) -> None:
        self._tracker.remove(LOT, lot)

    async def list_by_sale(self, sale_id: str) -> list[Lot]:
        t = orm.lots
        statement = select(t).where(t.c.sale_id == sale_id).order_by(t.c.position, t.c.room_index)
        return await self._tracker.all(LOT, statement)

    async def end_of_running_order(self, sale_id: str) -> RunningOrderEnd:
        t = orm.lots
        count = await self._tracker.scalar(select(func.count()).select_from(t).where(t.c.sale_id == sale_id))
        if count == 0:
            return RunningOrderEnd()
        last_position = select(func.max(t.c.position)).where(t.c.sale_id == sale_id).scalar_subquery()
        statement = (
            select(t)
            .where(t.c.sale_id == sale_id, t.c.position == last_position)
            .order_by(t.c.group_id.desc(), t.c.room_index)
            .limit(1)
        )
        last = await self._tracker.all(LOT, statement)
        return RunningOrderEnd(count, last[0] if last else None)

    async def list_by_group(self, group_id: str) -> list[Lot]:
        t = orm.lots
        return await self._tracker.all(LOT, select(t).where(t.c.group_id == group_id).order_by(t.c.room_index))

    async def list_scheduled(self, filter: LotFilter, limit: int) -> list[Lot]:
        t = orm.lots
        order = (t.c.estimated_start.asc().nulls_first(), t.c.sale_id, t.c.position, t.c.room_index)
        statement = select(t).where(*_lot_conditions(filter)).order_by(*order).limit(limit)
        return await self._tracker.all(LOT, statement)

    async def list(self, filter: LotFilter, page: PageRequest) -> Page[Lot]:
        t = orm.lots
        order = (t.c.sale_id, t.c.position, t.c.room_index)
        return await _page(self._tracker, LOT, _lot_conditions(filter), order, (TEXT, NUMBER, NUMBER), page, lot_key)


class SqlReservationRepository:
    def __init__(self, tracker: Tracker) -> None:
        self._tracker = tracker

    async def get(self, reservation_id: str) -> Reservation | None:
        return await self._tracker.get(RESERVATION, (reservation_id,))

    async def add(self, reservation: Reservation) -> None:
        self._tracker.add(RESERVATION, reservation)

    async def get_active(self, group_id: str, bidder_id: str) -> Reservation | None:
        t = orm.reservations
        statement = select(t).where(t.c.group_id == group_id, t.c.bidder_id == bidder_id, t.c.state == orm.ACTIVE)
        found = await self._tracker.all(RESERVATION, statement)
        active = [r for r in found if r.state is ReservationState.ACTIVE]  # as tracked in this transaction
        return active[0] if active else None

    async def list_active_for_bidder(self, bidder_id: str, group_ids: Collection[str]) -> list[Reservation]:
        t = orm.reservations
        found: list[Reservation] = []
        for chunk in _chunks(sorted(set(group_ids))):
            statement = select(t).where(t.c.bidder_id == bidder_id, t.c.state == orm.ACTIVE, t.c.group_id.in_(chunk))
            found += await self._tracker.all(RESERVATION, statement.order_by(t.c.created_at, t.c.id))
        return [r for r in found if r.state is ReservationState.ACTIVE]

    async def list(self, filter: ReservationFilter, page: PageRequest) -> Page[Reservation]:
        t = orm.reservations
        where = [t.c.bidder_id == filter.bidder_id]
        if filter.sale_id is not None:
            where.append(t.c.sale_id == filter.sale_id)
        if not filter.include_cancelled:
            where.append(t.c.state == orm.ACTIVE)
        order = (t.c.created_at, t.c.id)
        return await _page(self._tracker, RESERVATION, where, order, (INSTANT, TEXT), page, reservation_key)


class SqlRegistrationRepository:
    def __init__(self, tracker: Tracker) -> None:
        self._tracker = tracker

    async def get(self, registration_id: str) -> Registration | None:
        return await self._tracker.get(REGISTRATION, (registration_id,))

    async def add(self, registration: Registration) -> None:
        self._tracker.add(REGISTRATION, registration)

    async def get_for(self, sale_id: str, bidder_id: str) -> Registration | None:
        t = orm.registrations
        found = await self._tracker.all(
            REGISTRATION, select(t).where(t.c.sale_id == sale_id, t.c.bidder_id == bidder_id)
        )
        return found[0] if found else None

    async def list_for_bidder(self, bidder_id: str, sale_ids: Collection[str]) -> list[Registration]:
        t = orm.registrations
        found: list[Registration] = []
        for chunk in _chunks(sorted(set(sale_ids))):
            statement = select(t).where(t.c.bidder_id == bidder_id, t.c.sale_id.in_(chunk))
            found += await self._tracker.all(REGISTRATION, statement.order_by(t.c.created_at, t.c.id))
        return found

    async def list(self, filter: RegistrationFilter, page: PageRequest) -> Page[Registration]:
        t = orm.registrations
        where = _states(t, "status", filter.statuses)
        if filter.sale_id is not None:
            where.append(t.c.sale_id == filter.sale_id)
        if filter.bidder_id is not None:
            where.append(t.c.bidder_id == filter.bidder_id)
        order = (t.c.created_at, t.c.id)
        return await _page(self._tracker, REGISTRATION, where, order, (INSTANT, TEXT), page, registration_key)


class SqlSeatRepository:
    def __init__(self, tracker: Tracker) -> None:
        self._tracker = tracker

    async def get(self, group_id: str, bidder_id: str) -> Seat | None:
        return await self._tracker.get(SEAT, (group_id, bidder_id))

    async def count(self, group_id: str) -> int:
        t = orm.seats
        return await self._tracker.scalar(select(func.count()).select_from(t).where(t.c.group_id == group_id))

    async def add(self, seat: Seat) -> None:
        self._tracker.add(SEAT, seat)


class SqlStaffRepository:
    def __init__(self, tracker: Tracker) -> None:
        self._tracker = tracker

    async def list_for_sale(self, sale_id: str) -> list[StaffAssignment]:
        t = orm.staff
        return await self._tracker.all(STAFF, select(t).where(t.c.sale_id == sale_id).order_by(t.c.role, t.c.user_id))

    async def add(self, assignment: StaffAssignment) -> None:
        self._tracker.add(STAFF, assignment)

    async def remove(self, assignment: StaffAssignment) -> None:
        self._tracker.remove(STAFF, assignment)
