"""UUIDv7 identifiers for accounts."""

import time
import uuid

from gateway.adapters.ids import uuid7


def test_ids_are_version_7_uuids_with_the_rfc_variant():
    value = uuid.UUID(uuid7())
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_ids_carry_the_current_unix_millisecond():
    before = time.time_ns() // 1_000_000
    millis = uuid.UUID(uuid7()).int >> 80
    after = time.time_ns() // 1_000_000
    assert before <= millis <= after


def test_ids_made_in_later_milliseconds_sort_after_earlier_ones():
    first = uuid7()
    time.sleep(0.002)
    assert uuid7() > first


def test_ids_do_not_repeat():
    assert len({uuid7() for _ in range(10_000)}) == 10_000
