"""The schedule table: view ranges, parts of day, 10-minute slots, sale time zones, caller actions."""

from datetime import UTC, date, datetime

import pytest

import catalog.app.schedule as schedule_use_case
from catalog.app.registrations import register_for_sale
from catalog.app.reservations import reserve_lot
from catalog.app.rooms import start_lot
from catalog.app.schedule import GetSchedule, get_schedule
from catalog.domain.sales import ApprovalRule
from catalog.domain.schedule import (
    DayPart,
    RowActions,
    ScheduleRow,
    ScheduleView,
    build_schedule,
    day_part,
    view_range,
)
from catalog.domain.states import State
from gavel_core.errors import InvalidArgument
from gavel_core.formats import Format


@pytest.mark.parametrize(
    ("view", "anchor", "expected"),
    [
        (ScheduleView.DAY, date(2030, 5, 8), (date(2030, 5, 8), date(2030, 5, 9))),
        (ScheduleView.WEEK, date(2030, 5, 8), (date(2030, 5, 6), date(2030, 5, 13))),  # Monday to Sunday
        (ScheduleView.WEEK, date(2030, 5, 12), (date(2030, 5, 6), date(2030, 5, 13))),  # a Sunday
        (ScheduleView.MONTH, date(2030, 5, 31), (date(2030, 5, 1), date(2030, 6, 1))),
        (ScheduleView.MONTH, date(2030, 12, 3), (date(2030, 12, 1), date(2031, 1, 1))),
    ],
)
def test_each_view_covers_its_day_week_or_month(view, anchor, expected):
    assert view_range(view, anchor) == expected


@pytest.mark.parametrize(
    ("local_time", "part"),
    [("00:00", DayPart.MORNING), ("11:50", DayPart.MORNING), ("12:00", DayPart.AFTERNOON), ("17:50", DayPart.AFTERNOON),
     ("18:00", DayPart.EVENING), ("23:50", DayPart.EVENING)],
)  # fmt: skip
def test_the_day_splits_into_morning_afternoon_and_evening(local_time, part):
    hours, minutes = map(int, local_time.split(":"))
    assert day_part(hours * 60 + minutes) is part


def _row(lot_id: str, starts: datetime, time_zone: str = "Europe/Paris") -> ScheduleRow:
    return ScheduleRow(
        lot_id=lot_id,
        sale_id="sale",
        sale_title="Sale",
        time_zone=time_zone,
        product_id="p",
        product_title="Product",
        format=Format.ENGLISH,
        currency="EUR",
        start_price=1_000,
        price=None,
        buy_now_price=None,
        quantity=1,
        state=State.SCHEDULED,
        estimated_start=starts,
        actions=RowActions(),
    )


def _slots(schedule, part):
    [day] = schedule.days
    [bucket] = [p for p in day.parts if p.part is part]
    return [(slot.start_time, [row.lot_id for row in slot.rows]) for slot in bucket.slots]


def test_rows_fall_into_ten_minute_slots_of_their_part_of_day():
    rows = [
        _row("a", datetime(2030, 5, 8, 8, 0, tzinfo=UTC)),  # 10:00 Paris
        _row("b", datetime(2030, 5, 8, 8, 7, tzinfo=UTC)),  # 10:07 → the 10:00 slot
        _row("c", datetime(2030, 5, 8, 8, 10, tzinfo=UTC)),  # 10:10
        _row("d", datetime(2030, 5, 8, 12, 30, tzinfo=UTC)),  # 14:30
        _row("e", datetime(2030, 5, 8, 17, 0, tzinfo=UTC)),  # 19:00
    ]
    schedule = build_schedule(ScheduleView.DAY, date(2030, 5, 8), rows, truncated=False)

    assert [part.part for part in schedule.days[0].parts] == [DayPart.MORNING, DayPart.AFTERNOON, DayPart.EVENING]
    assert _slots(schedule, DayPart.MORNING) == [("10:00", ["a", "b"]), ("10:10", ["c"])]
    assert _slots(schedule, DayPart.AFTERNOON) == [("14:30", ["d"])]
    assert _slots(schedule, DayPart.EVENING) == [("19:00", ["e"])]
    assert schedule.days[0].parts[0].slots[0].starts_at == datetime(2030, 5, 8, 8, 0, tzinfo=UTC)


def test_the_sales_time_zone_decides_the_day_and_the_part_of_day():
    # 17:00 UTC on 7 May is 02:00 on 8 May in Tokyo (a morning lot) and 19:00 on 7 May in Paris.
    instant = datetime(2030, 5, 7, 17, 0, tzinfo=UTC)
    rows = [_row("tokyo", instant, "Asia/Tokyo"), _row("paris", instant, "Europe/Paris")]

    eighth = build_schedule(ScheduleView.DAY, date(2030, 5, 8), rows, truncated=False)
    seventh = build_schedule(ScheduleView.DAY, date(2030, 5, 7), rows, truncated=False)

    assert _slots(eighth, DayPart.MORNING) == [("02:00", ["tokyo"])]
    assert _slots(seventh, DayPart.EVENING) == [("19:00", ["paris"])]
    assert _slots(seventh, DayPart.MORNING) == []


def test_a_week_shows_seven_days_and_drops_rows_outside_it():
    rows = [
        _row("monday", datetime(2030, 5, 6, 9, 0, tzinfo=UTC)),
        _row("sunday", datetime(2030, 5, 12, 9, 0, tzinfo=UTC)),
        _row("next-monday", datetime(2030, 5, 13, 9, 0, tzinfo=UTC)),
    ]
    week = build_schedule(ScheduleView.WEEK, date(2030, 5, 9), rows, truncated=False)
    shown = [row.lot_id for day in week.days for part in day.parts for slot in part.slots for row in slot.rows]

    assert [day.date for day in week.days] == [date(2030, 5, d) for d in range(6, 13)]
    assert shown == ["monday", "sunday"]


