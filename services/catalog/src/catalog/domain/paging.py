"""Keyset (cursor) paging, the same for every list.

A list is ordered by a unique sort key (e.g. sales by (starts_at, id)). A page token is the last
item's key, wrapped with the list's scope in url-safe base64 JSON: opaque to clients, stable
while rows are inserted (unlike offsets), and answerable by an index range scan:

    WHERE (starts_at, id) > (:k0, :k1) ORDER BY starts_at, id LIMIT :size + 1

A repository fetches up to `size + 1` rows after `PageRequest.after` and hands them to
`Page.build`, which keeps `size` and makes the next token from the last one kept. Instants in
keys are integer microseconds since the epoch (`instant_key`), so keys survive JSON exactly.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from gavel_core.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_PAGE_TOKEN = 1_024

SortKey = tuple[str | int, ...]
T = TypeVar("T")
U = TypeVar("U")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def instant_key(moment: datetime) -> int:
    """An aware instant as integer microseconds since the epoch (exact, unlike a float)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def instant_of_key(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def encode_cursor(scope: str, key: SortKey) -> str:
    payload = json.dumps({"s": scope, "k": list(key)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(token: str, scope: str, field: str = "page.page_token") -> SortKey:
    """The sort key in `token`; InvalidArgument if it is malformed or belongs to another list."""
    bad = InvalidArgument([FieldViolation(field, "is not a page token of this list; start again without one")])
    if len(token) > MAX_PAGE_TOKEN:
        raise bad
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise bad from None
    if not isinstance(data, dict) or data.get("s") != scope or not isinstance(data.get("k"), list) or not data["k"]:
        raise bad
    key = data["k"]
    if not all(isinstance(part, str | int) and not isinstance(part, bool) for part in key):
        raise bad
    return tuple(key)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which page: at most `size` items whose sort key is greater than `after` (None: the first page)."""

    scope: str
    size: int = DEFAULT_PAGE_SIZE
    after: SortKey | None = None

    @classmethod
    def parse(cls, scope: str, page_size: int, page_token: str, prefix: str = "page") -> PageRequest:
        """From gavel.common.v1.PageRequest: 0 means the default size, more than the cap is capped."""
        if page_size < 0:
            raise InvalidArgument([FieldViolation(f"{prefix}.page_size", "must not be negative")])
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = decode_cursor(page_token, scope, f"{prefix}.page_token") if page_token else None
        return cls(scope, size, after)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_page_token: str  # empty on the last page
    total_size: int  # how many items match the filter in all

    @classmethod
    def build(cls, rows: Sequence[T], request: PageRequest, key: Callable[[T], SortKey], total_size: int) -> Page[T]:
        """`rows`: up to size + 1 items after the cursor, in key order. One more than `size` means more follow."""
        kept = tuple(rows[: request.size])
        more = len(rows) > request.size and bool(kept)
        token = encode_cursor(request.scope, key(kept[-1])) if more else ""
        return cls(kept, token, total_size)

    def map(self, function: Callable[[T], U]) -> Page[U]:
        return Page(tuple(function(item) for item in self.items), self.next_page_token, self.total_size)
