"""Mapping between the wire (gavel.catalog.v1 and gavel.events.v1 protobuf) and the catalog's domain.

Requests become the use cases' commands; wire formats are parsed with the domain's own helpers
(`parse_date`, `TimeSlot.parse`, `resolve_increments`, `amount_in`) so that every error names the
request field it came from (`sale.live_session.time_slots[1].start`, `lot.english.opening_bid`).
A parse step that fails is collected with the others and reported together as one
InvalidArgument. Validation itself (lengths, ranges, currencies, formats) is the domain's: this
module only translates.

Enums: every domain enum's value is the proto enum's name without its prefix, lower-cased
(Format.ENGLISH = "english" ↔ FORMAT_ENGLISH); `EnumMap` builds both directions from that and
refuses at import time to run with an unmapped value. `*_UNSPECIFIED` means the documented
default where the proto gives one (close HARD, rule MANUAL, …), "no filter" on lists, and is
refused where a value is required (a lot's format, a decision, an outcome).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar, cast

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from catalog.app.lots import AddLot, ListLots, ReorderLots, UpdateLot
from catalog.app.products import CreateProduct, ListProducts, UpdateProduct
from catalog.app.registrations import DecideRegistration, ListRegistrations
from catalog.app.reservations import ListMyReservations
from catalog.app.rooms import CloseLot
from catalog.app.sales import CancelSale, CreateSale, ListSales, UpdateSale
from catalog.app.schedule import GetSchedule
from catalog.domain.events import (
    CatalogEvent,
    LotOutcomeRecorded,
    LotScheduled,
    LotStarting,
    RegistrationDecided,
    ReservationCancelled,
    ReservationCreated,
    SaleCancelled,
    SalePublished,
    SeatAssigned,
)
from catalog.domain.lots import LotOutcome, LotResult, LotSpec, LotView, amount_in, has_reserve, resolve_increments
from catalog.domain.paging import Page
from catalog.domain.products import Product, ProductSpec
from catalog.domain.registrations import Registration, RegistrationStatus
from catalog.domain.reservations import Reservation, ReservationState
from catalog.domain.sales import (
    ApprovalRule,
    LiveSession,
    RegistrationPolicy,
    Sale,
    SaleKind,
    SaleSpec,
    TimedTender,
    TimeSlot,
    Timing,
)
from catalog.domain.schedule import DayPart, Schedule, ScheduleRow, ScheduleView
from catalog.domain.seating import Seat
from catalog.domain.states import State
from catalog.domain.validation import format_time_of_day, parse_date
from gavel.catalog.v1 import catalog_service_pb2 as pb
from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1 import money_pb2, paging_pb2
from gavel.events.v1 import catalog_events_pb2 as ev
from gavel_core.errors import FieldViolation, InvalidArgument, Violations
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
from gavel_core.money import validate_currency

D = TypeVar("D", bound=StrEnum)
T = TypeVar("T")


class EnumMap(Generic[D]):
    """A domain StrEnum ↔ a proto enum whose names are PREFIX + value.upper()."""

    def __init__(self, domain: type[D], wire: Any, prefix: str) -> None:
        self._domain = domain
        self._to_wire: dict[D, int] = {member: wire.Value(prefix + member.value.upper()) for member in domain}
        self._from_wire = {number: member for member, number in self._to_wire.items()}
        unmapped = set(wire.values()) - {0} - set(self._from_wire)
        if unmapped:
            raise RuntimeError(f"{wire.DESCRIPTOR.full_name} values {sorted(unmapped)} have no {domain.__name__}")
        self._choices = ", ".join(wire.Name(number) for number in sorted(self._from_wire))

    def wire(self, member: D) -> Any:
        return self._to_wire[member]

    def parse(self, number: int, path: str, *, default: D | None = None) -> D:
        """The member for `number`; UNSPECIFIED (0) is `default`, or refused when there is none."""
        if number == 0 and default is not None:
            return default
        member = self._from_wire.get(number)
        if member is None:
            raise InvalidArgument([FieldViolation(path, f"must be one of {self._choices}")])
        return member

    def optional(self, number: int, path: str) -> D | None:
        """UNSPECIFIED (0) means no value (no filter)."""
        return None if number == 0 else self.parse(number, path)


SALE_KINDS = EnumMap(SaleKind, res.SaleKind, "SALE_KIND_")
SALE_STATES = EnumMap(State, res.SaleState, "SALE_STATE_")
LOT_STATES = EnumMap(State, res.LotState, "LOT_STATE_")
APPROVAL_RULES = EnumMap(ApprovalRule, res.ApprovalRule, "APPROVAL_RULE_")
FORMATS = EnumMap(Format, res.Format, "FORMAT_")
ENGLISH_CLOSES = EnumMap(EnglishClose, res.EnglishClose, "ENGLISH_CLOSE_")
SOFT_CLOSE_MODES = EnumMap(SoftCloseMode, res.SoftCloseMode, "SOFT_CLOSE_MODE_")
DUTCH_STEP_MODES = EnumMap(DutchStepMode, res.DutchStepMode, "DUTCH_STEP_MODE_")
LUCKY_RULES = EnumMap(LuckyWinningRule, res.LuckyWinningRule, "LUCKY_WINNING_RULE_")
OUTCOMES = EnumMap(LotOutcome, res.LotOutcome, "LOT_OUTCOME_")
REGISTRATION_STATUSES = EnumMap(RegistrationStatus, res.RegistrationStatus, "REGISTRATION_STATUS_")
RESERVATION_STATES = EnumMap(ReservationState, res.ReservationState, "RESERVATION_STATE_")
VIEWS = EnumMap(ScheduleView, res.ScheduleView, "SCHEDULE_VIEW_")
DAY_PARTS = EnumMap(DayPart, res.DayPart, "DAY_PART_")


class Collector:
    """Runs parse steps, keeping the violations of those that fail so all are reported at once."""

    def __init__(self) -> None:
        self.violations = Violations()

    def __call__(self, step: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        try:
            return step(*args, **kwargs)
        except InvalidArgument as exc:
            self.violations.items.extend(exc.violations)
            return None

    @property
    def failed(self) -> bool:
        return bool(self.violations.items)

    def done(self) -> None:
        self.violations.raise_if_any()


def _refuse(path: str, description: str) -> InvalidArgument:
    return InvalidArgument([FieldViolation(path, description)])


# -- scalars ----------------------------------------------------------------------------------------


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def instant(stamp: Timestamp, path: str) -> datetime:
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise _refuse(path, "must be a valid timestamp between years 1 and 9999") from None


def optional_instant(message: Message, field: str, path: str) -> datetime | None:
    return instant(getattr(message, field), path) if message.HasField(field) else None


def money(amount_minor: int, currency: str) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=amount_minor, currency=currency)


def page_info(page: Page[Any]) -> paging_pb2.PageInfo:
    return paging_pb2.PageInfo(next_page_token=page.next_page_token, total_size=page.total_size)


# -- products ---------------------------------------------------------------------------------------


def product_spec(product: res.Product) -> ProductSpec:
    return ProductSpec(
        title=product.title,
        description=product.description,
        image_urls=tuple(product.image_urls),
        attributes=dict(product.attributes),
        quantity=product.quantity,
    )


def product_message(product: Product) -> res.Product:
    return res.Product(
        id=product.id,
        seller_id=product.seller_id,
        title=product.title,
        description=product.description,
        image_urls=list(product.image_urls),
        attributes=dict(product.attributes),
        quantity=product.quantity,
        created_at=timestamp(product.created_at),
        updated_at=timestamp(product.updated_at),
    )


def create_product(request: pb.CreateProductRequest) -> CreateProduct:
    return CreateProduct(product_spec(request.product), seller_id=request.product.seller_id)


def update_product(request: pb.UpdateProductRequest) -> UpdateProduct:
    return UpdateProduct(request.product.id, product_spec(request.product))


def list_products(request: pb.ListProductsRequest) -> ListProducts:
    return ListProducts(request.page.page_size, request.page.page_token, request.seller_id, request.query)


# -- sales ------------------------------------------------------------------------------------------


def _timing(sale: res.Sale, prefix: str, parse: Collector) -> Timing | None:
    which = sale.WhichOneof("timing")
    if which == "live_session":
        session = sale.live_session
        day = parse(parse_date, session.date, f"{prefix}.live_session.date")
        slots = [
            parse(TimeSlot.parse, slot.start, slot.end, f"{prefix}.live_session.time_slots[{index}]")
            for index, slot in enumerate(session.time_slots)
        ]
        if day is None or any(slot is None for slot in slots):
            return None
        return LiveSession(day, tuple(slot for slot in slots if slot is not None))
    if which == "timed_tender":
        tender = sale.timed_tender
        moments: list[datetime | None] = []
        for field in ("starts_at", "ends_at"):
            path = f"{prefix}.timed_tender.{field}"
            if not tender.HasField(field):
                parse.violations.add(path, "must be set")
                moments.append(None)
            else:
                moments.append(parse(instant, getattr(tender, field), path))
        starts_at, ends_at = moments
        return None if starts_at is None or ends_at is None else TimedTender(starts_at, ends_at)
    parse.violations.add(f"{prefix}.live_session", "set live_session (one day, time slots) or timed_tender")
    return None


def sale_spec(sale: res.Sale, prefix: str = "sale") -> SaleSpec:
    parse = Collector()
    timing = _timing(sale, prefix, parse)
    rule = parse(
        APPROVAL_RULES.parse, sale.registration.rule, f"{prefix}.registration.rule", default=ApprovalRule.MANUAL
    )
    parse.done()
    return SaleSpec(
        title=sale.title,
        time_zone=sale.time_zone,
        timing=cast(Timing, timing),
        description=sale.description,
        registration=RegistrationPolicy(cast(ApprovalRule, rule), tuple(sale.registration.allow_list)),
    )


def sale_message(sale: Sale) -> res.Sale:
    message = res.Sale(
        id=sale.id,
        owner_id=sale.owner_id,
        title=sale.title,
        description=sale.description,
        time_zone=sale.time_zone,
        kind=SALE_KINDS.wire(sale.kind),
        registration=res.RegistrationPolicy(
            rule=APPROVAL_RULES.wire(sale.registration.rule), allow_list=list(sale.registration.allow_list)
        ),
        state=SALE_STATES.wire(sale.state),
        starts_at=timestamp(sale.starts_at),
        ends_at=timestamp(sale.ends_at),
        created_at=timestamp(sale.created_at),
        updated_at=timestamp(sale.updated_at),
        cancel_reason=sale.cancel_reason,
    )
    timing = sale.timing
    if isinstance(timing, LiveSession):
        message.live_session.date = timing.date.isoformat()
        for slot in timing.time_slots:
            message.live_session.time_slots.add(
                start=format_time_of_day(slot.start_minute), end=format_time_of_day(slot.end_minute)
            )
    else:
        message.timed_tender.starts_at.CopyFrom(timestamp(timing.starts_at))
        message.timed_tender.ends_at.CopyFrom(timestamp(timing.ends_at))
    if sale.published_at is not None:
        message.published_at.CopyFrom(timestamp(sale.published_at))
    return message


def create_sale(request: pb.CreateSaleRequest) -> CreateSale:
    return CreateSale(sale_spec(request.sale))


def update_sale(request: pb.UpdateSaleRequest) -> UpdateSale:
    return UpdateSale(request.sale.id, sale_spec(request.sale))


def _states(states: Iterable[int], enum_map: EnumMap[State], path: str) -> frozenset[State]:
    parse = Collector()
    parsed = [parse(enum_map.parse, number, f"{path}[{index}]") for index, number in enumerate(states)]
    parse.done()
    return frozenset(state for state in parsed if state is not None)


def list_sales(request: pb.ListSalesRequest) -> ListSales:
    parse = Collector()
    states = parse(_states, request.states, SALE_STATES, "states")
    kind = parse(SALE_KINDS.optional, request.kind, "kind")
    format_ = parse(FORMATS.optional, request.format, "format")
    starts_from = parse(optional_instant, request, "starts_from", "starts_from")
    starts_before = parse(optional_instant, request, "starts_before", "starts_before")
    parse.done()
    return ListSales(
        page_size=request.page.page_size,
        page_token=request.page.page_token,
        seller_id=request.seller_id or None,
        states=states or frozenset(),
        kind=kind,
        format=format_,
        starts_from=starts_from,
        starts_before=starts_before,
        query=request.query or None,
    )


def cancel_sale(request: pb.CancelSaleRequest) -> CancelSale:
    return CancelSale(request.sale_id, request.reason)


# -- lots: terms ------------------------------------------------------------------------------------


class _Amounts:
    """Reads the Money fields of one parameter message, in the lot's currency, under `path`."""

    def __init__(self, message: Message, currency: str, path: str, parse: Collector) -> None:
        self._message, self._currency, self._path, self._parse = message, currency, path, parse

    def required(self, field: str) -> int:
        value: money_pb2.Money = getattr(self._message, field)
        amount = self._parse(amount_in, self._currency, value.amount_minor, value.currency, f"{self._path}.{field}")
        return 0 if amount is None else amount

    def optional(self, field: str) -> int | None:
        return self.required(field) if self._message.HasField(field) else None


