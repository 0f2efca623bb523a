"""The wire `gavel.catalog.v1.Lot` ↔ the shared `gavel_core.formats.LotTerms`: the one mapping of a
lot's terms, used by catalog (API requests, LotScheduled events) and room (LotScheduled, ConfigureLot,
its own LotConfigured log entries).

`terms_from_lot` is strict: every parse step that fails is collected, and all are reported together as
one InvalidArgument whose field paths name the request field (`lot.english.opening_bid.currency`).
Validation proper (ranges, formats) is `LotTerms.validate`'s; this module only translates, plus the
shape of `extra` (which `LotTerms` carries as an opaque map).

Enums: every domain enum's value is the proto enum's name without its prefix, lower-cased
(Format.ENGLISH = "english" ↔ FORMAT_ENGLISH); `EnumMap` builds both directions from that and
refuses at import time to run with an unmapped value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Generic, TypeVar, cast

from google.protobuf.message import Message

from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1 import money_pb2
from gavel_core.errors import FieldViolation, InvalidArgument, Violations
from gavel_core.formats import (
    MAX_DUTCH_STEPS,
    DutchParams,
    DutchStepMode,
    EnglishClose,
    EnglishParams,
    Format,
    FormatParams,
    LotTerms,
    LuckyParams,
    LuckyWinningRule,
    SoftCloseMode,
    TenderParams,
)
from gavel_core.increments import resolve_increments
from gavel_core.money import amount_in, validate_currency

D = TypeVar("D", bound=StrEnum)
T = TypeVar("T")

MAX_EXTRA_ENTRIES = 32
MAX_EXTRA_VALUE = 4096
_EXTRA_KEY = re.compile(r"[a-z0-9_]{1,64}")


class EnumMap(Generic[D]):
    """A domain StrEnum ↔ a proto enum whose names are PREFIX + value.upper()."""

    def __init__(self, domain: type[D], wire: Any, prefix: str) -> None:
        self._domain = domain
        self._to_wire: dict[D, int] = {member: wire.Value(prefix + member.value.upper()) for member in domain}
        self._from_wire = {number: member for member, number in self._to_wire.items()}
        unmapped = set(wire.values()) - {0} - set(self._from_wire)
        if unmapped:
            raise RuntimeError(f"{wire.DESCRIPTOR.full_name} values {sorted(unmapped)} have no {domain.__name__}")
        self._choices = ", ".join(wire.Name(number) for number in sorted(self._from_wire))

    def wire(self, member: D) -> Any:
        return self._to_wire[member]

    def parse(self, number: int, path: str, *, default: D | None = None) -> D:
        """The member for `number`; UNSPECIFIED (0) is `default`, or refused when there is none."""
        if number == 0 and default is not None:
            return default
        member = self._from_wire.get(number)
        if member is None:
            raise InvalidArgument([FieldViolation(path, f"must be one of {self._choices}")])
        return member

    def optional(self, number: int, path: str) -> D | None:
        """UNSPECIFIED (0) means no value (no filter)."""
        return None if number == 0 else self.parse(number, path)


class Collector:
    """Runs parse steps, keeping the violations of those that fail so all are reported at once."""

    def __init__(self) -> None:
        self.violations = Violations()

    def __call__(self, step: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        try:
            return step(*args, **kwargs)
        except InvalidArgument as exc:
            self.violations.items.extend(exc.violations)
            return None

    @property
    def failed(self) -> bool:
        return bool(self.violations.items)

    def done(self) -> None:
        self.violations.raise_if_any()


FORMATS = EnumMap(Format, res.Format, "FORMAT_")
ENGLISH_CLOSES = EnumMap(EnglishClose, res.EnglishClose, "ENGLISH_CLOSE_")
SOFT_CLOSE_MODES = EnumMap(SoftCloseMode, res.SoftCloseMode, "SOFT_CLOSE_MODE_")
DUTCH_STEP_MODES = EnumMap(DutchStepMode, res.DutchStepMode, "DUTCH_STEP_MODE_")
LUCKY_RULES = EnumMap(LuckyWinningRule, res.LuckyWinningRule, "LUCKY_WINNING_RULE_")


# -- wire → terms -----------------------------------------------------------------------------------


class _Amounts:
    """Reads the Money fields of one parameter message, in the lot's currency, under `path`."""

    def __init__(self, message: Message, currency: str, path: str, parse: Collector) -> None:
        self._message, self._currency, self._path, self._parse = message, currency, path, parse

    def required(self, field: str) -> int:
        value: money_pb2.Money = getattr(self._message, field)
        amount = self._parse(amount_in, self._currency, value.amount_minor, value.currency, f"{self._path}.{field}")
        return 0 if amount is None else amount

    def optional(self, field: str) -> int | None:
        return self.required(field) if self._message.HasField(field) else None


