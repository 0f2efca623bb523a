"""Plain-data codecs: events and lot terms to and from JSON-able dicts.

An event is `{"type": "<EventClassName>", "lot_id": ..., "at_ms": ..., <its fields>}`; decoding
checks the type name, that the keys are exactly the event's fields, and each value's type.
Terms are flat: the `LotTerms` fields plus the format's parameter fields
(`{"format": "english", "currency": "USD", "opening_bid": 9900, "increments": [[0, 5], [100, 25]], ...}`;
`increments` may also name a preset such as "ebay_usd"). Decoding raises InvalidArgument naming
every bad key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from enum import Enum
from typing import Any

from gavel_core.errors import FieldViolation, InvalidArgument
from gavel_core.formats import (
    DutchParams,
    DutchStepMode,
    EnglishClose,
    EnglishParams,
    Format,
    LotTerms,
    LuckyParams,
    LuckyWinningRule,
    SoftCloseMode,
)
from gavel_core.increments import IncrementTable
from room.domain.events import ALL_EVENTS, Event

EVENT_TYPES: dict[str, type[Event]] = {cls.__name__: cls for cls in ALL_EVENTS}

_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "str | None": (str, type(None)),
    "int | None": (int, type(None)),
}


def _is(value: object, type_name: str) -> bool:
    allowed = _PRIMITIVES[type_name]
    if isinstance(value, bool) and bool not in allowed:
        return False
    return isinstance(value, allowed)


def event_to_dict(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = {"type": type(event).__name__}
    for f in fields(event):
        data[f.name] = getattr(event, f.name)
    return data


def event_from_dict(data: Mapping[str, Any]) -> Event:
    name = data.get("type")
    cls = EVENT_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise InvalidArgument([FieldViolation("type", f"unknown event type {name!r}")])
    violations = []
    values: dict[str, Any] = {}
    expected = {f.name: str(f.type) for f in fields(cls)}
    for key in data:
        if key != "type" and key not in expected:
            violations.append(FieldViolation(key, f"{name} has no field {key!r}"))
    defaults = {f.name for f in fields(cls) if f.default is not MISSING}
    for key, type_name in expected.items():
        if key not in data and key in defaults:
            continue  # a field added later: logs written before it leave it out
        if key not in data:
            violations.append(FieldViolation(key, "missing"))
        elif not _is(data[key], type_name):
            violations.append(FieldViolation(key, f"must be {type_name}"))
        else:
            values[key] = data[key]
    if violations:
        raise InvalidArgument(violations)
    return cls(**values)


# -- lot terms ------------------------------------------------------------------------------------

_PARAMS: dict[Format, type[EnglishParams] | type[DutchParams] | type[LuckyParams]] = {
    Format.ENGLISH: EnglishParams,
    Format.DUTCH: DutchParams,
    Format.LUCKY: LuckyParams,
}
_ENUMS: dict[str, type[Enum]] = {
    "EnglishClose": EnglishClose,
    "SoftCloseMode": SoftCloseMode,
    "DutchStepMode": DutchStepMode,
    "LuckyWinningRule": LuckyWinningRule,
}
_TERMS_FIELDS = ("currency", "buyer_premium_bp", "tax_bp", "confirmation_timeout_ms", "seed", "extra")


def terms_to_dict(terms: LotTerms) -> dict[str, Any]:
    data: dict[str, Any] = {"format": terms.format.value}
    for key in _TERMS_FIELDS:
        value = getattr(terms, key)
        data[key] = dict(value) if isinstance(value, dict) else value
    for f in fields(terms.params):
        value = getattr(terms.params, f.name)
        if isinstance(value, IncrementTable):
            value = value.as_lists()
        elif isinstance(value, Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        data[f.name] = value
    return data


def _convert(value: Any, type_name: str, path: str, violations: list[FieldViolation]) -> Any:
    if type_name == "IncrementTable":
        try:
            if isinstance(value, str):
                return IncrementTable.preset(value)
            if isinstance(value, list) and all(isinstance(tier, list) for tier in value):
                return IncrementTable.of(value, path)
        except InvalidArgument as exc:
            violations.extend(exc.violations)
            return None
        violations.append(FieldViolation(path, "a list of [from_amount, step] pairs or a preset name"))
        return None
    if type_name in _ENUMS:
        enum = _ENUMS[type_name]
        try:
            return enum(value)
        except ValueError:
            violations.append(FieldViolation(path, f"one of {[member.value for member in enum]}"))
            return None
    if type_name == "tuple[str, ...]":
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        violations.append(FieldViolation(path, "a list of strings"))
        return None
    if type_name == "tuple[int, ...]":
        if isinstance(value, list) and all(_is(item, "int") for item in value):
            return tuple(value)
        violations.append(FieldViolation(path, "a list of integers"))
        return None
    if not _is(value, type_name):
        violations.append(FieldViolation(path, f"must be {type_name}"))
    return value


def terms_from_dict(data: Mapping[str, Any], prefix: str = "lot") -> LotTerms:
    """Build (not yet validate: see `LotTerms.validate`) the terms a flat dict describes."""
    try:
        fmt = Format(str(data.get("format")))
    except ValueError:
        raise InvalidArgument([FieldViolation(f"{prefix}.format", "one of english, dutch, lucky")]) from None
    params_cls = _PARAMS.get(fmt)
    if params_cls is None:
        raise InvalidArgument([FieldViolation(f"{prefix}.format", f"{fmt.value} is not a live format")])
    violations: list[FieldViolation] = []
    params_fields = {f.name: f for f in fields(params_cls)}
    for key in data:
        if key != "format" and key not in _TERMS_FIELDS and key not in params_fields:
            violations.append(FieldViolation(f"{prefix}.{key}", f"not a parameter of a {fmt.value} lot"))
    params: dict[str, Any] = {}
    for name, f in params_fields.items():
        if name in data:
            params[name] = _convert(data[name], str(f.type), f"{prefix}.{name}", violations)
        elif f.default is MISSING:
            violations.append(FieldViolation(f"{prefix}.{name}", "required"))
    terms: dict[str, Any] = {}
    for key, type_name in (
        ("currency", "str"),
        ("buyer_premium_bp", "int"),
        ("tax_bp", "int"),
        ("confirmation_timeout_ms", "int"),
        ("seed", "int"),
    ):
        if key in data:
            terms[key] = _convert(data[key], type_name, f"{prefix}.{key}", violations)
    if "currency" not in data:
        violations.append(FieldViolation(f"{prefix}.currency", "required"))
    extra = data.get("extra", {})
    if not isinstance(extra, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        violations.append(FieldViolation(f"{prefix}.extra", "an object of string values"))
    if violations:
        raise InvalidArgument(violations)
    return LotTerms(format=fmt, params=params_cls(**params), extra=dict(extra), **terms)