def _english(params: res.EnglishParams, currency: str, path: str) -> EnglishParams:
    parse = Collector()
    amounts = _Amounts(params, currency, path, parse)
    tiers = [[tier.from_amount, tier.step] for tier in params.increments]
    result = EnglishParams(
        opening_bid=amounts.required("opening_bid"),
        increments=parse(resolve_increments, tiers, params.increment_preset, path),  # type: ignore[arg-type]
        reserve=amounts.optional("reserve"),
        buy_now=amounts.optional("buy_now"),
        close=parse(ENGLISH_CLOSES.parse, params.close, f"{path}.close", default=EnglishClose.HARD),  # type: ignore[arg-type]
        duration_ms=params.duration_ms,
        rounds=params.rounds,
        round_duration_ms=params.round_duration_ms,
        soft_close_window_ms=params.soft_close_window_ms,
        soft_close_mode=parse(  # type: ignore[arg-type]
            SOFT_CLOSE_MODES.parse, params.soft_close_mode, f"{path}.soft_close_mode", default=SoftCloseMode.RESET
        ),
        soft_close_max_extension_ms=params.soft_close_max_extension_ms,
        vendor_may_accept=params.vendor_may_accept,
        opening_call_reserve_bp=params.opening_call_reserve_bp,
        reopen_grace_ms=params.reopen_grace_ms,
    )
    parse.done()
    return result


