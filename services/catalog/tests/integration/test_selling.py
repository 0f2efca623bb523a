"""Sellers build sales over gRPC; the catalog lays them out, schedules them and announces them on NATS."""

from datetime import UTC, date, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from gavel.catalog.v1 import catalog_service_pb2 as pb
from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1.paging_pb2 import PageRequest
from gavel.events.v1 import catalog_events_pb2 as ev
from gavel_kit.grpc.errors import bad_request_of

pytestmark = pytest.mark.integration


def in_days(days: int) -> date:
    return datetime.now(UTC).date() + timedelta(days=days)


def fields_of(error: grpc.aio.AioRpcError) -> set[str]:
    bad_request = bad_request_of(error)
    return {violation.field for violation in bad_request.field_violations} if bad_request else set()


async def test_a_published_sale_and_each_of_its_lots_are_announced_on_nats_with_their_event_ids(catalog):
    product = await catalog.product(title="Studio pottery", quantity=2)
    sale = await catalog.live_sale(in_days(10), [("18:00", "21:00")])
    group = await catalog.lot(sale, product, **catalog.english(reserve=catalog.usd(9_000)))

    published = await catalog.publish(sale)

    assert published.sale.state == res.SALE_STATE_SCHEDULED
    assert [lot.state for lot in published.lots] == [res.LOT_STATE_SCHEDULED] * 2
    [announced] = await catalog.events.wait_for("sale_published")
    scheduled = await catalog.events.wait_for("lot_scheduled", 2)
    sale_published = ev.SalePublished.FromString(announced.data)
    assert announced.subject == f"gavel.catalog.sale_published.{sale.id}"
    assert announced.headers["Nats-Msg-Id"] == sale_published.event_id
    assert announced.headers["Gavel-Event-Type"] == "gavel.events.v1.SalePublished"
    assert list(sale_published.lot_ids) == [lot.id for lot in group]
    lots_scheduled = [ev.LotScheduled.FromString(message.data) for message in scheduled]
    assert [(e.lot_id, e.room_index, e.room_count) for e in lots_scheduled] == [
        (group[0].id, 0, 2),
        (group[1].id, 1, 2),
    ]
    assert [m.headers["Nats-Msg-Id"] for m in scheduled] == [e.event_id for e in lots_scheduled]
    assert lots_scheduled[0].lot.seed == group[0].seed != 0  # the engines get the secret seed
    assert lots_scheduled[0].lot.english.reserve.amount_minor == 9_000
    stored = await catalog.rt.js.get_last_msg("CATALOG", f"gavel.catalog.sale_published.{sale.id}")
    assert stored.headers["Nats-Msg-Id"] == sale_published.event_id  # kept in the CATALOG stream


async def test_outsiders_see_a_lot_without_its_secrets_and_its_seller_sees_them(catalog):
    product = await catalog.product()
    sale = await catalog.live_sale(in_days(10), [("18:00", "21:00")])
    [lot] = await catalog.lot(sale, product, **catalog.english(reserve=catalog.usd(9_000)))
    await catalog.publish(sale)

    public = (await catalog.anonymous.GetLot(pb.GetLotRequest(lot_id=lot.id))).lot
    own = (await catalog.seller.GetLot(pb.GetLotRequest(lot_id=lot.id))).lot

    assert (public.seed, public.english.HasField("reserve"), public.has_reserve) == (0, False, True)
    assert (own.seed, own.english.reserve.amount_minor) == (lot.seed, 9_000)


async def test_the_schedule_places_each_lot_in_its_sales_morning_afternoon_or_evening_slot(catalog):
    day = in_days(30)
    sale = await catalog.live_sale(
        day, [("09:00", "10:00"), ("13:00", "14:00"), ("19:00", "20:00")], time_zone="Asia/Tokyo"
    )
    for title in ("Writing desk", "First edition", "Pottery box"):
        await catalog.lot(sale, await catalog.product(title=title), duration_slots=6)  # an hour each
    await catalog.publish(sale)

    request = pb.GetScheduleRequest(view=res.SCHEDULE_VIEW_DAY, date=day.isoformat())
    [shown] = (await catalog.bidder(1).GetSchedule(request)).days

    placed = {
        res.DayPart.Name(part.part): [
            (slot.start_time, [row.product_title for row in slot.rows]) for slot in part.slots
        ]
        for part in shown.parts
    }
    assert placed == {
        "DAY_PART_MORNING": [("09:00", ["Writing desk"])],
        "DAY_PART_AFTERNOON": [("13:00", ["First edition"])],
        "DAY_PART_EVENING": [("19:00", ["Pottery box"])],
    }
    evening = shown.parts[2].slots[0]
    assert evening.starts_at.ToDatetime(tzinfo=UTC) == datetime.combine(day, datetime.min.time(), UTC) + timedelta(
        hours=10
    )  # 19:00 in Tokyo
    [row] = evening.rows
    assert (row.start_price.amount_minor, row.start_price.currency, row.quantity, row.time_zone) == (
        5_000,
        "USD",
        1,
        "Asia/Tokyo",
    )
    assert (row.actions.needs_registration, row.actions.can_reserve) == (True, False)


