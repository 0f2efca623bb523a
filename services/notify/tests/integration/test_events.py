"""More of the event table, end to end: winning (provisional with its deadline, then won),
cancelled reservations and sales dropping their reminders and telling the reservers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gavel.common.v1.money_pb2 import Money
from gavel.events.v1 import catalog_events_pb2 as cat
from gavel.events.v1 import room_events_pb2 as room
from gavel.notify.v1 import notify_service_pb2 as pb

pytestmark = pytest.mark.integration


def eur(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="EUR")


async def test_a_provisional_winner_is_told_the_deadline_and_the_buyer_that_it_is_theirs(
    start_notify, publisher, mail_sink, sms_sandbox
):
    notify = await start_notify()
    lena = notify.new_id("lena-")
    await notify.reachable(lena, email="lena@example.test", phone="+4915112345678", time_zone="Europe/Berlin")
    lot = notify.new_id("lot-")
    now = datetime(2030, 1, 5, 17, 0, tzinfo=UTC)
    deadline = now + timedelta(minutes=10)
    requested = room.ConfirmationRequested(bidder=lena, price=eur(45_000), attempt=1, deadline=notify.stamp(deadline))
    await publisher.room(lot, room.RoomEvent(at=notify.stamp(now), confirmation_requested=requested))
    sold = room.LotSold(buyer=lena, hammer_price=eur(45_000), source="online")
    await publisher.room(lot, room.RoomEvent(at=notify.stamp(now), lot_sold=sold))

    mails = await mail_sink.wait_for(2)
    assert [m.subject for m in mails] == ["Confirm your win: your lot", "You bought your lot"]
    assert "Jan 5, 2030, 6:10\u202fPM" in mails[0].part("plain")  # the deadline in Berlin
    assert "€450.00" in mails[1].part("plain")
    [text] = await sms_sandbox.wait_for(1)  # "won" is e-mail only by default
    assert text["text"].startswith("Won your lot at €450.00: confirm by Jan 5, 6:10")


async def test_cancelling_a_reservation_or_the_sale_drops_the_reminders_and_the_sale_tells_its_reservers(
    start_notify, publisher, mail_sink
):
    notify = await start_notify()
    mia, noah = notify.new_id("mia-"), notify.new_id("noah-")
    for user in (mia, noah):
        await notify.reachable(user, email=f"{user}@example.test")
    sale = notify.new_id("sale-")
    await publisher.event(
        f"gavel.catalog.sale_published.{sale}",
        cat.SalePublished(event_id=notify.new_id(), sale_id=sale, title="Estate sale"),
    )
    start = datetime.now(UTC) + timedelta(days=2)
    reservations = {}
    for user in (mia, noah):
        group = notify.new_id("lot-")
        reservations[user] = cat.ReservationCreated(
            event_id=notify.new_id(),
            occurred_at=notify.stamp(datetime.now(UTC)),
            reservation_id=notify.new_id("r-"),
            group_id=group,
            sale_id=sale,
            bidder_id=user,
            estimated_start=notify.stamp(start),
        )
        await publisher.event(f"gavel.catalog.reservation_created.{group}", reservations[user])
    await mail_sink.wait_for(2)  # both reservations confirmed
    pending = await notify.wait_deliveries(lambda found: sum(d.kind == "lot_starting_soon" for d in found) == 2)
    assert {d.status for d in pending if d.kind == "lot_starting_soon"} == {pb.DELIVERY_STATUS_PENDING}

    mine = reservations[mia]
    await publisher.event(
        f"gavel.catalog.reservation_cancelled.{mine.group_id}",
        cat.ReservationCancelled(
            event_id=notify.new_id(),
            reservation_id=mine.reservation_id,
            group_id=mine.group_id,
            sale_id=sale,
            bidder_id=mia,
        ),
    )
    await notify.wait_deliveries(
        lambda found: (
            [(d.status, d.reason) for d in found if d.kind == "lot_starting_soon"]
            == [(pb.DELIVERY_STATUS_DROPPED, "cancelled")]
        ),
        mia,
    )
    await publisher.event(
        f"gavel.catalog.sale_cancelled.{sale}",
        cat.SaleCancelled(
            event_id=notify.new_id(),
            occurred_at=notify.stamp(datetime.now(UTC)),
            sale_id=sale,
            reason="Consignor withdrew",
        ),
    )
    mails = await mail_sink.wait_for(3)
    assert mails[2].to == f"{noah}@example.test"  # mia cancelled: she is not a reserver any more
    assert mails[2].subject == "Cancelled: Estate sale"
    assert "Consignor withdrew" in mails[2].part("plain")
    found = await notify.wait_deliveries(
        lambda found: (
            [(d.status, d.reason) for d in found if d.kind == "lot_starting_soon"]
            == [(pb.DELIVERY_STATUS_DROPPED, "sale_cancelled")]
        ),
        noah,
    )
    assert len(found) == 3
