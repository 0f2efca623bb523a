"""What the dispatcher does with a due delivery: drop, hold, fold or send."""

from datetime import UTC, datetime, time, timedelta

import pytest

from notify.domain.deliveries import (
    Delivery,
    Drop,
    Fold,
    Hold,
    Limits,
    LotFacts,
    Recent,
    Send,
    backoff,
    decide,
    delivery_id,
)
from notify.domain.kinds import Channel
from notify.domain.preferences import Contact, Preferences, QuietHours

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
QUIET = Recent(0, 0, None)


def reachable(**changes):
    base = dict(email=Contact("a@example.test", NOW), phone=Contact("+33612345678", NOW))
    return Preferences("u1", **(base | changes))


def delivery(kind="outbid", channel=Channel.SMS, **changes):
    base = dict(
        id="d1",
        dedupe_key="k",
        user_id="u1",
        kind=kind,
        channel=channel,
        params={},
        created_at=NOW,
        due_at=NOW,
        occurred_at=NOW,
        lot_id="lot-1",
    )
    return Delivery(**(base | changes))


def test_a_reachable_user_is_sent_to_their_verified_address():
    assert decide(delivery(), reachable(), None, QUIET, NOW, Limits()) == Send("+33612345678")


@pytest.mark.parametrize(
    ("preferences", "reason"),
    [
        (None, "no_preferences"),
        (reachable(phone=Contact("", None)), "no_address"),
        (reachable(phone=Contact("+33612345678", None)), "unverified"),
        (reachable(choices={"outbid": {Channel.SMS: False}}), "opted_out"),
    ],
)
def test_nobody_to_send_to_drops_it_with_the_reason(preferences, reason):
    assert decide(delivery(), preferences, None, QUIET, NOW, Limits()) == Drop(reason)


def test_an_outbid_for_a_closed_lot_is_stale_and_a_reminder_for_a_started_lot_too():
    closed = LotFacts("lot-1", started_at=NOW - timedelta(hours=1), closed_at=NOW - timedelta(minutes=1))
    assert decide(delivery(), reachable(), closed, QUIET, NOW, Limits()) == Drop("stale")
    started = LotFacts("lot-1", started_at=NOW)
    assert decide(delivery("lot_starting_soon"), reachable(), started, QUIET, NOW, Limits()) == Drop("stale")
    assert decide(delivery(), reachable(), started, QUIET, NOW, Limits()) == Send("+33612345678")


def test_a_notice_past_its_deadline_or_from_an_old_event_is_stale():
    late = delivery("provisional_win", params={"deadline": (NOW - timedelta(seconds=1)).isoformat()})
    assert decide(late, reachable(), None, QUIET, NOW, Limits()) == Drop("stale")
    replayed = delivery(occurred_at=NOW - timedelta(hours=2))  # recorded 2 h after: outbid notices keep for 1 h
    assert decide(replayed, reachable(), None, QUIET, NOW, Limits()) == Drop("stale")
    held = delivery(created_at=NOW - timedelta(hours=8), occurred_at=NOW - timedelta(hours=8))  # quiet all night
    assert decide(held, reachable(), None, QUIET, NOW, Limits()) == Send("+33612345678")


def test_quiet_hours_hold_until_they_end_but_not_for_a_code_the_user_asked_for():
    preferences = reachable(time_zone="Europe/Paris", quiet_hours={Channel.SMS: QuietHours(time(11), time(14))})
    assert decide(delivery(), preferences, None, QUIET, NOW, Limits()) == Hold(
        datetime(2026, 12, 4, 13, 0, tzinfo=UTC), "quiet_hours"
    )
    code = delivery("verification", address="+33612345678")
    assert decide(code, preferences, None, QUIET, NOW, Limits()) == Send("+33612345678")


def test_a_verification_goes_to_the_address_being_verified():
    preferences = reachable(phone=Contact("+33700000000", None))
    code = delivery("verification", address="+33700000000")
    assert decide(code, preferences, None, QUIET, NOW, Limits()) == Send("+33700000000")


def test_outbid_beyond_the_per_minute_limit_is_folded_into_a_summary_due_when_the_window_ends():
    decision = decide(delivery(), reachable(), None, Recent(3, 3, NOW), NOW + timedelta(seconds=20), Limits())
    assert isinstance(decision, Fold)
    assert decision.summary_key == "u1:sms:outbid:2026-12-04T12:00:00+00:00"
    assert decision.summary_due == NOW + timedelta(minutes=1)


def test_beyond_the_hourly_limit_other_kinds_wait():
    decision = decide(delivery("won", Channel.EMAIL), reachable(), None, Recent(0, 60, NOW), NOW, Limits())
    assert decision == Hold(NOW + timedelta(hours=1), "rate_limited")


def test_retries_back_off_exponentially_up_to_a_cap_stretched_by_jitter():
    base, cap = timedelta(seconds=30), timedelta(minutes=30)
    assert [backoff(n, base, cap, 0.0).total_seconds() for n in (1, 2, 3, 10)] == [30, 60, 120, 1800]
    assert backoff(1, base, cap, 0.5) == timedelta(seconds=45)


def test_deliveries_are_named_by_what_they_deliver():
    assert delivery_id("ev-1:u1:outbid:sms") == delivery_id("ev-1:u1:outbid:sms")
    assert delivery_id("ev-1:u1:outbid:sms") != delivery_id("ev-1:u1:outbid:email")
