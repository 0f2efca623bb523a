"""Hypothesis strategies that build any protobuf request from its descriptor, with the values a
stranger would send: extreme, negative, huge, empty, unknown enum numbers, control characters,
oversized repeated fields. For fuzzing every gRPC method (docs/security.md "Limits")."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

DOCUMENTED_CODES = frozenset(
    {
        "OK",
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "FAILED_PRECONDITION",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "ALREADY_EXISTS",
        "RESOURCE_EXHAUSTED",
        "ABORTED",
        "UNAVAILABLE",
        "DEADLINE_EXCEEDED",
    }
)
"""What a Gavel RPC may answer to anything a client sends (never INTERNAL, UNKNOWN, UNIMPLEMENTED)."""

_STRINGS = st.one_of(
    st.sampled_from(["", " ", "x" * 5000, "\r\n\x00", "../../etc", "9999-12-31", "-1", "99999999999999999999"]),
    st.text(max_size=40),
)
_INTS = st.one_of(st.sampled_from([0, -1, 1, 2**31 - 1, -(2**31)]), st.integers(-(2**31), 2**31 - 1))
_INT64S = st.one_of(st.sampled_from([0, -1, 2**63 - 1, -(2**63), 10**15, 10**15 + 1]), st.integers(-(2**63), 2**63 - 1))
_UINTS = st.one_of(st.sampled_from([0, 1, 2**32 - 1]), st.integers(0, 2**32 - 1))
_UINT64S = st.one_of(st.sampled_from([0, 2**64 - 1]), st.integers(0, 2**64 - 1))


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return _STRINGS
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    if kind == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
        numbers = [value.number for value in field.enum_type.values]
        return st.one_of(st.sampled_from(numbers), st.sampled_from([99, -5]))
    if kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return _INT64S
    if kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return _UINT64S
    if kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return _UINTS
    return _INTS


def messages(descriptor: Descriptor, message_type: type[Message], depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of `message_type` with any subset of fields set to hostile values."""

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        message = message_type()
        for field in descriptor.fields:
            if not draw(st.booleans()):
                continue
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                inner = field.message_type
                if inner is None or depth >= 3 or inner.GetOptions().map_entry:
                    continue
                sub_type = type(getattr(message_type(), field.name)) if not _repeated(field) else None
                if _repeated(field):
                    container = getattr(message, field.name)
                    for _ in range(draw(st.sampled_from([0, 1, 3, 150]))):
                        item = container.add()
                        item.CopyFrom(draw(messages(inner, type(item), depth + 1)))
                elif sub_type is not None:
                    getattr(message, field.name).CopyFrom(draw(messages(inner, sub_type, depth + 1)))
                continue
            try:
                if _repeated(field):
                    values = draw(st.lists(_scalar(field), max_size=3))
                    if draw(st.integers(0, 9)) == 0:
                        values = values * 500  # an oversized repeated field
                    getattr(message, field.name).extend(values)
                else:
                    setattr(message, field.name, draw(_scalar(field)))
            except (ValueError, TypeError):  # a value the field's type cannot hold: leave it unset
                continue
        return message

    return build()


def _repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def examples(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """`count` values hypothesis draws from `strategy` (reproducibly), for async tests to send:
    hypothesis cannot drive an async test itself."""
    from hypothesis import HealthCheck, given, settings

    found: list[Any] = []

    @settings(
        max_examples=count, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found