def _english(params: res.EnglishParams, currency: str, path: str) -> EnglishParams:
    parse = Collector()
    amounts = _Amounts(params, currency, path, parse)
    tiers = [[tier.from_amount, tier.step] for tier in params.increments]
    result = EnglishParams(
        opening_bid=amounts.required("opening_bid"),
        increments=parse(resolve_increments, tiers, params.increment_preset, path),  # type: ignore[arg-type]
        reserve=amounts.optional("reserve"),
        buy_now=amounts.optional("buy_now"),
        close=parse(ENGLISH_CLOSES.parse, params.close, f"{path}.close", default=EnglishClose.HARD),  # type: ignore[arg-type]
        duration_ms=params.duration_ms,
        rounds=params.rounds,
        round_duration_ms=params.round_duration_ms,
        soft_close_window_ms=params.soft_close_window_ms,
        soft_close_mode=parse(  # type: ignore[arg-type]
            SOFT_CLOSE_MODES.parse, params.soft_close_mode, f"{path}.soft_close_mode", default=SoftCloseMode.RESET
        ),
        soft_close_max_extension_ms=params.soft_close_max_extension_ms,
        vendor_may_accept=params.vendor_may_accept,
        opening_call_reserve_bp=params.opening_call_reserve_bp,
        reopen_grace_ms=params.reopen_grace_ms,
        rounds_beat_by_increment=params.rounds_beat_by_increment,
    )
    parse.done()
    return result


def _dutch(params: res.DutchParams, currency: str, path: str) -> DutchParams:
    parse = Collector()
    amounts = _Amounts(params, currency, path, parse)
    result = DutchParams(
        start_price=amounts.required("start_price"),
        floor_price=amounts.required("floor_price"),
        tick_ms=params.tick_ms,
        step_mode=parse(  # type: ignore[arg-type]
            DUTCH_STEP_MODES.parse, params.step_mode, f"{path}.step_mode", default=DutchStepMode.FIXED
        ),
        step=amounts.required("step"),
        random_steps=params.random_steps,
        steps=tuple(_step_amounts(params, currency, path, parse)),
    )
    parse.done()
    return result


def _step_amounts(params: res.DutchParams, currency: str, path: str, parse: Collector) -> list[int]:
    """The seller's random steps; the count is bounded before any is read (`LotTerms.validate` says why)."""
    if len(params.steps) > MAX_DUTCH_STEPS:
        parse.violations.add(f"{path}.steps", f"give 2 to {MAX_DUTCH_STEPS} steps")
        return []
    amounts = []
    for index, money in enumerate(params.steps):
        amount = parse(amount_in, currency, money.amount_minor, money.currency, f"{path}.steps[{index}]")
        amounts.append(0 if amount is None else amount)
    return amounts


def _lucky(params: res.LuckyParams, currency: str, path: str) -> LuckyParams:
    parse = Collector()
    amounts = _Amounts(params, currency, path, parse)
    result = LuckyParams(
        options=tuple(params.options),
        price=amounts.required("price"),
        window_ms=params.window_ms,
        winning_rule=parse(  # type: ignore[arg-type]
            LUCKY_RULES.parse, params.winning_rule, f"{path}.winning_rule", default=LuckyWinningRule.DRAWN
        ),
        winning_option=params.winning_option,
    )
    parse.done()
    return result


def _tender(params: res.TenderParams, currency: str, path: str) -> TenderParams:
    parse = Collector()
    amounts = _Amounts(params, currency, path, parse)
    result = TenderParams(
        start_price=amounts.required("start_price"),
        minimum_price=amounts.optional("minimum_price"),
        increment=amounts.required("increment"),
        soft_close_window_ms=params.soft_close_window_ms,
        soft_close_max_extension_ms=params.soft_close_max_extension_ms,
        ticket_price=amounts.required("ticket_price"),
        ticket_step=amounts.required("ticket_step"),
    )
    parse.done()
    return result


_PARAMS_FIELD = {
    Format.ENGLISH: "english",
    Format.DUTCH: "dutch",
    Format.LUCKY: "lucky",
    Format.TENDER_OPEN: "tender",
    Format.TENDER_SEALED_FIRST_PRICE: "tender",
    Format.TENDER_SEALED_SECOND_PRICE: "tender",
    Format.TENDER_BID_TICKET: "tender",
}
_PARAMS_PARSERS: Mapping[str, Callable[[Any, str, str], FormatParams]] = {
    "english": _english,
    "dutch": _dutch,
    "lucky": _lucky,
    "tender": _tender,
}


def _extra(extra: Mapping[str, str], path: str) -> dict[str, str]:
    """`lot.extra`: at most 32 entries, keys 1 to 64 characters of [a-z0-9_], values at most 4,096."""
    violations = Violations()
    violations.require(len(extra) <= MAX_EXTRA_ENTRIES, path, f"at most {MAX_EXTRA_ENTRIES} entries")
    for key in sorted(extra):
        if not _EXTRA_KEY.fullmatch(key):
            violations.add(path, f"key {key[:64]!r} must be 1 to 64 characters of a-z, 0-9 and _")
        if len(extra[key]) > MAX_EXTRA_VALUE:
            violations.add(path, f"the value of {key[:64]!r} must be at most {MAX_EXTRA_VALUE} characters")
    violations.raise_if_any()
    return dict(extra)


