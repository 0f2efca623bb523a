"""Notices from events, for real: a room's outbid reaches a real SMTP server and the SMS sandbox,
in the user's language, once — also when the event comes again and across a restart."""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import pytest

from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1.money_pb2 import Money
from gavel.events.v1 import catalog_events_pb2 as cat
from gavel.events.v1 import room_events_pb2 as room
from gavel.notify.v1 import notify_service_pb2 as pb
from notify.sandbox.smtp import MailSink

pytestmark = pytest.mark.integration


def usd(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="USD")


def configured(lot_id: str, sale_id: str, position: int = 1) -> room.RoomEvent:
    lot = res.Lot(
        id=lot_id,
        group_id=lot_id,
        sale_id=sale_id,
        position=position,
        currency="USD",
        format=res.FORMAT_ENGLISH,
        english=res.EnglishParams(opening_bid=usd(10_000), increment_preset="flat_100"),
    )
    return room.RoomEvent(lot_configured=room.LotConfigured(lot=lot))


def bid(bidder: str, price: int, previous: str | None) -> room.RoomEvent:
    accepted = room.BidAccepted(bid_id=f"b-{bidder}-{price}", bidder=bidder, price=usd(price), leader=bidder)
    if previous is not None:
        accepted.previous_leader = previous
    return room.RoomEvent(at=_now(), bid_accepted=accepted)


def _now():  # type: ignore[no-untyped-def]
    from google.protobuf.timestamp_pb2 import Timestamp

    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC))
    return stamp


async def published_sale(notify_publisher, sale_id: str, title: str) -> None:  # type: ignore[no-untyped-def]
    await notify_publisher.event(
        f"gavel.catalog.sale_published.{sale_id}",
        cat.SalePublished(event_id=f"e-{sale_id}", sale_id=sale_id, title=title),
    )


async def test_an_outbid_bidder_gets_a_mail_and_an_sms_in_their_language_with_the_new_minimum_and_a_working_unsubscribe(
    start_notify, publisher, mail_sink, sms_sandbox
):
    notify = await start_notify()
    alice, bob = notify.new_id("alice-"), notify.new_id("bob-")
    await notify.reachable(
        alice, email="alice@example.test", phone="+33612345678", locale="fr", time_zone="Europe/Paris"
    )
    sale, lot = notify.new_id("sale-"), notify.new_id("lot-")
    await published_sale(publisher, sale, "Vente de printemps")
    await publisher.room(lot, configured(lot, sale))
    await publisher.room(lot, bid(alice, 12_000, None))
    await publisher.room(lot, bid(bob, 13_000, alice))

    [mail] = await mail_sink.wait_for(1)
    [text] = await sms_sandbox.wait_for(1)

    assert mail.to == "alice@example.test"
    assert mail.subject == "Vous avez été surenchéri sur le lot 2 de Vente de printemps"
    assert mail.message["Content-Language"] == "fr"
    assert re.fullmatch(r"<d_[0-9a-f]{30}@gavel\.local>", mail.message["Message-ID"])
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain, html = mail.part("plain"), mail.part("html")
    assert "130,00\xa0$US" in plain
    assert "131,00\xa0$US" in plain
    assert "<h1" in html
    assert "131,00\xa0$US" in html
    assert f"/lots/{lot}" in html
    assert text["to"] == "+33612345678"
    assert text["segments"] == 1
    assert text["encoding"] == "gsm7"
    assert "130,00 $US" in text["text"]
    assert f"/lots/{lot}" in text["text"]

    unsubscribe = mail.message["List-Unsubscribe"].strip("<>")
    token = parse_qs(urlparse(unsubscribe).query)["token"][0]
    assert token in html  # the same signed link is in the footer
    reply = await notify.anonymous.Unsubscribe(pb.UnsubscribeRequest(token=token))
    assert (reply.user_id, reply.kind, reply.channel) == (alice, "outbid", pb.CHANNEL_EMAIL)
    preferences = (await notify.service.GetPreferences(pb.GetPreferencesRequest(user_id=alice))).preferences
    outbid = next(k for k in preferences.kinds if k.kind == "outbid")
    assert (outbid.email, outbid.sms) == (False, True)

    with pytest.raises(Exception, match="not a valid unsubscribe token"):
        await notify.anonymous.Unsubscribe(pb.UnsubscribeRequest(token=token[:-2] + "xx"))