def _dutch(params: res.DutchParams, currency: str, path: str) -> DutchParams:
    parse = Collector()
    amounts = _Amounts(params, currency, path, parse)
    result = DutchParams(
        start_price=amounts.required("start_price"),
        floor_price=amounts.required("floor_price"),
        tick_ms=params.tick_ms,
        step_mode=parse(  # type: ignore[arg-type]
            DUTCH_STEP_MODES.parse, params.step_mode, f"{path}.step_mode", default=DutchStepMode.FIXED
        ),
        step=amounts.required("step"),
        random_steps=params.random_steps,
    )
    parse.done()
    return result


def _lucky(params: res.LuckyParams, currency: str, path: str) -> LuckyParams:
    parse = Collector()
    amounts = _Amounts(params, currency, path, parse)
    result = LuckyParams(
        options=tuple(params.options),
        price=amounts.required("price"),
        window_ms=params.window_ms,
        winning_rule=parse(  # type: ignore[arg-type]
            LUCKY_RULES.parse, params.winning_rule, f"{path}.winning_rule", default=LuckyWinningRule.FIXED
        ),
        winning_option=params.winning_option,
    )
    parse.done()
    return result


def _tender(params: res.TenderParams, currency: str, path: str) -> TenderParams:
    parse = Collector()
    amounts = _Amounts(params, currency, path, parse)
    result = TenderParams(
        start_price=amounts.required("start_price"),
        minimum_price=amounts.optional("minimum_price"),
        increment=amounts.required("increment"),
        soft_close_window_ms=params.soft_close_window_ms,
        soft_close_max_extension_ms=params.soft_close_max_extension_ms,
        ticket_price=amounts.required("ticket_price"),
        ticket_step=amounts.required("ticket_step"),
    )
    parse.done()
    return result


