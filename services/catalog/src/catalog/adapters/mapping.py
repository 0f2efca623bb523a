"""Mapping between the wire (gavel.catalog.v1 and gavel.events.v1 protobuf) and the catalog's domain.

Requests become the use cases' commands; wire formats are parsed with the domain's own helpers
(`parse_date`, `TimeSlot.parse`) so that every error names the
request field it came from (`sale.live_session.time_slots[1].start`, `lot.english.opening_bid`).
A parse step that fails is collected with the others and reported together as one
InvalidArgument. Validation itself (lengths, ranges, currencies, formats) is the domain's: this
module only translates. A lot's terms (`lot.*` fields) are mapped by the shared
`gavel_kit.lotwire` (`terms_from_lot` / `write_terms`), which the room uses too.

Enums: every domain enum's value is the proto enum's name without its prefix, lower-cased
(Format.ENGLISH = "english" ↔ FORMAT_ENGLISH); `EnumMap` builds both directions from that and
refuses at import time to run with an unmapped value. `*_UNSPECIFIED` means the documented
default where the proto gives one (close HARD, rule MANUAL, …), "no filter" on lists, and is
refused where a value is required (a lot's format, a decision, an outcome).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any, cast

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from catalog.app.lots import AddLot, ListLots, ReorderLots, UpdateLot, WithdrawLot
from catalog.app.products import CreateProduct, ListProducts, UpdateProduct
from catalog.app.registrations import DecideRegistration, ListRegistrations
from catalog.app.reservations import ListMyReservations
from catalog.app.rooms import CloseLot
from catalog.app.sales import CancelSale, CreateSale, ListSales, UpdateSale
from catalog.app.schedule import GetSchedule
from catalog.app.staff import StaffChange
from catalog.domain.events import (
    CatalogEvent,
    LotOutcomeRecorded,
    LotScheduled,
    LotsRetimed,
    LotStarting,
    LotWithdrawn,
    PublishedLot,
    RegistrationDecided,
    ReservationCancelled,
    ReservationCreated,
    SaleCancelled,
    SalePublished,
    SaleStaffChanged,
    SeatAssigned,
)
from catalog.domain.lots import LotOutcome, LotResult, LotSpec, LotView, has_reserve
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
from catalog.domain.staff import StaffAssignment, StaffRole
from catalog.domain.states import State
from catalog.domain.validation import format_time_of_day, parse_date
from gavel.catalog.v1 import catalog_service_pb2 as pb
from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1 import money_pb2, paging_pb2
from gavel.events.v1 import catalog_events_pb2 as ev
from gavel_core.errors import FieldViolation, InvalidArgument
from gavel_kit.lotwire import FORMATS, Collector, EnumMap, terms_from_lot, write_terms

SALE_KINDS = EnumMap(SaleKind, res.SaleKind, "SALE_KIND_")
SALE_STATES = EnumMap(State, res.SaleState, "SALE_STATE_")
LOT_STATES = EnumMap(State, res.LotState, "LOT_STATE_")
APPROVAL_RULES = EnumMap(ApprovalRule, res.ApprovalRule, "APPROVAL_RULE_")
OUTCOMES = EnumMap(LotOutcome, res.LotOutcome, "LOT_OUTCOME_")
REGISTRATION_STATUSES = EnumMap(RegistrationStatus, res.RegistrationStatus, "REGISTRATION_STATUS_")
RESERVATION_STATES = EnumMap(ReservationState, res.ReservationState, "RESERVATION_STATE_")
VIEWS = EnumMap(ScheduleView, res.ScheduleView, "SCHEDULE_VIEW_")
DAY_PARTS = EnumMap(DayPart, res.DayPart, "DAY_PART_")
STAFF_ROLES = EnumMap(StaffRole, res.StaffRole, "STAFF_ROLE_")


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
    write_terms(message, lot.terms)
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
    return AddLot(request.sale_id, LotSpec(lot.product_id, terms_from_lot(lot), lot.duration_slots))


def update_lot(request: pb.UpdateLotRequest) -> UpdateLot:
    return UpdateLot(request.lot.id, terms_from_lot(request.lot), request.lot.duration_slots)


def withdraw_lot(request: pb.WithdrawLotRequest) -> WithdrawLot:
    return WithdrawLot(request.lot_id, request.reason)


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
        room_sequence=request.room_sequence,
    )
    return CloseLot(request.lot_id, result)


# -- staff ------------------------------------------------------------------------------------------


def staff_change(request: pb.AssignStaffRequest | pb.UnassignStaffRequest) -> StaffChange:
    role = STAFF_ROLES.parse(request.role, "role")
    return StaffChange(request.sale_id, request.user_id, role)


def staff_message(assignment: StaffAssignment) -> res.StaffAssignment:
    return res.StaffAssignment(
        sale_id=assignment.sale_id,
        user_id=assignment.user_id,
        role=STAFF_ROLES.wire(assignment.role),
        assigned_by=assignment.assigned_by,
        assigned_at=timestamp(assignment.assigned_at),
    )


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


def published_lot_message(published: PublishedLot) -> res.Lot:
    """The lot as published, secrets included (for services and the internal stream only): what
    LotScheduled, LotStarting, LotWithdrawn and GetLot's `published` carry, the same bytes each
    time (nothing here changes after publish; the estimated start, which a late start moves, is
    LotScheduled's own field), and what the room's LotConfigured keeps."""
    message = res.Lot(
        id=published.lot_id,
        group_id=published.group_id,
        sale_id=published.sale_id,
        product_id=published.product_id,
        seller_id=published.seller_id,
        room_index=published.room_index,
        room_count=published.room_count,
        position=published.position,
        duration_slots=published.duration_slots,
        state=LOT_STATES.wire(State.SCHEDULED),
        has_reserve=has_reserve(published.terms),
        registration_required=published.registration_required,
    )
    write_terms(message, published.terms)  # not the estimated start: a late start moves later lots
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
            lot=published_lot_message(event.published),
        )
    if isinstance(event, LotStarting):
        return ev.LotStarting(
            **head,
            lot_id=event.lot_id,
            group_id=event.group_id,
            sale_id=event.sale_id,
            format=FORMATS.wire(event.format),
            started_at=timestamp(event.started_at),
            lot=published_lot_message(event.lot) if event.lot is not None else None,
        )
    if isinstance(event, LotWithdrawn):
        return ev.LotWithdrawn(
            **head,
            lot_id=event.lot.lot_id,
            group_id=event.lot.group_id,
            sale_id=event.lot.sale_id,
            reason=event.reason,
            sale_cancelled=event.sale_cancelled,
            withdrawn_by=event.withdrawn_by,
            lot=published_lot_message(event.lot),
        )
    if isinstance(event, SaleStaffChanged):
        return ev.SaleStaffChanged(
            **head, sale_id=event.sale_id, staff=[staff_message(assignment) for assignment in event.staff]
        )
    if isinstance(event, LotsRetimed):
        return ev.LotsRetimed(
            **head,
            sale_id=event.sale_id,
            started_lot_id=event.started_lot_id,
            groups=[
                ev.RetimedGroup(
                    group_id=group.group_id,
                    lot_ids=list(group.lot_ids),
                    previous_start=timestamp(group.previous_start),
                    estimated_start=timestamp(group.estimated_start),
                )
                for group in event.groups
            ],
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
            room_sequence=event.room_sequence,
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