async def test_the_week_view_shows_monday_to_sunday_and_anonymous_callers_get_no_actions(catalog):
    day = in_days(30)
    sale = await catalog.live_sale(day, [("10:00", "11:00")])
    await catalog.lot(sale, await catalog.product())
    await catalog.publish(sale)

    week = await catalog.anonymous.GetSchedule(pb.GetScheduleRequest(view=res.SCHEDULE_VIEW_WEEK, date=day.isoformat()))

    monday = day - timedelta(days=day.weekday())
    assert [d.date for d in week.days] == [(monday + timedelta(days=n)).isoformat() for n in range(7)]
    [row] = [row for d in week.days for part in d.parts for slot in part.slots for row in slot.rows]
    assert row.actions == res.ScheduleActions()


async def test_a_seller_edits_a_draft_and_the_catalog_lays_its_lots_out_again(catalog):
    sale = await catalog.live_sale(in_days(20), [("10:00", "11:00")])
    desk = await catalog.lot(sale, await catalog.product(title="Desk"), duration_slots=3)
    lamp = await catalog.lot(sale, await catalog.product(title="Lamp"), duration_slots=3)
    assert lamp[0].estimated_start.ToDatetime().strftime("%H:%M") == "10:30"

    reordered = await catalog.seller.ReorderLots(
        pb.ReorderLotsRequest(request_id=catalog.request_id(), sale_id=sale.id, lot_ids=[lamp[0].id, desk[0].id])
    )
    assert [(lot.id, lot.estimated_start.ToDatetime().strftime("%H:%M")) for lot in reordered.lots] == [
        (lamp[0].id, "10:00"),
        (desk[0].id, "10:30"),
    ]

    longer = res.Lot(id=desk[0].id, duration_slots=4, **catalog.english(7_000))
    [updated] = (await catalog.seller.UpdateLot(pb.UpdateLotRequest(request_id=catalog.request_id(), lot=longer))).lots
    assert (updated.english.opening_bid.amount_minor, updated.HasField("estimated_start")) == (7_000, False)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await catalog.publish(sale)
    assert fields_of(caught.value) == {"sale.lots[1].duration_slots"}

    wider = res.Sale(
        id=sale.id,
        title="Longer morning sale",
        time_zone="UTC",
        live_session=res.LiveSession(
            date=sale.live_session.date, time_slots=[res.TimeSlot(start="10:00", end="12:00")]
        ),
    )
    await catalog.seller.UpdateSale(pb.UpdateSaleRequest(request_id=catalog.request_id(), sale=wider))
    await catalog.seller.RemoveLot(pb.RemoveLotRequest(request_id=catalog.request_id(), lot_id=lamp[0].id))
    published = await catalog.publish(sale)

    assert published.sale.title == "Longer morning sale"
    assert [(lot.id, lot.position, lot.estimated_start.ToDatetime().strftime("%H:%M")) for lot in published.lots] == [
        (desk[0].id, 0, "10:00")
    ]