_PARAMS_FIELD = {
    Format.ENGLISH: "english",
    Format.DUTCH: "dutch",
    Format.LUCKY: "lucky",
    Format.TENDER_OPEN: "tender",
    Format.TENDER_SEALED_FIRST_PRICE: "tender",
    Format.TENDER_SEALED_SECOND_PRICE: "tender",
    Format.TENDER_BID_TICKET: "tender",
}
_PARAMS_PARSERS: Mapping[str, Callable[[Any, str, str], FormatParams]] = {
    "english": _english,
    "dutch": _dutch,
    "lucky": _lucky,
    "tender": _tender,
}


def lot_terms(lot: res.Lot, prefix: str = "lot") -> LotTerms:
    """The terms a Lot message carries (the seed is output only: the catalog draws it)."""
    parse = Collector()
    format_ = parse(FORMATS.parse, lot.format, f"{prefix}.format")
    params: FormatParams | None = None
    if format_ is not None:
        field = _PARAMS_FIELD[format_]
        if lot.WhichOneof("params") != field:
            parse.violations.add(f"{prefix}.{field}", f"format {format_.value} takes {field} parameters")
        else:
            params = parse(_PARAMS_PARSERS[field], getattr(lot, field), lot.currency, f"{prefix}.{field}")
    if parse.failed:  # report a bad currency with the rest, as the domain would have
        parse(validate_currency, lot.currency, f"{prefix}.currency")
    parse.done()
    return LotTerms(
        currency=lot.currency,
        format=cast(Format, format_),
        params=cast(FormatParams, params),
        buyer_premium_bp=lot.buyer_premium_bp,
        tax_bp=lot.tax_bp,
        confirmation_timeout_ms=lot.confirmation_timeout_ms,
    )


