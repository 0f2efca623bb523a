"""Bounds on what callers send (every field of every request is bounded)."""

from __future__ import annotations

import re

from gavel_core.errors import FieldViolation, InvalidArgument

MAX_ID = 128
_ID = re.compile(r"^[A-Za-z0-9_.:\-]+$")
MAX_URL = 2000
MAX_METHOD = 64


def require_id(field: str, value: str, *, optional: bool = False) -> str:
    if not value and optional:
        return value
    if not value or len(value) > MAX_ID or not _ID.match(value):
        raise InvalidArgument(
            [FieldViolation(field, f"1 to {MAX_ID} characters of letters, digits, '_', '.', ':', '-'")]
        )
    return value


def require_text(field: str, value: str, *, max_length: int, optional: bool = False) -> str:
    if (not value and not optional) or len(value) > max_length or any(ord(c) < 32 for c in value):
        raise InvalidArgument([FieldViolation(field, f"1 to {max_length} characters, no control characters")])
    return value


def require_url(field: str, value: str) -> str:
    if not value:
        return value
    if len(value) > MAX_URL or not value.startswith(("https://", "http://")):
        raise InvalidArgument([FieldViolation(field, "an http(s) URL of at most 2000 characters")])
    return value
