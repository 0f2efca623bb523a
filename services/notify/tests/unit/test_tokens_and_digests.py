"""Signed unsubscribe tokens, and which lots a digest lists in the user's time zone."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from gavel_core.errors import InvalidArgument
from notify.domain.digests import DigestRow, View, covered, due, select, views_to_read
from notify.domain.kinds import Channel
from notify.domain.preferences import DigestPeriod
from notify.domain.tokens import Unsubscribe, sign_unsubscribe, verify_unsubscribe

KEY = b"k" * 32


def test_an_unsubscribe_token_names_its_user_kind_and_channel_and_cannot_be_forged():
    what = Unsubscribe("user-1", "outbid", Channel.SMS)
    token = sign_unsubscribe(KEY, what)
    assert verify_unsubscribe(KEY, token) == what
    for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"), sign_unsubscribe(b"x" * 32, what), "", "a.b.c"):
        with pytest.raises(InvalidArgument):
            verify_unsubscribe(KEY, bad)


def row(lot_id: str, start: datetime) -> DigestRow:
    return DigestRow(lot_id, "s1", "Sale", "Desk", "english", start, 10_000, None, "EUR", 1)


def test_periods_cover_a_day_a_monday_to_sunday_week_and_a_calendar_month():
    thursday = date(2026, 12, 3)
    assert covered(DigestPeriod.DAILY, thursday) == (thursday, thursday)
    assert covered(DigestPeriod.WEEKLY, thursday) == (date(2026, 11, 30), date(2026, 12, 6))
    assert covered(DigestPeriod.MONTHLY, date(2027, 2, 14)) == (date(2027, 2, 1), date(2027, 2, 28))


def test_a_digest_is_due_on_its_day_from_the_users_morning_hour():
    seoul = ZoneInfo("Asia/Seoul")
    monday_early = datetime(2026, 11, 30, 7, 59, tzinfo=seoul)
    assert due(DigestPeriod.WEEKLY, monday_early, 8) is None
    assert due(DigestPeriod.WEEKLY, monday_early.replace(hour=8), 8) == date(2026, 11, 30)
    assert due(DigestPeriod.WEEKLY, datetime(2026, 12, 1, 9, tzinfo=seoul), 8) is None  # Tuesday
    assert due(DigestPeriod.MONTHLY, datetime(2026, 12, 1, 9, tzinfo=seoul), 8) == date(2026, 12, 1)
    assert due(DigestPeriod.DAILY, datetime(2026, 12, 2, 23, tzinfo=seoul), 8) == date(2026, 12, 2)


def test_schedule_views_cover_a_date_either_side_for_other_zones():
    assert views_to_read(date(2026, 12, 3), date(2026, 12, 3)) == [
        (View.DAY, date(2026, 12, 2)),
        (View.DAY, date(2026, 12, 3)),
        (View.DAY, date(2026, 12, 4)),
    ]
    assert views_to_read(date(2026, 11, 30), date(2026, 12, 6)) == [
        (View.WEEK, date(2026, 11, 23)),
        (View.WEEK, date(2026, 11, 30)),
        (View.WEEK, date(2026, 12, 7)),
    ]
    assert [d for _, d in views_to_read(date(2026, 12, 1), date(2026, 12, 31))] == [
        date(2026, 11, 1),
        date(2026, 12, 1),
        date(2027, 1, 1),
    ]


@pytest.mark.parametrize(
    ("period", "day", "expected"),
    [
        (DigestPeriod.DAILY, date(2026, 12, 3), ["paris-evening", "seoul-morning"]),
        (
            DigestPeriod.WEEKLY,
            date(2026, 11, 30),
            ["monday", "last-november", "first", "paris-evening", "seoul-morning", "sunday-night"],
        ),
        (
            DigestPeriod.MONTHLY,
            date(2026, 12, 1),
            ["first", "paris-evening", "seoul-morning", "sunday-night", "next-monday"],
        ),
    ],
)
def test_a_digest_lists_the_lots_starting_in_its_days_in_the_users_zone(period, day, expected):
    seoul = ZoneInfo("Asia/Seoul")  # UTC+9
    rows = [
        row("first", datetime(2026, 11, 30, 15, 0, tzinfo=UTC)),  # Dec 1 00:00 in Seoul
        row("last-november", datetime(2026, 11, 30, 14, 59, tzinfo=UTC)),  # Nov 30 23:59 in Seoul
        row("monday", datetime(2026, 11, 30, 3, 0, tzinfo=UTC)),  # Nov 30 12:00 in Seoul
        row("paris-evening", datetime(2026, 12, 2, 22, 0, tzinfo=UTC)),  # Dec 2 23:00 in Paris: Dec 3 in Seoul
        row("seoul-morning", datetime(2026, 12, 3, 1, 0, tzinfo=UTC)),
        row("sunday-night", datetime(2026, 12, 6, 14, 0, tzinfo=UTC)),  # Dec 6 23:00 in Seoul
        row("next-monday", datetime(2026, 12, 6, 15, 0, tzinfo=UTC)),  # Dec 7 00:00 in Seoul
        row("january", datetime(2026, 12, 31, 15, 0, tzinfo=UTC)),  # Jan 1 in Seoul
    ]
    first, last = covered(period, day)
    listed = [r.lot_id for r in select(rows + rows[:2], seoul, first, last)]  # duplicates from overlapping views
    assert listed == expected
