"""Time in notify, with the clock injected: quiet hours hold and release (stale ones dropped), a
flood of outbid notices becomes one summary, reminders follow the running order, codes verify."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1.money_pb2 import Money
from gavel.events.v1 import catalog_events_pb2 as cat
from gavel.events.v1 import room_events_pb2 as room
from gavel.notify.v1 import notify_service_pb2 as pb

pytestmark = pytest.mark.integration

SMS_ONLY = [pb.KindPreference(kind="outbid", email=False, sms=True)]


def usd(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="USD")


def outbid(notify, user: str, price: int, at: datetime) -> room.RoomEvent:  # type: ignore[no-untyped-def]
    accepted = room.BidAccepted(
        bid_id=notify.new_id(), bidder="someone-else", price=usd(price), leader="someone-else", previous_leader=user
    )
    return room.RoomEvent(at=notify.stamp(at), bid_accepted=accepted)


GONE_OUT = (pb.DELIVERY_STATUS_SENT, pb.DELIVERY_STATUS_DELIVERED)  # DELIVERED: the SMS receipt came back


def statuses(found: list[pb.Delivery]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in found:
        name = "SENT" if d.status in GONE_OUT else pb.DeliveryStatus.Name(d.status).removeprefix("DELIVERY_STATUS_")
        counts[name] = counts.get(name, 0) + 1
    return counts


async def test_quiet_hours_hold_notices_until_the_local_morning_and_drop_those_gone_stale(
    start_notify, publisher, sms_sandbox, clock
):
    clock.set(datetime(2026, 12, 4, 22, 30, tzinfo=UTC))  # 23:30 in Paris
    notify = await start_notify()
    erin = notify.new_id("erin-")
    await notify.reachable(
        erin,
        phone="+33698765432",
        time_zone="Europe/Paris",
        kinds=SMS_ONLY,
        quiet_hours=[pb.QuietHours(channel=pb.CHANNEL_SMS, start="22:00", end="07:00")],
    )
    closing, open_lot = notify.new_id("lot-"), notify.new_id("lot-")
    await publisher.room(closing, outbid(notify, erin, 20_000, clock()))
    await publisher.room(open_lot, outbid(notify, erin, 30_000, clock()))
    held = await notify.wait_deliveries(lambda found: statuses(found) == {"HELD": 2}, erin)
    morning = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)  # 07:00 in Paris
    assert {d.due_at.ToDatetime(tzinfo=UTC) for d in held} == {morning}
    assert {d.reason for d in held} == {"quiet_hours"}

    sold = room.RoomEvent(
        at=notify.stamp(clock()), lot_sold=room.LotSold(buyer="someone-else", hammer_price=usd(20_000))
    )
    sequence = await publisher.room(closing, sold)  # one lot ends during the night
    await publisher.consumed("ROOM_EVENTS", "notify-room", sequence)
    clock.set(morning + timedelta(seconds=30))
    notify.components.loop.wake()

    [text] = await sms_sandbox.wait_for(1)
    assert "$300.00" in text["text"]
    found = await notify.wait_deliveries(lambda found: "HELD" not in statuses(found), erin)
    by_lot = {d.lot_id: d for d in found}
    assert by_lot[open_lot].status in GONE_OUT
    assert (by_lot[closing].status, by_lot[closing].reason) == (pb.DELIVERY_STATUS_DROPPED, "stale")


async def test_a_bidder_outbid_again_and_again_within_a_minute_gets_a_summary_not_an_sms_each_time(
    start_notify, publisher, sms_sandbox, clock
):
    clock.set(datetime(2026, 12, 4, 12, 0, 10, tzinfo=UTC))
    notify = await start_notify(fold_after="3")
    frank = notify.new_id("frank-")
    await notify.reachable(frank, phone="+15555550123", kinds=SMS_ONLY)
    lots = [notify.new_id("lot-") for _ in range(6)]
    for number, lot in enumerate(lots):
        await publisher.room(lot, outbid(notify, frank, 10_000 + 1_000 * number, clock()))

    found = await notify.wait_deliveries(
        lambda found: statuses(found) == {"SENT": 3, "FOLDED": 3, "PENDING": 1},
        frank,
    )
    [summary] = [d for d in found if d.kind == "outbid_summary"]
    assert {d.folded_into for d in found if d.status == pb.DELIVERY_STATUS_FOLDED} == {summary.delivery_id}
    assert summary.due_at.ToDatetime(tzinfo=UTC) == datetime(2026, 12, 4, 12, 1, tzinfo=UTC)
    assert len(sms_sandbox.book.records) == 3

    clock.set(datetime(2026, 12, 4, 12, 1, 1, tzinfo=UTC))  # the minute is over
    notify.components.loop.wake()
    texts = await sms_sandbox.wait_for(4)
    assert texts[3]["text"].startswith("Outbid 3 times: ")
    assert "$130.00" in texts[3]["text"]
    assert "$150.00" in texts[3]["text"]


async def test_reminders_follow_the_running_order_and_the_next_lot_is_announced(
    start_notify, publisher, mail_sink, sms_sandbox, clock
):
    start = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    clock.set(start)
    notify = await start_notify()
    gina = notify.new_id("gina-")
    await notify.reachable(gina, email="gina@example.test", phone="+447700900123")
    sale, first, second = notify.new_id("sale-"), notify.new_id("lot-"), notify.new_id("lot-")
    await publisher.event(
        f"gavel.catalog.sale_published.{sale}",
        cat.SalePublished(event_id=notify.new_id(), sale_id=sale, title="Morning sale"),
    )
    for position, lot, minutes in ((0, first, 20), (1, second, 30)):
        scheduled = cat.LotScheduled(
            event_id=notify.new_id(),
            lot_id=lot,
            group_id=lot,
            sale_id=sale,
            estimated_start=notify.stamp(start + timedelta(minutes=minutes)),
            lot=res.Lot(id=lot, group_id=lot, sale_id=sale, position=position, currency="USD"),
        )
        await publisher.event(f"gavel.catalog.lot_scheduled.{lot}", scheduled)
    reservation = cat.ReservationCreated(
        event_id=notify.new_id(),
        occurred_at=notify.stamp(start),
        reservation_id=notify.new_id("r-"),
        group_id=second,
        sale_id=sale,
        bidder_id=gina,
        estimated_start=notify.stamp(start + timedelta(minutes=30)),
    )
    await publisher.event(f"gavel.catalog.reservation_created.{second}", reservation)
    [confirmed] = await mail_sink.wait_for(1)
    assert confirmed.subject == "Reserved: lot 2 of Morning sale"

    retimed = cat.LotsRetimed(
        event_id=notify.new_id(),
        sale_id=sale,
        started_lot_id=first,
        groups=[
            cat.RetimedGroup(
                group_id=second,
                lot_ids=[second],
                previous_start=notify.stamp(start + timedelta(minutes=30)),
                estimated_start=notify.stamp(start + timedelta(minutes=45)),
            )
        ],
    )
    await publisher.event(f"gavel.catalog.lots_retimed.{sale}", retimed)
    reminders = await notify.wait_deliveries(
        lambda found: (
            {d.due_at.ToDatetime(tzinfo=UTC) for d in found if d.kind == "lot_starting_soon"}
            == {start + timedelta(minutes=35)}
        ),
        gina,
    )
    assert {d.channel for d in reminders if d.kind == "lot_starting_soon"} == {pb.CHANNEL_EMAIL, pb.CHANNEL_SMS}

    clock.set(start + timedelta(minutes=26))
    starting = cat.LotStarting(
        event_id=notify.new_id(), lot_id=first, group_id=first, sale_id=sale, started_at=notify.stamp(clock())
    )
    await publisher.event(f"gavel.catalog.lot_starting.{first}", starting)
    [next_up] = await sms_sandbox.wait_for(1)
    assert next_up["text"].startswith("Your lot is next: lot 2 of Morning sale")
    assert len(mail_sink.mails()) == 1  # the reminder is not due yet

    clock.set(start + timedelta(minutes=35, seconds=1))
    notify.components.loop.wake()
    mails = await mail_sink.wait_for(2)
    assert mails[1].subject == "Starting soon: lot 2 of Morning sale"
    assert "10:45" in mails[1].part("plain")
    texts = await sms_sandbox.wait_for(2)
    assert texts[1]["text"].startswith("lot 2 of Morning sale starts Dec 4, 10:45")


async def test_an_address_is_verified_with_the_code_sent_to_it_before_anything_else_goes_there(start_notify, mail_sink):
    notify = await start_notify()
    hana = notify.user(notify.new_id("hana-"))
    await hana.SetPreferences(
        pb.SetPreferencesRequest(
            request_id="p1",
            preferences=pb.Preferences(
                locale="ko", time_zone="Asia/Seoul", email=pb.ContactPoint(address="hana@example.test")
            ),
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await hana.SendTestMessage(pb.SendTestMessageRequest(request_id="t1", channel=pb.CHANNEL_EMAIL))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as forged:
        await hana.SetPreferences(
            pb.SetPreferencesRequest(
                request_id="p2",
                preferences=pb.Preferences(email=pb.ContactPoint(address="hana@example.test", verified=True)),
            )
        )
    assert forged.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    started = await hana.StartVerification(pb.StartVerificationRequest(request_id="v1", channel=pb.CHANNEL_EMAIL))
    assert started.sent_to == "h•••@example.test"
    [mail] = await mail_sink.wait_for(1)
    assert mail.subject.startswith("Gavel 인증 코드: ")
    code = mail.subject.rsplit(" ", 1)[1]
    wrong = "000000" if code != "000000" else "111111"
    with pytest.raises(grpc.aio.AioRpcError) as mistaken:
        await hana.ConfirmVerification(
            pb.ConfirmVerificationRequest(request_id="c1", channel=pb.CHANNEL_EMAIL, code=wrong)
        )
    assert mistaken.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    confirmed = await hana.ConfirmVerification(
        pb.ConfirmVerificationRequest(request_id="c2", channel=pb.CHANNEL_EMAIL, code=code)
    )
    assert confirmed.contact.verified

    await hana.SendTestMessage(pb.SendTestMessageRequest(request_id="t2", channel=pb.CHANNEL_EMAIL))
    mails = await mail_sink.wait_for(2)
    assert mails[1].subject == "Gavel 테스트 메시지"
    await notify.wait_deliveries(lambda found: statuses(found) == {"SENT": 2}, hana.subject)
    mine = (await hana.ListMyNotifications(pb.ListMyNotificationsRequest())).notifications
    assert [(n.kind, n.address) for n in mine] == [("test", "h•••@example.test"), ("verification", "h•••@example.test")]
    assert mine[1].summary == "Gavel 인증 코드: ••••••"  # the code is not kept
