"""Running notify: migrations, two replicas sharing the work, payment and eligibility notices,
the SMS provider's receipts, and bad input refused with clear errors."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1.money_pb2 import Money
from gavel.events.v1 import catalog_events_pb2 as cat
from gavel.events.v1 import eligibility_events_pb2 as elig
from gavel.events.v1 import payment_events_pb2 as pay
from gavel.notify.v1 import notify_service_pb2 as pb
from gavel_kit.db import Database
from notify.adapters.orm import metadata
from notify.main import MIGRATIONS, definition

pytestmark = pytest.mark.integration

VERSION_TABLE = definition().version_table


def schema_differences(connection) -> list:  # type: ignore[no-untyped-def]
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [d for d in compare_metadata(context, metadata) if VERSION_TABLE not in str(d)]


async def test_migrations_build_exactly_the_mapped_schema_and_run_again_harmlessly(database_url, tmp_path):
    env = {**os.environ, "GAVEL_VAR_DIR": str(tmp_path), "GAVEL_NOTIFY_DATABASE_URL": database_url}
    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "notify.main", "migrate", env=env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(migrate.communicate(), 60)
    assert migrate.returncode == 0, stderr.decode()
    db = Database(database_url)
    try:
        await db.migrate(MIGRATIONS, VERSION_TABLE)
        async with db.engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            differences = await connection.run_sync(schema_differences)
    finally:
        await db.dispose()
    assert tables == {*metadata.tables, VERSION_TABLE}
    assert differences == []


async def test_two_replicas_share_the_events_and_the_sending_and_each_notice_goes_out_once(
    start_notify, publisher, mail_sink
):
    first = await start_notify(replica_id="notify-a")
    second = await start_notify(replica_id="notify-b")
    sale = first.new_id("sale-")
    users = [first.new_id(f"u{n}-") for n in range(12)]
    for user in users:
        await first.reachable(user, email=f"{user}@example.test")
    subject = f"gavel.catalog.registration_decided.{sale}"
    for user in users:
        decided = cat.RegistrationDecided(
            event_id=first.new_id("ev-"),
            sale_id=sale,
            bidder_id=user,
            status=res.REGISTRATION_STATUS_APPROVED,
            occurred_at=first.stamp(datetime.now(UTC)),
        )
        await publisher.event(subject, decided)
        await publisher.event(subject, decided)  # and again, as a re-publish would
    mails = await mail_sink.wait_for(len(users))
    await first.wait_deliveries(
        lambda found: len(found) == len(users) and all(d.status == pb.DELIVERY_STATUS_SENT for d in found)
    )
    assert sorted(m.to for m in mails) == sorted(f"{u}@example.test" for u in users)
    assert len(mail_sink.mails()) == len(users)
    assert first.rt.ready
    assert second.rt.ready


async def test_payment_and_eligibility_events_become_notices_and_sms_receipts_come_back(
    start_notify, publisher, mail_sink, sms_sandbox
):
    notify = await start_notify()
    jun = notify.new_id("jun-")
    await notify.reachable(jun, email="jun@example.test", phone="+821055550000", locale="ko", time_zone="Asia/Seoul")
    now = datetime.now(UTC)
    total = Money(amount_minor=1_481_340, currency="KRW")
    await publisher.event(
        "gavel.payment.invoice.overdue.inv-1",
        pay.InvoiceOverdue(
            event_id=notify.new_id(),
            occurred_at=notify.stamp(now),
            invoice_id="inv-1",
            bidder_id=jun,
            total=total,
            due_at=notify.stamp(now - timedelta(days=1)),
        ),
    )
    await publisher.event(
        f"gavel.payment.bidder.banned.{jun}",
        elig.BidderBanned(event_id=notify.new_id(), occurred_at=notify.stamp(now), bidder_id=jun, reason="non-payment"),
    )
    await publisher.event(
        "gavel.payment.invoice.paid.inv-1",
        pay.PaymentCaptured(
            event_id=notify.new_id(),
            occurred_at=notify.stamp(now),
            invoice_id="inv-1",
            bidder_id=jun,
            payment_id="p-1",
            amount=total,
            invoice_settled=True,
        ),
    )
    mails = await mail_sink.wait_for(3)
    assert sorted(m.subject for m in mails) == sorted(
        ["연체: ₩1,481,340", "입찰이 제한되었습니다", "결제 완료: ₩1,481,340"]
    )
    [text] = await sms_sandbox.wait_for(1)
    assert text["encoding"] == "ucs2"
    assert text["segments"] == 1
    # numbers ending in 0000 are undeliverable in the sandbox: the receipt says so
    found = await notify.wait_deliveries(lambda found: any(d.status == pb.DELIVERY_STATUS_FAILED for d in found), jun)
    [failed] = [d for d in found if d.channel == pb.CHANNEL_SMS]
    assert (failed.kind, failed.reason, failed.segments) == ("payment_overdue", "undeliverable", 1)


async def test_bad_requests_get_clear_errors_and_users_cannot_act_for_others(start_notify):
    notify = await start_notify()
    bidder = notify.user("kim")
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await bidder.SetPreferences(
            pb.SetPreferencesRequest(
                request_id="p1", preferences=pb.Preferences(locale="de", phone=pb.ContactPoint(address="12"))
            )
        )
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as other:
        await bidder.GetPreferences(pb.GetPreferencesRequest(user_id="someone-else"))
    assert other.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as admin_only:
        await bidder.ListDeadLetters(pb.ListDeadLettersRequest())
    assert admin_only.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as no_token:
        await notify.anonymous.GetPreferences(pb.GetPreferencesRequest())
    assert no_token.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as no_request_id:
        await bidder.SetPreferences(pb.SetPreferencesRequest(preferences=pb.Preferences()))
    assert no_request_id.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    first = await bidder.SetPreferences(
        pb.SetPreferencesRequest(request_id="same", preferences=pb.Preferences(locale="zh"))
    )
    again = await bidder.SetPreferences(
        pb.SetPreferencesRequest(request_id="same", preferences=pb.Preferences(locale="zh"))
    )
    assert first == again
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await bidder.SetPreferences(
            pb.SetPreferencesRequest(request_id="same", preferences=pb.Preferences(locale="fr"))
        )
    assert reused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