async def test_lists_page_with_tokens_and_filter_by_text_state_kind_and_format(catalog):
    for n in range(5):
        await catalog.product(title=f"Brass lamp {n}")
    await catalog.product(title="Glass vase")
    draft = await catalog.live_sale(in_days(5), [("10:00", "11:00")], title="Spring draft")
    tender = (
        await catalog.seller.CreateSale(
            pb.CreateSaleRequest(
                request_id=catalog.request_id(),
                sale=res.Sale(
                    title="Autumn TENDER",
                    time_zone="Europe/Paris",
                    timed_tender=res.TimedTender(
                        starts_at=_stamp(datetime.now(UTC) + timedelta(days=2)),
                        ends_at=_stamp(datetime.now(UTC) + timedelta(days=4)),
                    ),
                ),
            )
        )
    ).sale
    await catalog.lot(tender, await catalog.product(title="Etching"), duration_slots=0, **catalog.open_tender())
    await catalog.publish(tender)

    titles, token = [], ""
    while True:
        page = await catalog.anonymous.ListProducts(
            pb.ListProductsRequest(page=PageRequest(page_size=2, page_token=token), query="LAMP")
        )
        assert page.page.total_size == 5
        titles += [product.title for product in page.products]
        token = page.page.next_page_token
        if not token:
            break
    assert titles == [f"Brass lamp {n}" for n in range(5)]

    first = await catalog.anonymous.ListProducts(pb.ListProductsRequest(page=PageRequest(page_size=1)))
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # a token of one list is refused by another
        await catalog.anonymous.ListSales(pb.ListSalesRequest(page=PageRequest(page_token=first.page.next_page_token)))
    assert fields_of(caught.value) == {"page.page_token"}

    async def sale_titles(caller, **filters):
        return [sale.title for sale in (await caller.ListSales(pb.ListSalesRequest(**filters))).sales]

    assert await sale_titles(catalog.anonymous) == ["Autumn TENDER"]  # drafts only for their owner
    assert await sale_titles(catalog.seller) == ["Autumn TENDER", "Spring draft"]  # soonest first
    assert await sale_titles(catalog.seller, states=[res.SALE_STATE_DRAFT]) == [draft.title]
    assert await sale_titles(catalog.seller, kind=res.SALE_KIND_TIMED_TENDER) == ["Autumn TENDER"]
    assert await sale_titles(catalog.seller, format=res.FORMAT_TENDER_OPEN) == ["Autumn TENDER"]
    assert await sale_titles(catalog.seller, format=res.FORMAT_ENGLISH) == []
    assert await sale_titles(catalog.seller, query="tender") == ["Autumn TENDER"]
    assert await sale_titles(catalog.seller, query="%") == []  # wildcards match themselves
    lots = await catalog.anonymous.ListLots(pb.ListLotsRequest(sale_id=tender.id))
    assert [(lot.format, lot.estimated_start) for lot in lots.lots] == [(res.FORMAT_TENDER_OPEN, tender.starts_at)]


async def test_the_room_service_opens_and_closes_lots_and_the_last_one_closes_the_sale(catalog):
    sale, [lot] = await catalog.published_sale_starting_soon()

    started = await catalog.room_service.StartLot(pb.StartLotRequest(request_id=catalog.request_id(), lot_id=lot.id))
    assert started.lot.state == res.LOT_STATE_LIVE
    [starting] = await catalog.events.wait_for("lot_starting")
    assert ev.LotStarting.FromString(starting.data).lot_id == lot.id

    sold = pb.CloseLotRequest(
        request_id=catalog.request_id(),
        lot_id=lot.id,
        outcome=res.LOT_OUTCOME_SOLD,
        winner_id="bidder-7",
        hammer_price=catalog.usd(42_000),
        room_sequence=12,
    )
    for person in (catalog.admin, catalog.crier, catalog.seller):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await person.CloseLot(sold)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    in_euros = pb.CloseLotRequest()
    in_euros.CopyFrom(sold)
    in_euros.request_id = catalog.request_id()
    in_euros.hammer_price.currency = "EUR"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await catalog.room_service.CloseLot(in_euros)
    assert fields_of(caught.value) == {"hammer_price.currency"}

    closed = await catalog.room_service.CloseLot(sold)

    assert (closed.lot.state, closed.lot.winner_id, closed.lot.hammer_price.amount_minor) == (
        res.LOT_STATE_CLOSED,
        "bidder-7",
        42_000,
    )
    [recorded] = await catalog.events.wait_for("lot_outcome_recorded")
    outcome = ev.LotOutcomeRecorded.FromString(recorded.data)
    assert (
        outcome.hammer_price.amount_minor,
        outcome.hammer_price.currency,
        outcome.sale_closed,
        outcome.room_sequence,
    ) == (42_000, "USD", True, 12)
    assert (await catalog.anonymous.GetSale(pb.GetSaleRequest(sale_id=sale.id))).sale.state == res.SALE_STATE_CLOSED


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp
