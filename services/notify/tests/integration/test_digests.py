"""Schedule digests for real: notify reads the catalog's schedule over gRPC with its service token
(a stand-in catalog serves GetSchedule here) and mails, at the user's local morning, the lots of
their day, week and month in their own time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import grpc
import pytest

from gavel.catalog.v1 import catalog_service_pb2 as cat
from gavel.catalog.v1 import catalog_service_pb2_grpc as cat_grpc
from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1.money_pb2 import Money
from gavel.notify.v1 import notify_service_pb2 as pb
from gavel_kit.testing.plugin import free_port

pytestmark = pytest.mark.integration


class StandInCatalog(cat_grpc.CatalogServiceServicer):
    """GetSchedule over a fixed list of lots, placed by their UTC date (as sales in UTC would be)."""

    def __init__(self, lots: dict[str, datetime]) -> None:
        self.lots = lots
        self.callers: list[str] = []

    async def GetSchedule(self, request, context):  # type: ignore[no-untyped-def]
        self.callers.append(dict(context.invocation_metadata()).get("authorization", ""))
        day = date.fromisoformat(request.date)
        if request.view == res.SCHEDULE_VIEW_DAY:
            first, end = day, day + timedelta(days=1)
        elif request.view == res.SCHEDULE_VIEW_WEEK:
            first = day - timedelta(days=day.weekday())
            end = first + timedelta(days=7)
        else:
            first = day.replace(day=1)
            end = (first + timedelta(days=32)).replace(day=1)
        rows = []
        for lot_id, start in sorted(self.lots.items(), key=lambda item: item[1]):
            if first <= start.date() < end:
                stamp = res.ScheduleRow().estimated_start
                stamp.FromDatetime(start)
                rows.append(
                    res.ScheduleRow(
                        lot_id=lot_id,
                        sale_id="sale-1",
                        sale_title="Winter sale",
                        product_title=f"Item {lot_id}",
                        format=res.FORMAT_ENGLISH,
                        start_price=Money(amount_minor=50_000, currency="KRW"),
                        quantity=1,
                        estimated_start=stamp,
                        time_zone="UTC",
                    )
                )
        part = res.ScheduleDayPart(part=res.DAY_PART_MORNING, slots=[res.ScheduleSlot(start_time="00:00", rows=rows)])
        return cat.GetScheduleResponse(days=[res.ScheduleDay(date=first.isoformat(), parts=[part])])


@pytest.fixture
async def catalog():  # type: ignore[no-untyped-def]
    seoul_feb_1 = datetime(2027, 1, 31, 15, 0, tzinfo=UTC)  # 2027-02-01 00:00 in Seoul
    lots = {
        "jan-31-seoul": seoul_feb_1 - timedelta(minutes=1),  # Jan 31 23:59 in Seoul: in no digest
        "feb-1-early": seoul_feb_1,  # Feb 1 00:00 in Seoul (still Jan 31 in UTC)
        "feb-1-evening": seoul_feb_1 + timedelta(hours=20),
        "feb-2": seoul_feb_1 + timedelta(days=1, hours=10),
        "feb-7-late": seoul_feb_1 + timedelta(days=6, hours=23, minutes=30),  # Sunday 23:30 in Seoul
        "feb-8": seoul_feb_1 + timedelta(days=7, hours=1),
        "feb-28": seoul_feb_1 + timedelta(days=27, hours=12),
        "mar-1-seoul": seoul_feb_1 + timedelta(days=28, hours=1),  # Feb 28 in UTC, Mar 1 in Seoul
    }
    servicer = StandInCatalog(lots)
    server = grpc.aio.server()
    cat_grpc.add_CatalogServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    await server.start()
    servicer.address = f"127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield servicer
    await server.stop(0)


async def test_daily_weekly_and_monthly_digests_list_the_lots_of_the_users_day_week_and_month_in_their_zone(
    start_notify, mail_sink, clock, catalog
):
    clock.set(datetime(2027, 1, 31, 23, 5, tzinfo=UTC))  # Monday, February 1st, 08:05 in Seoul
    notify = await start_notify({"GAVEL_CATALOG_ADDR": catalog.address}, digest_interval_s="0.1")
    iris = notify.new_id("iris-")
    await notify.reachable(
        iris,
        email="iris@example.test",
        time_zone="Asia/Seoul",
        digests=[pb.DIGEST_PERIOD_DAILY, pb.DIGEST_PERIOD_WEEKLY, pb.DIGEST_PERIOD_MONTHLY],
        digest_hour=8,
    )
    mails = await mail_sink.wait_for(3)
    by_subject = {m.subject.split(",")[0]: m.part("plain") for m in mails}
    assert set(by_subject) == {"Today's lots", "This week's lots", "This month's lots"}

    def listed(text: str) -> list[str]:
        return [line.split("Item ", 1)[1].split(" ")[0] for line in text.splitlines() if "Item " in line]

    assert listed(by_subject["Today's lots"]) == ["feb-1-early", "feb-1-evening"]
    assert listed(by_subject["This week's lots"]) == ["feb-1-early", "feb-1-evening", "feb-2", "feb-7-late"]
    assert listed(by_subject["This month's lots"]) == [
        "feb-1-early",
        "feb-1-evening",
        "feb-2",
        "feb-7-late",
        "feb-8",
        "feb-28",
    ]
    assert "Feb 1, 8:00\u202fAM" not in by_subject["Today's lots"]  # times are Seoul's: 00:00 and 20:00
    assert "Feb 1, 12:00\u202fAM" in by_subject["Today's lots"]
    assert "₩50,000" in by_subject["Today's lots"]
    assert all(caller.startswith("Bearer ") for caller in catalog.callers)

    await notify.wait_deliveries(lambda found: len(found) == 3, iris)  # the same morning records nothing more
    clock.set(datetime(2027, 2, 1, 23, 5, tzinfo=UTC))  # Tuesday 08:05 in Seoul: only the daily one
    mails = await mail_sink.wait_for(4)
    assert mails[3].subject.startswith("Today's lots")