def _terms_into(message: res.Lot, terms: LotTerms) -> None:
    currency, params = terms.currency, terms.params
    message.currency = currency
    message.format = FORMATS.wire(terms.format)
    message.buyer_premium_bp = terms.buyer_premium_bp
    message.tax_bp = terms.tax_bp
    message.confirmation_timeout_ms = terms.confirmation_timeout_ms
    message.seed = terms.seed

    def set_money(target: Message, field: str, amount: int | None) -> None:
        if amount is not None:
            getattr(target, field).CopyFrom(money(amount, currency))

    if isinstance(params, EnglishParams):
        english = message.english
        set_money(english, "opening_bid", params.opening_bid)
        for start, step in params.increments.tiers:
            english.increments.add(from_amount=start, step=step)
        set_money(english, "reserve", params.reserve)
        set_money(english, "buy_now", params.buy_now)
        english.close = ENGLISH_CLOSES.wire(params.close)
        english.duration_ms = params.duration_ms
        english.rounds = params.rounds
        english.round_duration_ms = params.round_duration_ms
        english.soft_close_window_ms = params.soft_close_window_ms
        english.soft_close_mode = SOFT_CLOSE_MODES.wire(params.soft_close_mode)
        english.soft_close_max_extension_ms = params.soft_close_max_extension_ms
        english.vendor_may_accept = params.vendor_may_accept
        english.opening_call_reserve_bp = params.opening_call_reserve_bp
        english.reopen_grace_ms = params.reopen_grace_ms
    elif isinstance(params, DutchParams):
        dutch = message.dutch
        set_money(dutch, "start_price", params.start_price)
        set_money(dutch, "floor_price", params.floor_price)
        dutch.tick_ms = params.tick_ms
        dutch.step_mode = DUTCH_STEP_MODES.wire(params.step_mode)
        set_money(dutch, "step", params.step)
        dutch.random_steps = params.random_steps
    elif isinstance(params, LuckyParams):
        lucky = message.lucky
        lucky.options.extend(params.options)
        set_money(lucky, "price", params.price)
        lucky.window_ms = params.window_ms
        lucky.winning_rule = LUCKY_RULES.wire(params.winning_rule)
        lucky.winning_option = params.winning_option
    else:
        tender = message.tender
        set_money(tender, "start_price", params.start_price)
        set_money(tender, "minimum_price", params.minimum_price)
        set_money(tender, "increment", params.increment)
        tender.soft_close_window_ms = params.soft_close_window_ms
        tender.soft_close_max_extension_ms = params.soft_close_max_extension_ms
        set_money(tender, "ticket_price", params.ticket_price)
        set_money(tender, "ticket_step", params.ticket_step)


