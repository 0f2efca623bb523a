"""Cursor paging, wire parsing helpers and the events' NATS subjects."""

import base64
import json
from datetime import UTC, datetime

import pytest

from catalog.domain.events import LotStarting, ReservationCancelled
from catalog.domain.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Page,
    PageRequest,
    decode_cursor,
    encode_cursor,
    instant_key,
    instant_of_key,
)
from catalog.domain.sales import TimeSlot
from catalog.domain.validation import parse_date, parse_time_of_day
from gavel_core.errors import InvalidArgument
from gavel_core.formats import Format


def fields(error: InvalidArgument) -> set[str]:
    return {violation.field for violation in error.violations}


def test_a_cursor_round_trips_its_sort_key():
    key = (instant_key(datetime(2030, 5, 8, 8, 0, 0, 123_456, tzinfo=UTC)), "id-0001")
    assert decode_cursor(encode_cursor("sales", key), "sales") == key


def test_instants_in_keys_are_exact_microseconds():
    moment = datetime(2030, 5, 8, 8, 0, 0, 123_456, tzinfo=UTC)
    assert instant_of_key(instant_key(moment)) == moment


@pytest.mark.parametrize(
    "token",
    [
        "@@@",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(json.dumps({"s": "sales", "k": []}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"s": "sales", "k": [True]}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"s": "sales", "k": [{"x": 1}]}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps(["sales"]).encode()).decode(),
        encode_cursor("products", (1, "a")),
        "A" * 2_000,
    ],
)
def test_a_malformed_or_foreign_page_token_is_invalid(token):
    with pytest.raises(InvalidArgument) as caught:
        decode_cursor(token, "sales")
    assert fields(caught.value) == {"page.page_token"}


@pytest.mark.parametrize(("asked", "size"), [(0, DEFAULT_PAGE_SIZE), (7, 7), (10_000, MAX_PAGE_SIZE)])
def test_the_page_size_defaults_and_is_capped(asked, size):
    assert PageRequest.parse("sales", asked, "").size == size


def test_a_page_knows_whether_more_follow():
    request = PageRequest("numbers", size=2)
    more = Page.build([1, 2, 3], request, lambda n: (n,), total_size=9)
    last = Page.build([1, 2], request, lambda n: (n,), total_size=2)
    assert (more.items, decode_cursor(more.next_page_token, "numbers")) == ((1, 2), (2,))
    assert (last.items, last.next_page_token) == ((1, 2), "")


@pytest.mark.parametrize("text", ["2030-5-8", "2030-02-30", "", "08/05/2030", "2030-05-08T10:00"])
def test_dates_are_iso_calendar_dates(text):
    with pytest.raises(InvalidArgument) as caught:
        parse_date(text, "sale.live_session.date")
    assert fields(caught.value) == {"sale.live_session.date"}


def test_times_of_day_run_to_midnight():
    assert (parse_time_of_day("00:00", "t"), parse_time_of_day("09:30", "t"), parse_time_of_day("24:00", "t")) == (
        0,
        570,
        1440,
    )


def test_a_time_slot_reports_both_bad_ends():
    with pytest.raises(InvalidArgument) as caught:
        TimeSlot.parse("25:00", "9am", "sale.live_session.time_slots[0]")
    assert fields(caught.value) == {"sale.live_session.time_slots[0].start", "sale.live_session.time_slots[0].end"}
    assert TimeSlot.parse("10:00", "12:30", "x") == TimeSlot(600, 750)


def test_events_name_their_nats_subject_by_kind_and_id():
    now = datetime(2030, 5, 8, tzinfo=UTC)
    starting = LotStarting(
        event_id="e1",
        occurred_at=now,
        lot_id="lot-7",
        group_id="lot-6",
        sale_id="s",
        format=Format.DUTCH,
        started_at=now,
    )
    cancelled = ReservationCancelled(
        event_id="e2", occurred_at=now, reservation_id="r", group_id="lot-6", sale_id="s", bidder_id="b"
    )
    assert starting.subject == "gavel.catalog.lot_starting.lot-7"
    assert cancelled.subject == "gavel.catalog.reservation_cancelled.lot-6"