async def test_a_redelivered_event_sends_nothing_twice_also_across_a_restart(
    start_notify, stop_notify, publisher, mail_sink, sms_sandbox
):
    notify = await start_notify()
    carol = notify.new_id("carol-")
    await notify.reachable(carol, email="carol@example.test")
    sale = notify.new_id("sale-")
    await published_sale(publisher, sale, "Autumn sale")
    decided = cat.RegistrationDecided(
        event_id=notify.new_id("ev-"),
        sale_id=sale,
        bidder_id=carol,
        status=res.REGISTRATION_STATUS_APPROVED,
        occurred_at=notify.stamp(datetime.now(UTC)),
    )
    subject = f"gavel.catalog.registration_decided.{sale}"
    await publisher.event(subject, decided)
    await publisher.event(subject, decided)  # a re-publish outside the duplicate window: another message
    await mail_sink.wait_for(1)
    await notify.wait_deliveries(lambda found: [d.status for d in found] == [pb.DELIVERY_STATUS_SENT], carol)

    await stop_notify(notify)
    await publisher.event(subject, decided)  # arrives while notify is down
    again = await start_notify()
    marker = cat.RegistrationDecided(
        event_id=notify.new_id("ev-"),
        sale_id=sale,
        bidder_id=carol,
        status=res.REGISTRATION_STATUS_REJECTED,
        reason="Deposit missing",
        occurred_at=notify.stamp(datetime.now(UTC)),
    )
    await publisher.event(subject, marker)  # consumed after the redelivery: when it is sent, that one was handled
    mails = await mail_sink.wait_for(2)
    await again.wait_deliveries(
        lambda found: len(found) == 2 and all(d.status == pb.DELIVERY_STATUS_SENT for d in found), carol
    )
    assert [m.subject for m in mails] == [
        "You're registered for Autumn sale",
        "Registration for Autumn sale declined",
    ]
    assert len(mail_sink.mails()) == 2
    assert sms_sandbox.book.records == []


async def test_an_smtp_outage_is_retried_then_dead_lettered_while_the_service_keeps_serving(start_notify, mail_sink):
    notify = await start_notify(send_attempts="2", max_attempts="4")
    dave = notify.new_id("dave-")
    await notify.reachable(dave, email="dave@example.test")
    mail_sink.stop()  # the SMTP server is down
    caller = notify.user(dave)
    sent = await caller.SendTestMessage(pb.SendTestMessageRequest(request_id="t1", channel=pb.CHANNEL_EMAIL))

    found = await notify.wait_deliveries(lambda found: found and found[0].status == pb.DELIVERY_STATUS_DEAD, dave)
    assert found[0].delivery_id == sent.delivery_id
    assert found[0].attempts == 4
    assert "SMTP unavailable" in found[0].last_error
    letters = (await notify.admin.ListDeadLetters(pb.ListDeadLettersRequest())).dead_letters
    assert [letter.delivery.delivery_id for letter in letters] == [sent.delivery_id]
    assert (await caller.GetPreferences(pb.GetPreferencesRequest())).preferences.email.verified  # still serving

    mail_sink.start()
    await notify.admin.RetryDeadLetter(pb.RetryDeadLetterRequest(request_id="r1", delivery_id=sent.delivery_id))
    [mail] = await mail_sink.wait_for(1)
    assert mail.subject == "Gavel test message"
    assert (await notify.admin.ListDeadLetters(pb.ListDeadLettersRequest())).dead_letters == []


@pytest.fixture
def certificate(tmp_path):  # type: ignore[no-untyped-def]
    """A self-signed certificate for 127.0.0.1 (cert, key), made with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make the test server's certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_mail_goes_over_starttls_to_a_server_that_requires_it(start_notify, tmp_path, certificate):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    secure = MailSink(tmp_path / "secure-mail", tls=context).start()
    try:
        notify = await start_notify(smtp_port=str(secure.port), smtp_security="starttls", smtp_ca_file=str(cert))
        user = notify.new_id("tls-")
        await notify.reachable(user, email="tls@example.test")
        await notify.user(user).SendTestMessage(pb.SendTestMessageRequest(request_id="t", channel=pb.CHANNEL_EMAIL))
        [mail] = await secure.wait_for(1)
        assert mail.subject == "Gavel test message"
    finally:
        secure.stop()