def terms_from_lot(lot: res.Lot, prefix: str = "lot", *, keep_seed: bool = False) -> LotTerms:
    """The terms a Lot message carries; InvalidArgument lists every field that cannot be read.

    The seed is output only for the catalog (which draws it), so it is 0 unless `keep_seed` (the
    room, running a lot the catalog already seeded).
    """
    parse = Collector()
    format_ = parse(FORMATS.parse, lot.format, f"{prefix}.format")
    params: FormatParams | None = None
    if format_ is not None:
        field = _PARAMS_FIELD[format_]
        if lot.WhichOneof("params") != field:
            parse.violations.add(f"{prefix}.{field}", f"format {format_.value} takes {field} parameters")
        else:
            params = parse(_PARAMS_PARSERS[field], getattr(lot, field), lot.currency, f"{prefix}.{field}")
    extra = parse(_extra, lot.extra, f"{prefix}.extra")
    if parse.failed:  # report a bad currency with the rest, as the domain would have
        parse(validate_currency, lot.currency, f"{prefix}.currency")
    parse.done()
    return LotTerms(
        currency=lot.currency,
        format=cast(Format, format_),
        params=cast(FormatParams, params),
        buyer_premium_bp=lot.buyer_premium_bp,
        tax_bp=lot.tax_bp,
        confirmation_timeout_ms=lot.confirmation_timeout_ms,
        seed=lot.seed if keep_seed else 0,
        extra=cast(dict[str, str], extra),
    )


# -- terms → wire -----------------------------------------------------------------------------------


def write_terms(message: res.Lot, terms: LotTerms) -> None:
    """Set the terms fields of `message` (the inverse of `terms_from_lot`, seed included)."""
    currency, params = terms.currency, terms.params
    message.currency = currency
    message.format = FORMATS.wire(terms.format)
    message.buyer_premium_bp = terms.buyer_premium_bp
    message.tax_bp = terms.tax_bp
    message.confirmation_timeout_ms = terms.confirmation_timeout_ms
    message.seed = terms.seed
    message.extra.clear()
    message.extra.update(terms.extra)

    def set_money(target: Message, field: str, amount: int | None) -> None:
        if amount is not None:
            getattr(target, field).CopyFrom(money_pb2.Money(amount_minor=amount, currency=currency))

    if isinstance(params, EnglishParams):
        english = message.english
        set_money(english, "opening_bid", params.opening_bid)
        for start, step in params.increments.tiers:
            english.increments.add(from_amount=start, step=step)
        set_money(english, "reserve", params.reserve)
        set_money(english, "buy_now", params.buy_now)
        english.close = ENGLISH_CLOSES.wire(params.close)
        english.duration_ms = params.duration_ms
        english.rounds = params.rounds
        english.round_duration_ms = params.round_duration_ms
        english.soft_close_window_ms = params.soft_close_window_ms
        english.soft_close_mode = SOFT_CLOSE_MODES.wire(params.soft_close_mode)
        english.soft_close_max_extension_ms = params.soft_close_max_extension_ms
        english.vendor_may_accept = params.vendor_may_accept
        english.opening_call_reserve_bp = params.opening_call_reserve_bp
        english.reopen_grace_ms = params.reopen_grace_ms
        english.rounds_beat_by_increment = params.rounds_beat_by_increment
    elif isinstance(params, DutchParams):
        dutch = message.dutch
        set_money(dutch, "start_price", params.start_price)
        set_money(dutch, "floor_price", params.floor_price)
        dutch.tick_ms = params.tick_ms
        dutch.step_mode = DUTCH_STEP_MODES.wire(params.step_mode)
        set_money(dutch, "step", params.step)
        dutch.random_steps = params.random_steps
        for amount in params.steps:
            dutch.steps.add(amount_minor=amount, currency=currency)
    elif isinstance(params, LuckyParams):
        lucky = message.lucky
        lucky.options.extend(params.options)
        set_money(lucky, "price", params.price)
        lucky.window_ms = params.window_ms
        lucky.winning_rule = LUCKY_RULES.wire(params.winning_rule)
        lucky.winning_option = params.winning_option  # 0 except on lots of the retired FIXED rule
    else:
        tender = message.tender
        set_money(tender, "start_price", params.start_price)
        set_money(tender, "minimum_price", params.minimum_price)
        set_money(tender, "increment", params.increment)
        tender.soft_close_window_ms = params.soft_close_window_ms
        tender.soft_close_max_extension_ms = params.soft_close_max_extension_ms
        set_money(tender, "ticket_price", params.ticket_price)
        set_money(tender, "ticket_step", params.ticket_step)
