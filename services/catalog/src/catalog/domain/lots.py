"""Lots: one unit of a product in a sale, run in its own room, with a format and its parameters.

A product of quantity N enters a sale as a *group* of N lots (room_index 0..N-1) that share
terms, position and start time; the group's id is its room-0 lot's id. Sellers edit, remove and
reorder whole groups; the room service runs, and closes, each lot on its own.

The format and its parameters are `gavel_core.formats.LotTerms`, the very value the room and
tender engines run, so catalog validates exactly what will be executed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from catalog.domain.products import Product
from catalog.domain.sales import Sale, SaleKind
from catalog.domain.states import LOT_TRANSITIONS, State, require_state, transition
from catalog.domain.validation import check_id
from gavel_core.auth import Principal
from gavel_core.errors import FailedPrecondition, InvalidArgument, Violations
from gavel_core.formats import (
    DutchParams,
    EnglishParams,
    LotTerms,
    LuckyParams,
    TenderParams,
)
from gavel_core.money import validate_amount

MAX_DURATION_SLOTS = 36  # six hours of 10-minute slots for one lot
MAX_LOTS_PER_SALE = 1_000  # lots (rooms), not groups
TERMS_FROZEN = "TERMS_FROZEN"
LOT_LIVE = "LOT_LIVE"


class LotOutcome(StrEnum):
    SOLD = "sold"
    PASSED = "passed"  # ended unsold
    WITHDRAWN = "withdrawn"  # stopped while live: the lot ends cancelled


@dataclass(frozen=True, slots=True)
class LotSpec:
    """What a seller gives for a lot: the product, the terms and (live sessions) its length in slots."""

    product_id: str
    terms: LotTerms
    duration_slots: int = 0  # live session: 0 means one slot; timed tender: must be 0

    def validate(self, kind: SaleKind, prefix: str = "lot") -> None:
        violations = Violations()
        check_id(violations, f"{prefix}.product_id", self.product_id)
        try:
            self.terms.validate(prefix)
        except InvalidArgument as exc:  # report the terms' problems together with the rest
            violations.items.extend(exc.violations)
        live = kind is SaleKind.LIVE_SESSION
        if self.terms.format.is_live != live:
            wanted = "english, dutch or lucky" if live else "tender"
            violations.add(f"{prefix}.format", f"a {kind.value.replace('_', ' ')} takes {wanted} lots")
        if live:
            violations.require(
                0 <= self.duration_slots <= MAX_DURATION_SLOTS,
                f"{prefix}.duration_slots",
                f"must be between 1 and {MAX_DURATION_SLOTS} ten-minute slots (0 means 1)",
            )
        else:
            violations.require(self.duration_slots == 0, f"{prefix}.duration_slots", "timed tender lots take no slots")
        violations.raise_if_any()

    def slots_for(self, kind: SaleKind) -> int:
        return max(self.duration_slots, 1) if kind is SaleKind.LIVE_SESSION else 0


@dataclass(slots=True)
class Lot:
    id: str
    group_id: str
    sale_id: str
    product_id: str
    seller_id: str
    room_index: int
    room_count: int
    position: int
    duration_slots: int
    terms: LotTerms
    state: State
    created_at: datetime
    updated_at: datetime
    estimated_start: datetime | None = None
    started_at: datetime | None = None
    closed_at: datetime | None = None
    outcome: LotOutcome | None = None
    winner_id: str = ""
    hammer_price: int | None = None
    room_sequence: int = 0  # the lot_sequence of the room's batch that ended the lot

    @property
    def is_live_format(self) -> bool:
        return self.terms.format.is_live

    def require_draft(self, action: str) -> None:
        require_state("lot", self.id, self.state, (State.DRAFT,), action)

    def edit(self, terms: LotTerms, duration_slots: int, now: datetime) -> None:
        """Replace the terms of a draft; the lot keeps its own secret seed."""
        self.require_editable()
        self.terms = dataclasses.replace(terms, seed=self.terms.seed)
        self.duration_slots = duration_slots
        self.updated_at = now

    def require_editable(self) -> None:
        """Published terms are frozen: what the room runs is exactly what was published (TERMS_FROZEN)."""
        if self.state is not State.DRAFT:
            raise FailedPrecondition(
                TERMS_FROZEN,
                f"lot {self.id!r} is {self.state.value}: its terms were frozen when it was published; "
                "withdraw it and add a new lot instead",
                {"lot_id": self.id, "current_state": self.state.value},
            )

    def schedule(self, now: datetime) -> None:
        self.state = transition(LOT_TRANSITIONS, "lot", self.id, self.state, State.SCHEDULED, "schedule")
        self.updated_at = now

    def start(self, now: datetime) -> None:
        self.state = transition(LOT_TRANSITIONS, "lot", self.id, self.state, State.LIVE, "start")
        self.started_at = now
        self.updated_at = now

    def cancel(self, now: datetime) -> None:
        self.state = transition(LOT_TRANSITIONS, "lot", self.id, self.state, State.CANCELLED, "cancel")
        self.updated_at = now

    def withdraw(self, now: datetime) -> None:
        """Stop a published lot before it starts; a live lot is stopped in the room (LOT_LIVE)."""
        if self.state is State.LIVE:
            raise FailedPrecondition(
                LOT_LIVE,
                f"lot {self.id!r} is live: a sale admin stops it in the room (RoomService.Withdraw)",
                {"lot_id": self.id, "current_state": self.state.value},
            )
        require_state("lot", self.id, self.state, (State.SCHEDULED,), "withdraw")
        self.cancel(now)

    def records(self, result: LotResult) -> bool:
        """This ended lot already holds exactly `result` (a repeated report changes nothing)."""
        target = State.CANCELLED if result.outcome is LotOutcome.WITHDRAWN else State.CLOSED
        return (
            self.state is target
            and self.outcome is result.outcome
            and self.winner_id == result.winner_id
            and self.hammer_price == result.hammer_price
            and self.room_sequence == result.room_sequence
        )

    def close(self, result: LotResult, now: datetime) -> None:
        """Record how a live lot ended: sold or passed closes it, withdrawn cancels it."""
        target = State.CANCELLED if result.outcome is LotOutcome.WITHDRAWN else State.CLOSED
        state = transition(LOT_TRANSITIONS, "lot", self.id, self.state, target, "close")
        result.validate(self, now)
        self.state = state
        self.outcome = result.outcome
        self.winner_id = result.winner_id
        self.hammer_price = result.hammer_price
        self.room_sequence = result.room_sequence
        self.closed_at = result.closed_at or now
        self.updated_at = now


@dataclass(frozen=True, slots=True)
class LotResult:
    """What the room reports when a lot ends."""

    outcome: LotOutcome
    winner_id: str = ""
    hammer_price: int | None = None  # minor units of the lot's currency; SOLD only
    closed_at: datetime | None = None  # when the room ended it; None: now
    currency: str = ""  # the hammer price's currency as reported; empty means the lot's
    room_sequence: int = 0  # the lot_sequence of the room's batch that ended the lot

    def validate(self, lot: Lot, now: datetime) -> None:
        violations = Violations()
        violations.require(self.room_sequence > 0, "room_sequence", "the room's lot_sequence of the lot's end")
        if self.outcome is LotOutcome.SOLD:
            check_id(violations, "winner_id", self.winner_id)
            violations.require(self.winner_id != lot.seller_id, "winner_id", "a seller cannot win their own lot")
            if self.hammer_price is None:
                violations.add("hammer_price", "a sold lot needs a hammer price")
            else:
                try:
                    validate_amount(self.hammer_price, "hammer_price.amount_minor", allow_zero=False)
                except InvalidArgument as exc:
                    violations.items.extend(exc.violations)
                violations.require(
                    self.currency in ("", lot.terms.currency),
                    "hammer_price.currency",
                    f"must be the lot's currency {lot.terms.currency}",
                )
        else:
            violations.require(not self.winner_id, "winner_id", "only a sold lot has a winner")
            violations.require(self.hammer_price is None, "hammer_price", "only a sold lot has a hammer price")
        if self.closed_at is not None:
            if self.closed_at.utcoffset() is None:
                violations.add("closed_at", "must be an instant with a time zone")
            elif lot.started_at is not None and self.closed_at < lot.started_at:
                violations.add("closed_at", "must not be before the lot started")
            elif self.closed_at > now:
                violations.add("closed_at", "must not be in the future")
        violations.raise_if_any()


def new_group(
    sale: Sale,
    product: Product,
    spec: LotSpec,
    lot_ids: Sequence[str],
    seeds: Sequence[int],
    position: int,
    now: datetime,
) -> list[Lot]:
    """The N lots (one per unit of the product, one per room) a product enters a sale as (drafts;
    a scheduled sale's use case publishes them at once)."""
    require_state("sale", sale.id, sale.state, (State.DRAFT, State.SCHEDULED), "add lots to")
    spec.validate(sale.kind)
    if len(lot_ids) != product.quantity or len(seeds) != product.quantity:
        raise ValueError("one lot id and one seed per unit of the product")
    return [
        Lot(
            id=lot_id,
            group_id=lot_ids[0],
            sale_id=sale.id,
            product_id=product.id,
            seller_id=product.seller_id,
            room_index=index,
            room_count=product.quantity,
            position=position,
            duration_slots=spec.slots_for(sale.kind),
            terms=dataclasses.replace(spec.terms, seed=seed),
            state=State.DRAFT,
            created_at=now,
            updated_at=now,
        )
        for index, (lot_id, seed) in enumerate(zip(lot_ids, seeds, strict=True))
    ]


_STATE_PRECEDENCE = (State.LIVE, State.SCHEDULED, State.DRAFT, State.CLOSED, State.CANCELLED)


@dataclass(frozen=True, slots=True)
class LotGroup:
    """The rooms of one product in one sale, by room index: one row of the schedule."""

    rooms: tuple[Lot, ...]

    @classmethod
    def of(cls, lots: Iterable[Lot]) -> LotGroup:
        rooms = tuple(sorted(lots, key=lambda lot: lot.room_index))
        if not rooms or len({lot.group_id for lot in rooms}) != 1:
            raise ValueError("a lot group is the non-empty set of lots sharing one group id")
        return cls(rooms)

    @property
    def lead(self) -> Lot:
        return self.rooms[0]

    @property
    def id(self) -> str:
        return self.lead.group_id

    @property
    def state(self) -> State:
        """The most active state among the rooms: live if any room is live, and so on."""
        states = {lot.state for lot in self.rooms}
        return next(state for state in _STATE_PRECEDENCE if state in states)


def groups_of(lots: Iterable[Lot]) -> list[LotGroup]:
    """Lots gathered into their groups, ordered by (sale, position)."""
    by_group: dict[str, list[Lot]] = {}
    for lot in lots:
        by_group.setdefault(lot.group_id, []).append(lot)
    groups = [LotGroup.of(members) for members in by_group.values()]
    return sorted(groups, key=lambda group: (group.lead.sale_id, group.lead.position, group.id))


def lay_out(sale: Sale, lots: Sequence[Lot]) -> None:
    """Set every lot's estimated start from the sale's timing and the groups' order and lengths."""
    groups = groups_of(lots)
    starts = sale.estimated_starts([group.lead.duration_slots for group in groups])
    for group, start in zip(groups, starts, strict=True):
        for lot in group.rooms:
            lot.estimated_start = start


@dataclass(frozen=True, slots=True)
class RunningOrderEnd:
    """What appending groups to a sale needs to know of the lots already in it, instead of all of them."""

    lot_count: int = 0  # lots (rooms), not groups
    last: Lot | None = None  # a room of the last group in the running order; None: the sale has no lots

    @property
    def next_position(self) -> int:
        return 0 if self.last is None else self.last.position + 1


def running_order_end(lots: Collection[Lot]) -> RunningOrderEnd:
    """The reference for `LotRepository.end_of_running_order`: `lots` are every lot of one sale."""
    last = max(lots, key=lambda lot: (lot.position, lot.group_id), default=None)
    return RunningOrderEnd(len(lots), last)


def lay_out_appended(sale: Sale, end: RunningOrderEnd, lots: Sequence[Lot]) -> bool:
    """Set the estimated starts of groups appended after `end` to what `lay_out` of the whole sale
    would set, in time proportional to `lots` alone; the lots before them are laid out already.

    False, with nothing set, when the appended starts cannot be told from `end` (a session day
    with a clock change): `lay_out` the whole sale then.
    """
    groups = groups_of(lots)
    durations = [group.lead.duration_slots for group in groups]
    if end.last is None:
        starts: list[datetime | None] | None = sale.estimated_starts(durations)
    else:
        starts = sale.estimated_starts_after(end.last.estimated_start, end.last.duration_slots, durations)
    if starts is None:
        return False
    for group, start in zip(groups, starts, strict=True):
        for lot in group.rooms:
            lot.estimated_start = start
    return True


def renumber(groups: Sequence[LotGroup], now: datetime) -> None:
    """Give the groups, in the order given, positions 0, 1, 2, …"""
    for position, group in enumerate(groups):
        for lot in group.rooms:
            if lot.position != position:
                lot.position = position
                lot.updated_at = now


def check_publishable(sale: Sale, lots: Sequence[Lot], now: datetime) -> None:
    """Everything a sale needs before it is scheduled, reported at once under `sale.…` paths.

    The sale's own fields are valid and it still starts in the future; it has lots; every lot's
    terms are valid for the sale's kind; every live-session lot fits in the time slots (call
    `lay_out` first). Lots are named by their position: `sale.lots[2].english.opening_bid`.
    """
    violations = Violations()
    try:
        sale.spec.validate(now)
    except InvalidArgument as exc:
        violations.items.extend(exc.violations)
    groups = groups_of(lots)
    if not groups:
        violations.add("sale.lots", "a sale needs at least one lot")
    for group in groups:
        lead, prefix = group.lead, f"sale.lots[{group.lead.position}]"
        spec = LotSpec(lead.product_id, lead.terms, lead.duration_slots)
        try:
            spec.validate(sale.kind, prefix)
        except InvalidArgument as exc:
            violations.items.extend(exc.violations)
        if sale.kind is SaleKind.LIVE_SESSION and lead.estimated_start is None:
            violations.add(f"{prefix}.duration_slots", "the lot does not fit in the session's time slots")
    violations.raise_if_any()


# -- what a viewer may see --------------------------------------------------------------------


def may_see_secrets(principal: Principal, lot: Lot) -> bool:
    """The seed, reserve, tender minimum and a retired fixed lucky option are for the seller, admins
    and services. (The seller never learns a lucky lot's winning option: the room draws it.)"""
    return principal.is_admin or (bool(principal.subject) and principal.subject == lot.seller_id)


def has_reserve(terms: LotTerms) -> bool:
    params = terms.params
    if isinstance(params, EnglishParams):
        return params.reserve is not None
    return isinstance(params, TenderParams) and params.minimum_price is not None


def without_secrets(terms: LotTerms) -> LotTerms:
    params = terms.params
    if isinstance(params, EnglishParams):
        params = dataclasses.replace(params, reserve=None, opening_call_reserve_bp=0)
    elif isinstance(params, TenderParams):
        params = dataclasses.replace(params, minimum_price=None)
    elif isinstance(params, LuckyParams):
        params = dataclasses.replace(params, winning_option=0)
    return dataclasses.replace(terms, params=params, seed=0)


@dataclass(frozen=True, slots=True)
class LotView:
    """A lot as one caller may see it. `lot` is a copy whose secrets are zeroed for outsiders;
    `has_reserve` still tells everyone whether a reserve exists."""

    lot: Lot
    has_reserve: bool
    secrets_shown: bool


def view_lot(principal: Principal, lot: Lot) -> LotView:
    shown = may_see_secrets(principal, lot)
    visible = lot if shown else dataclasses.replace(lot, terms=without_secrets(lot.terms))
    return LotView(visible, has_reserve(lot.terms), shown)


def headline_prices(terms: LotTerms) -> tuple[int | None, int | None, int | None]:
    """(start price, fixed price, buy-now price) as the schedule shows them, in minor units."""
    params = terms.params
    if isinstance(params, EnglishParams):
        return params.opening_bid, None, params.buy_now
    if isinstance(params, DutchParams):
        return params.start_price, None, None
    if isinstance(params, LuckyParams):
        return None, params.price, None
    return params.start_price, None, None