def test_a_month_shows_every_day_of_the_month():
    month = build_schedule(ScheduleView.MONTH, date(2030, 2, 14), [], truncated=False)
    assert (len(month.days), month.first_date, month.end_date) == (28, date(2030, 2, 1), date(2030, 3, 1))


# -- the use case ---------------------------------------------------------------------------------


async def test_the_schedule_shows_each_product_once_with_prices_method_and_quantity(catalog):
    sale, lots = await catalog.published_sale(
        quantity=3, terms=catalog.english_terms(opening_bid=5_000, buy_now=90_000)
    )
    schedule = await catalog(get_schedule, catalog.PUBLIC, GetSchedule(ScheduleView.DAY, date(2030, 5, 8)))

    [slot] = schedule.days[0].parts[0].slots
    [row] = slot.rows
    assert (slot.start_time, row.lot_id, row.sale_id, row.product_title) == ("10:00", lots[0].id, sale.id, "Oak table")
    assert (row.format, row.start_price, row.price, row.buy_now_price, row.quantity, row.currency) == (
        Format.ENGLISH,
        5_000,
        None,
        90_000,
        3,
        "EUR",
    )
    assert row.actions == RowActions()  # anonymous callers get no actions


async def test_the_schedule_shows_a_lucky_lots_fixed_price(catalog):
    await catalog.published_sale(terms=catalog.lucky_terms())
    schedule = await catalog(get_schedule, catalog.PUBLIC, GetSchedule(ScheduleView.WEEK, date(2030, 5, 8)))
    [row] = [row for day in schedule.days for part in day.parts for slot in part.slots for row in slot.rows]
    assert (row.start_price, row.price, row.format) == (None, 500, Format.LUCKY)


async def test_draft_and_other_days_lots_stay_off_the_schedule(catalog):
    await catalog.lot(await catalog.sale())  # a draft
    await catalog.published_sale(spec=catalog.live_sale_spec(day=date(2030, 5, 9)))
    day = await catalog(get_schedule, catalog.ADMIN, GetSchedule(ScheduleView.DAY, date(2030, 5, 8)))
    week = await catalog(get_schedule, catalog.ADMIN, GetSchedule(ScheduleView.WEEK, date(2030, 5, 8)))
    count = lambda s: sum(len(slot.rows) for d in s.days for p in d.parts for slot in p.slots)  # noqa: E731
    assert (count(day), count(week)) == (0, 1)


async def test_a_bidder_sees_which_actions_are_open_to_them_now(catalog):
    sale, lots = await catalog.published_sale(spec=catalog.live_sale_spec(rule=ApprovalRule.AUTO_ALL))
    query = GetSchedule(ScheduleView.DAY, date(2030, 5, 8))

    async def actions(who):
        schedule = await catalog(get_schedule, who, query)
        return schedule.days[0].parts[0].slots[0].rows[0].actions

    unregistered = await actions(catalog.bidder(1))
    await catalog(register_for_sale, catalog.bidder(1), sale.id)
    registered = await actions(catalog.bidder(1))
    reserved = await catalog(reserve_lot, catalog.bidder(1), lots[0].id)
    after_reserving = await actions(catalog.bidder(1))
    catalog.now = datetime(2030, 5, 8, 7, 50, tzinfo=UTC)
    room_open = await actions(catalog.bidder(1))
    await catalog(start_lot, catalog.ROOM_SERVICE, lots[0].id)
    live = await actions(catalog.bidder(1))

    assert unregistered == RowActions(needs_registration=True)
    assert registered == RowActions(can_reserve=True)
    assert after_reserving == RowActions(reserved=True, reservation_id=reserved.reservation.id)
    assert room_open == RowActions(can_enter_room=True, reserved=True, reservation_id=reserved.reservation.id)
    assert live == RowActions(can_enter_room=True, reserved=True, reservation_id=reserved.reservation.id)
    assert (await actions(catalog.SELLER)) == RowActions()


async def test_the_schedule_is_narrowed_by_sale_or_seller(catalog):
    first, _ = await catalog.published_sale()
    await catalog.published_sale()
    by_sale = await catalog(
        get_schedule, catalog.PUBLIC, GetSchedule(ScheduleView.DAY, date(2030, 5, 8), sale_id=first.id)
    )
    by_seller = await catalog(
        get_schedule, catalog.PUBLIC, GetSchedule(ScheduleView.DAY, date(2030, 5, 8), seller_id="seller-2")
    )
    rows = lambda s: [r.sale_id for d in s.days for p in d.parts for slot in p.slots for r in slot.rows]  # noqa: E731
    assert rows(by_sale) == [first.id]
    assert rows(by_seller) == []


async def test_the_schedule_says_when_it_was_cut_short(catalog, monkeypatch):
    monkeypatch.setattr(schedule_use_case, "MAX_SCHEDULE_LOTS", 2)
    await catalog.published_sale(quantity=3)
    schedule = await catalog(get_schedule, catalog.PUBLIC, GetSchedule(ScheduleView.DAY, date(2030, 5, 8)))
    assert schedule.truncated


async def test_a_bad_filter_id_is_refused(catalog):
    with pytest.raises(InvalidArgument):
        await catalog(get_schedule, catalog.PUBLIC, GetSchedule(ScheduleView.DAY, date(2030, 5, 8), sale_id="a b"))
