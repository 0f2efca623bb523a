"""Input limits and the checks every catalog request shares.

Limits are generous for real use and small enough that no request can make a row, an index entry
or a NATS message unreasonably large. Each check reports into a `Violations` so a request learns
about every bad field at once, under the dotted path of the request field.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gavel_core.errors import FieldViolation, InvalidArgument, Violations

MAX_ID = 128
MAX_TITLE = 200
MAX_DESCRIPTION = 10_000
MAX_IMAGE_URLS = 20
MAX_URL = 2_048
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_KEY = 64
MAX_ATTRIBUTE_VALUE = 500
MAX_QUANTITY = 100  # one room per unit: more rooms than this is not one product
MAX_QUERY = 200
MAX_REASON = 500
MAX_TIME_ZONE = 64
MAX_ALLOW_LIST = 1_000
# Nothing is scheduled further ahead than this; a date beyond it is almost surely a typo.
MAX_SCHEDULE_AHEAD = timedelta(days=730)

_LINE_BREAKS = frozenset("\n\r\t")


def _has_control_characters(text: str, *, multiline: bool) -> bool:
    return any(unicodedata.category(char) == "Cc" and not (multiline and char in _LINE_BREAKS) for char in text)


def check_text(
    violations: Violations,
    path: str,
    value: str,
    *,
    max_length: int,
    required: bool = True,
    multiline: bool = False,
) -> None:
    """A required text must have a non-blank character; no text may hold control characters."""
    if required and not value.strip():
        violations.add(path, "must not be empty")
    elif len(value) > max_length:
        violations.add(path, f"must be at most {max_length} characters")
    elif _has_control_characters(value, multiline=multiline):
        violations.add(path, "must not contain control characters")


def check_title_and_description(violations: Violations, prefix: str, title: str, description: str) -> None:
    """The two texts every product and sale has: a required one-line title, an optional long description."""
    check_text(violations, f"{prefix}.title", title, max_length=MAX_TITLE)
    check_text(
        violations, f"{prefix}.description", description, max_length=MAX_DESCRIPTION, required=False, multiline=True
    )


def check_id(violations: Violations, path: str, value: str, *, required: bool = True) -> None:
    """Ids are opaque, but never blank, padded, huge or containing whitespace or control characters."""
    if not value:
        if required:
            violations.add(path, "must not be empty")
        return
    if len(value) > MAX_ID or any(char.isspace() or unicodedata.category(char) == "Cc" for char in value):
        violations.add(path, f"must be an id of at most {MAX_ID} characters without spaces")


def require_id(path: str, value: str) -> str:
    """Raise InvalidArgument unless `value` is a well-formed id; return it."""
    violations = Violations()
    check_id(violations, path, value)
    violations.raise_if_any()
    return value


def check_ids(violations: Violations, path: str, values: Sequence[str], *, max_items: int) -> None:
    if len(values) > max_items:
        violations.add(path, f"must hold at most {max_items} ids")
        return
    for index, value in enumerate(values):
        check_id(violations, f"{path}[{index}]", value)
    if len(set(values)) != len(values):
        violations.add(path, "must not repeat an id")


def check_aware(violations: Violations, path: str, value: datetime | None) -> bool:
    """Instants must carry a UTC offset: a naive datetime means different things on different hosts."""
    if value is not None and value.utcoffset() is None:
        violations.add(path, "must be an instant with a time zone")
        return False
    return True


def check_time_range(
    violations: Violations,
    start_path: str,
    start: datetime | None,
    end_path: str,
    end: datetime | None,
) -> None:
    """An optional [start, end) filter range: both instants, end after start when both are given."""
    start_ok = check_aware(violations, start_path, start)
    end_ok = check_aware(violations, end_path, end)
    if start_ok and end_ok and start is not None and end is not None and end <= start:
        violations.add(end_path, f"must be after {start_path.rsplit('.', 1)[-1]}")


def check_time_zone(violations: Violations, path: str, name: str) -> ZoneInfo | None:
    """An IANA zone name (`Europe/Paris`); returns the zone, or None after recording the violation."""
    if not name or len(name) > MAX_TIME_ZONE or name.startswith(("/", ".")) or ".." in name:
        violations.add(path, "must be an IANA time zone name such as Europe/Paris")
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        violations.add(path, f"unknown time zone {name!r}; use an IANA name such as Europe/Paris")
        return None


def check_attributes(violations: Violations, path: str, attributes: Mapping[str, str]) -> None:
    if len(attributes) > MAX_ATTRIBUTES:
        violations.add(path, f"must hold at most {MAX_ATTRIBUTES} entries")
        return
    for key, value in attributes.items():
        check_text(violations, f"{path}[{key[:MAX_ATTRIBUTE_KEY]!r}]", key, max_length=MAX_ATTRIBUTE_KEY)
        check_text(
            violations, f"{path}[{key[:MAX_ATTRIBUTE_KEY]!r}]", value, max_length=MAX_ATTRIBUTE_VALUE, required=False
        )


def check_image_urls(violations: Violations, path: str, urls: Sequence[str]) -> None:
    if len(urls) > MAX_IMAGE_URLS:
        violations.add(path, f"must hold at most {MAX_IMAGE_URLS} URLs")
        return
    for index, url in enumerate(urls):
        # https only: browsers block mixed content, and other schemes (javascript:, data:) are attack vectors.
        if not url.startswith("https://") or len(url) > MAX_URL or len(url) <= len("https://"):
            violations.add(f"{path}[{index}]", f"must be an https:// URL of at most {MAX_URL} characters")
        elif any(char.isspace() or unicodedata.category(char) == "Cc" for char in url):
            violations.add(f"{path}[{index}]", "must not contain spaces or control characters")


def parse_date(text: str, path: str) -> date:
    """Parse an ISO 8601 calendar date `YYYY-MM-DD` (the wire form of dates), naming `path` on error."""
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidArgument([FieldViolation(path, "must be a date YYYY-MM-DD")]) from None


def parse_time_of_day(text: str, path: str) -> int:
    """Parse `HH:MM` (24-hour; `24:00` is the end of the day) into minutes since local midnight."""
    if text == "24:00":
        return 24 * 60
    try:
        if len(text) != 5:
            raise ValueError(text)
        parsed = time.fromisoformat(text)
    except ValueError:
        raise InvalidArgument([FieldViolation(path, "must be a time of day HH:MM")]) from None
    return parsed.hour * 60 + parsed.minute


def format_time_of_day(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