def lot_message(view: LotView) -> res.Lot:
    """A lot as its viewer may see it (secrets already zeroed in `view.lot` for outsiders)."""
    lot = view.lot
    message = res.Lot(
        id=lot.id,
        group_id=lot.group_id,
        sale_id=lot.sale_id,
        product_id=lot.product_id,
        seller_id=lot.seller_id,
        room_index=lot.room_index,
        room_count=lot.room_count,
        position=lot.position,
        duration_slots=lot.duration_slots,
        state=LOT_STATES.wire(lot.state),
        has_reserve=view.has_reserve,
        winner_id=lot.winner_id,
    )
    _terms_into(message, lot.terms)
    for field, moment in (
        ("estimated_start", lot.estimated_start),
        ("started_at", lot.started_at),
        ("closed_at", lot.closed_at),
    ):
        if moment is not None:
            getattr(message, field).CopyFrom(timestamp(moment))
    if lot.outcome is not None:
        message.outcome = OUTCOMES.wire(lot.outcome)
    if lot.hammer_price is not None:
        message.hammer_price.CopyFrom(money(lot.hammer_price, lot.terms.currency))
    return message


def lot_messages(views: Iterable[LotView]) -> list[res.Lot]:
    return [lot_message(view) for view in views]


def add_lot(request: pb.AddLotRequest) -> AddLot:
    lot = request.lot
    return AddLot(request.sale_id, LotSpec(lot.product_id, lot_terms(lot), lot.duration_slots))


def update_lot(request: pb.UpdateLotRequest) -> UpdateLot:
    return UpdateLot(request.lot.id, lot_terms(request.lot), request.lot.duration_slots)


def reorder_lots(request: pb.ReorderLotsRequest) -> ReorderLots:
    return ReorderLots(request.sale_id, tuple(request.lot_ids))


def list_lots(request: pb.ListLotsRequest) -> ListLots:
    parse = Collector()
    states = parse(_states, request.states, LOT_STATES, "states")
    format_ = parse(FORMATS.optional, request.format, "format")
    starts_from = parse(optional_instant, request, "starts_from", "starts_from")
    starts_before = parse(optional_instant, request, "starts_before", "starts_before")
    parse.done()
    return ListLots(
        page_size=request.page.page_size,
        page_token=request.page.page_token,
        sale_id=request.sale_id or None,
        seller_id=request.seller_id or None,
        states=states or frozenset(),
        format=format_,
        starts_from=starts_from,
        starts_before=starts_before,
    )


def close_lot(request: pb.CloseLotRequest) -> CloseLot:
    parse = Collector()
    outcome = parse(OUTCOMES.parse, request.outcome, "outcome")
    closed_at = parse(optional_instant, request, "closed_at", "closed_at")
    parse.done()
    hammer = request.hammer_price if request.HasField("hammer_price") else None
    result = LotResult(
        outcome=cast(LotOutcome, outcome),
        winner_id=request.winner_id,
        hammer_price=hammer.amount_minor if hammer is not None else None,
        closed_at=closed_at,
        currency=hammer.currency if hammer is not None else "",
    )
    return CloseLot(request.lot_id, result)


# -- schedule ---------------------------------------------------------------------------------------


def get_schedule(request: pb.GetScheduleRequest) -> GetSchedule:
    parse = Collector()
    view = parse(VIEWS.parse, request.view, "view", default=ScheduleView.DAY)
    day = parse(parse_date, request.date, "date")
    parse.done()
    return GetSchedule(cast(ScheduleView, view), cast(date, day), request.sale_id or None, request.seller_id or None)


