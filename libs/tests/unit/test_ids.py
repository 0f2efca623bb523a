"""UUIDv7 identifiers (gavel_kit.ids)."""

import time
import uuid

from gavel_kit.ids import new_id


def test_ids_are_version_7_uuids_with_the_rfc_variant():
    value = uuid.UUID(new_id())
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_ids_carry_the_current_unix_millisecond():
    before = time.time_ns() // 1_000_000
    millis = uuid.UUID(new_id()).int >> 80
    after = time.time_ns() // 1_000_000
    assert before <= millis <= after


def test_ids_made_in_later_milliseconds_sort_after_earlier_ones():
    first = new_id()
    later_millisecond = time.time_ns() // 1_000_000 + 1
    while time.time_ns() // 1_000_000 < later_millisecond:
        pass  # wait out the millisecond without sleeping
    assert new_id() > first


def test_ids_do_not_repeat():
    assert len({new_id() for _ in range(10_000)}) == 10_000
