"""The schedule table (day, week and month views) with the caller's actions per row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from catalog.app.ports import CatalogUnitOfWork
from catalog.domain.access import Viewer
from catalog.domain.lots import groups_of
from catalog.domain.queries import LotFilter
from catalog.domain.schedule import (
    MAX_SCHEDULE_LOTS,
    SCHEDULE_STATES,
    Schedule,
    ScheduleView,
    build_schedule,
    row_actions,
    schedule_row,
    utc_window,
    view_range,
)
from catalog.domain.validation import check_id
from gavel_core.auth import Principal, Role
from gavel_core.errors import Violations


@dataclass(frozen=True, slots=True)
class GetSchedule:
    view: ScheduleView
    date: date  # the day shown, or any day of the week or month shown
    sale_id: str | None = None
    seller_id: str | None = None


async def get_schedule(uow: CatalogUnitOfWork, principal: Principal, query: GetSchedule, *, now: datetime) -> Schedule:
    """The scheduled, live and closed lot groups of a day, week or month, bucketed by local time.

    - Anyone may read it; rows are placed in their sale's time zone (catalog.domain.schedule).
    - Each row carries the caller's actions now — reserve, enter room, reserved, needs
      registration — computed by the same rules ReserveLot and EnterRoom enforce.
    - At most 5,000 lots; `truncated` says more matched (narrow by sale or seller).
    """
    violations = Violations()
    check_id(violations, "sale_id", query.sale_id or "", required=False)
    check_id(violations, "seller_id", query.seller_id or "", required=False)
    violations.raise_if_any()
    starts_from, starts_before = utc_window(*view_range(query.view, query.date))
    lots = await uow.lots.list_scheduled(
        LotFilter(
            viewer=Viewer.of(principal),
            sale_id=query.sale_id or None,
            seller_id=query.seller_id or None,
            states=SCHEDULE_STATES,
            starts_from=starts_from,
            starts_before=starts_before,
        ),
        MAX_SCHEDULE_LOTS + 1,
    )
    truncated = len(lots) > MAX_SCHEDULE_LOTS
    groups = groups_of(lots[:MAX_SCHEDULE_LOTS])
    sales = await uow.sales.get_many({group.lead.sale_id for group in groups})
    products = await uow.products.get_many({group.lead.product_id for group in groups})
    registrations, reservations = {}, {}
    if principal.has(Role.BIDDER):
        for registration in await uow.registrations.list_for_bidder(principal.subject, set(sales)):
            registrations[registration.sale_id] = registration
        for reservation in await uow.reservations.list_active_for_bidder(
            principal.subject, {group.id for group in groups}
        ):
            reservations[reservation.group_id] = reservation
    rows = []
    for group in groups:
        sale = sales[group.lead.sale_id]
        product = products.get(group.lead.product_id)
        actions = row_actions(principal, sale, group, registrations.get(sale.id), reservations.get(group.id), now)
        rows.append(schedule_row(group, sale, product.title if product else "", actions))
    return build_schedule(query.view, query.date, rows, truncated)