def _row_message(row: ScheduleRow) -> res.ScheduleRow:
    message = res.ScheduleRow(
        lot_id=row.lot_id,
        sale_id=row.sale_id,
        sale_title=row.sale_title,
        product_id=row.product_id,
        product_title=row.product_title,
        format=FORMATS.wire(row.format),
        quantity=row.quantity,
        state=LOT_STATES.wire(row.state),
        estimated_start=timestamp(row.estimated_start),
        actions=res.ScheduleActions(
            can_reserve=row.actions.can_reserve,
            can_enter_room=row.actions.can_enter_room,
            reserved=row.actions.reserved,
            reservation_id=row.actions.reservation_id,
            needs_registration=row.actions.needs_registration,
        ),
        time_zone=row.time_zone,
    )
    for field, amount in (("start_price", row.start_price), ("price", row.price), ("buy_now_price", row.buy_now_price)):
        if amount is not None:
            getattr(message, field).CopyFrom(money(amount, row.currency))
    return message


def schedule_message(schedule: Schedule) -> pb.GetScheduleResponse:
    return pb.GetScheduleResponse(
        first_date=schedule.first_date.isoformat(),
        end_date=schedule.end_date.isoformat(),
        truncated=schedule.truncated,
        days=[
            res.ScheduleDay(
                date=day.date.isoformat(),
                parts=[
                    res.ScheduleDayPart(
                        part=DAY_PARTS.wire(part.part),
                        slots=[
                            res.ScheduleSlot(
                                start_time=slot.start_time,
                                starts_at=timestamp(slot.starts_at),
                                rows=[_row_message(row) for row in slot.rows],
                            )
                            for slot in part.slots
                        ],
                    )
                    for part in day.parts
                ],
            )
            for day in schedule.days
        ],
    )


# -- registrations, reservations, seats -------------------------------------------------------------


def registration_message(registration: Registration) -> res.Registration:
    message = res.Registration(
        id=registration.id,
        sale_id=registration.sale_id,
        bidder_id=registration.bidder_id,
        status=REGISTRATION_STATUSES.wire(registration.status),
        reason=registration.reason,
        decided_by=registration.decided_by,
        created_at=timestamp(registration.created_at),
    )
    if registration.decided_at is not None:
        message.decided_at.CopyFrom(timestamp(registration.decided_at))
    return message


def decide_registration(request: pb.DecideRegistrationRequest) -> DecideRegistration:
    if request.decision == pb.DECISION_APPROVE:
        approve = True
    elif request.decision == pb.DECISION_REJECT:
        approve = False
    else:
        raise _refuse("decision", "must be DECISION_APPROVE or DECISION_REJECT")
    return DecideRegistration(request.registration_id, approve, request.reason)


def list_registrations(request: pb.ListRegistrationsRequest) -> ListRegistrations:
    return ListRegistrations(
        page_size=request.page.page_size,
        page_token=request.page.page_token,
        sale_id=request.sale_id or None,
        bidder_id=request.bidder_id or None,
        status=REGISTRATION_STATUSES.optional(request.status, "status"),
    )


def reservation_message(reservation: Reservation) -> res.Reservation:
    message = res.Reservation(
        id=reservation.id,
        group_id=reservation.group_id,
        sale_id=reservation.sale_id,
        bidder_id=reservation.bidder_id,
        state=RESERVATION_STATES.wire(reservation.state),
        created_at=timestamp(reservation.created_at),
    )
    if reservation.cancelled_at is not None:
        message.cancelled_at.CopyFrom(timestamp(reservation.cancelled_at))
    if reservation.estimated_start is not None:
        message.estimated_start.CopyFrom(timestamp(reservation.estimated_start))
    return message


def list_my_reservations(request: pb.ListMyReservationsRequest) -> ListMyReservations:
    return ListMyReservations(
        page_size=request.page.page_size,
        page_token=request.page.page_token,
        include_cancelled=request.include_cancelled,
        sale_id=request.sale_id or None,
    )


def seat_message(seat: Seat) -> res.Seat:
    return res.Seat(sale_id=seat.sale_id, lot_id=seat.lot_id, room_index=seat.room_index)


# -- events -----------------------------------------------------------------------------------------


