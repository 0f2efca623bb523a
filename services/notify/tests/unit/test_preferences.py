"""Preferences: validation, defaults per kind, quiet hours in the user's zone, one-click opt-outs."""

from datetime import UTC, datetime, time

import pytest

from gavel_core.errors import InvalidArgument
from notify.domain.kinds import Channel
from notify.domain.preferences import (
    Contact,
    DigestPeriod,
    Preferences,
    PreferencesInput,
    QuietHours,
    apply_input,
    mask,
)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def wanted(**changes):
    base = dict(
        locale="ko",
        time_zone="Asia/Seoul",
        email="kim@example.test",
        email_verified=False,
        phone="+821012345678",
        phone_verified=False,
        choices={},
        quiet_hours=[(Channel.SMS, "22:00", "07:00")],
        reminder_offsets=[10, 60],
        digests=[DigestPeriod.WEEKLY],
        digest_hour=8,
        channel_off=frozenset(),
    )
    return PreferencesInput(**(base | changes))


def test_valid_preferences_are_kept_and_new_addresses_start_unverified():
    saved = apply_input(Preferences("u1"), wanted(), may_verify=False, now=NOW)
    assert (saved.locale, saved.time_zone, saved.reminder_offsets) == ("ko", "Asia/Seoul", (60, 10))
    assert saved.email == Contact("kim@example.test", None)
    assert not saved.phone.verified


def test_every_problem_is_reported_at_once_with_its_field():
    with pytest.raises(InvalidArgument) as raised:
        apply_input(
            Preferences("u1"),
            wanted(
                locale="de",
                time_zone="Mars/Olympus",
                email="not-an-address",
                phone="0612",
                digest_hour=24,
                reminder_offsets=[0, 10, 20, 30],
                quiet_hours=[(Channel.SMS, "25:00", "07:00")],
                choices={"spam": {Channel.EMAIL: True}},
                email_verified=True,
            ),
            may_verify=False,
            now=NOW,
        )
    fields = {v.field for v in raised.value.violations}
    assert fields == {
        "preferences.locale",
        "preferences.time_zone",
        "preferences.email.address",
        "preferences.phone.address",
        "preferences.digest_hour",
        "preferences.reminder_offsets_minutes",
        "preferences.reminder_offsets_minutes[0]",
        "preferences.quiet_hours[0].start",
        "preferences.kinds",
        "preferences.email.verified",
    }


def test_only_admins_and_services_mark_an_address_verified_and_a_changed_address_is_unverified_again():
    verified = apply_input(Preferences("u1"), wanted(email_verified=True), may_verify=True, now=NOW)
    assert verified.email.verified
    kept = apply_input(verified, wanted(), may_verify=False, now=NOW)
    assert kept.email.verified  # same address: still verified
    changed = apply_input(kept, wanted(email="other@example.test"), may_verify=False, now=NOW)
    assert not changed.email.verified


def test_kinds_take_their_defaults_until_the_user_chooses():
    p = Preferences("u1")
    assert p.wants("outbid", Channel.SMS)
    assert not p.wants("won", Channel.SMS)
    assert not p.wants("schedule_digest", Channel.SMS)  # e-mail only, whatever the choice
    p.choices["won"] = {Channel.SMS: True}
    assert p.wants("won", Channel.SMS)
    p.opt_out("outbid", Channel.SMS)
    assert not p.wants("outbid", Channel.SMS)
    assert not p.wants("outbid_summary", Channel.SMS)  # a summary follows the kind it folds
    p.opt_out("*", Channel.EMAIL)
    assert not p.wants("payment_due", Channel.EMAIL)


def test_quiet_hours_spanning_midnight_end_at_the_next_local_morning():
    p = Preferences("u1", time_zone="Europe/Paris", quiet_hours={Channel.SMS: QuietHours(time(22), time(7))})
    late = datetime(2026, 12, 4, 22, 30, tzinfo=UTC)  # 23:30 in Paris
    assert p.quiet_until(Channel.SMS, late) == datetime(2026, 12, 5, 6, 0, tzinfo=UTC)  # 07:00 Paris
    early = datetime(2026, 12, 5, 5, 0, tzinfo=UTC)  # 06:00 in Paris
    assert p.quiet_until(Channel.SMS, early) == datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
    assert p.quiet_until(Channel.SMS, datetime(2026, 12, 5, 6, 0, tzinfo=UTC)) is None
    assert p.quiet_until(Channel.EMAIL, late) is None


def test_addresses_are_partly_hidden_for_display():
    assert mask("bidder@gavel.demo") == "b•••@gavel.demo"
    assert mask("+33612345678") == "+33•••••••78"