def _scheduled_lot(event: LotScheduled) -> res.Lot:
    """The full lot of a LotScheduled event, secrets included (the stream is internal)."""
    message = res.Lot(
        id=event.lot_id,
        group_id=event.group_id,
        sale_id=event.sale_id,
        product_id=event.product_id,
        seller_id=event.seller_id,
        room_index=event.room_index,
        room_count=event.room_count,
        position=event.position,
        duration_slots=event.duration_slots,
        state=LOT_STATES.wire(State.SCHEDULED),
        has_reserve=has_reserve(event.terms),
    )
    _terms_into(message, event.terms)
    if event.estimated_start is not None:
        message.estimated_start.CopyFrom(timestamp(event.estimated_start))
    return message


def _optional_stamp(moment: datetime | None) -> Timestamp | None:
    return None if moment is None else timestamp(moment)


def event_message(event: CatalogEvent) -> Message:
    """The gavel.events.v1 message of a domain event (one class per message, same field names)."""
    head: dict[str, Any] = {"event_id": event.event_id, "occurred_at": timestamp(event.occurred_at)}
    if isinstance(event, SalePublished):
        return ev.SalePublished(
            **head,
            sale_id=event.sale_id,
            owner_id=event.owner_id,
            title=event.title,
            kind=SALE_KINDS.wire(event.kind),
            time_zone=event.time_zone,
            starts_at=timestamp(event.starts_at),
            ends_at=timestamp(event.ends_at),
            lot_ids=list(event.lot_ids),
        )
    if isinstance(event, SaleCancelled):
        return ev.SaleCancelled(**head, sale_id=event.sale_id, reason=event.reason, lot_ids=list(event.lot_ids))
    if isinstance(event, LotScheduled):
        return ev.LotScheduled(
            **head,
            lot_id=event.lot_id,
            group_id=event.group_id,
            sale_id=event.sale_id,
            product_id=event.product_id,
            seller_id=event.seller_id,
            room_index=event.room_index,
            room_count=event.room_count,
            format=FORMATS.wire(event.terms.format),
            estimated_start=_optional_stamp(event.estimated_start),
            lot=_scheduled_lot(event),
        )
    if isinstance(event, LotStarting):
        return ev.LotStarting(
            **head,
            lot_id=event.lot_id,
            group_id=event.group_id,
            sale_id=event.sale_id,
            format=FORMATS.wire(event.format),
            started_at=timestamp(event.started_at),
        )
    if isinstance(event, LotOutcomeRecorded):
        return ev.LotOutcomeRecorded(
            **head,
            lot_id=event.lot_id,
            sale_id=event.sale_id,
            seller_id=event.seller_id,
            outcome=OUTCOMES.wire(event.outcome),
            winner_id=event.winner_id,
            hammer_price=money(event.hammer_price, event.currency) if event.hammer_price is not None else None,
            buyer_premium_bp=event.buyer_premium_bp,
            tax_bp=event.tax_bp,
            closed_at=timestamp(event.closed_at),
            sale_closed=event.sale_closed,
        )
    if isinstance(event, ReservationCreated):
        return ev.ReservationCreated(
            **head,
            reservation_id=event.reservation_id,
            group_id=event.group_id,
            sale_id=event.sale_id,
            bidder_id=event.bidder_id,
            estimated_start=_optional_stamp(event.estimated_start),
        )
    if isinstance(event, ReservationCancelled):
        return ev.ReservationCancelled(
            **head,
            reservation_id=event.reservation_id,
            group_id=event.group_id,
            sale_id=event.sale_id,
            bidder_id=event.bidder_id,
        )
    if isinstance(event, RegistrationDecided):
        return ev.RegistrationDecided(
            **head,
            registration_id=event.registration_id,
            sale_id=event.sale_id,
            bidder_id=event.bidder_id,
            status=REGISTRATION_STATUSES.wire(event.status),
            reason=event.reason,
            decided_by=event.decided_by,
        )
    if isinstance(event, SeatAssigned):
        return ev.SeatAssigned(
            **head,
            group_id=event.group_id,
            lot_id=event.lot_id,
            sale_id=event.sale_id,
            bidder_id=event.bidder_id,
            room_index=event.room_index,
        )
    raise TypeError(f"no gavel.events.v1 message for {type(event).__name__}")
