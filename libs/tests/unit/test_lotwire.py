"""The one mapping of a lot's terms between the wire Lot and LotTerms (gavel_kit.lotwire)."""

import dataclasses

import pytest

from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1.money_pb2 import Money
from gavel_core.errors import InvalidArgument
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
    TenderParams,
)
from gavel_core.increments import IncrementTable
from gavel_kit.lotwire import terms_from_lot, write_terms

TERMS = {
    "english": LotTerms(
        "EUR",
        Format.ENGLISH,
        EnglishParams(
            opening_bid=5_000,
            increments=IncrementTable(((0, 100), (10_000, 500), (100_000, 1_000))),
            reserve=20_000,
            buy_now=90_000,
            close=EnglishClose.SOFT,
            duration_ms=600_000,
            soft_close_window_ms=30_000,
            soft_close_mode=SoftCloseMode.EXTEND,
            soft_close_max_extension_ms=300_000,
            vendor_may_accept=True,
            opening_call_reserve_bp=5_000,
        ),
        buyer_premium_bp=2_500,
        tax_bp=2_000,
        confirmation_timeout_ms=60_000,
        seed=2**62 + 7,
    ),
    "dutch_fixed": LotTerms("USD", Format.DUTCH, DutchParams(50_000, 20_000, 2_000, DutchStepMode.FIXED, step=500)),
    "dutch_random": LotTerms(
        "JPY", Format.DUTCH, DutchParams(50_000, 20_000, 2_000, DutchStepMode.RANDOM, random_steps=12), seed=1
    ),
    "dutch_steps": LotTerms(
        "EUR",
        Format.DUTCH,
        DutchParams(10_000, 2_000, 2_000, DutchStepMode.RANDOM, steps=(2_500, 2_500, 5_000)),
        seed=1,
    ),
    "rounds": LotTerms(
        "EUR",
        Format.ENGLISH,
        EnglishParams(
            1_000,
            IncrementTable(((0, 100),)),
            close=EnglishClose.ROUNDS,
            rounds=3,
            round_duration_ms=20_000,
            rounds_beat_by_increment=True,
        ),
    ),
    "lucky": LotTerms(  # a retired rule still reads back: logs recorded with it replay
        "USD",
        Format.LUCKY,
        LuckyParams(("red", "green", "blue"), 5_000, 60_000, LuckyWinningRule.FIXED, winning_option=2),
        seed=3,
    ),
    "lucky_drawn": LotTerms("USD", Format.LUCKY, LuckyParams(("red", "green"), 5_000, 60_000)),
    "tender": LotTerms(
        "GBP",
        Format.TENDER_OPEN,
        TenderParams(start_price=1_000, minimum_price=5_000, increment=100, soft_close_window_ms=60_000),
    ),
}


def wire(terms: LotTerms) -> res.Lot:
    message = res.Lot(id="lot-1")
    write_terms(message, terms)
    return message


@pytest.mark.parametrize("terms", TERMS.values(), ids=TERMS.keys())
def test_terms_round_trip_through_the_wire_lot(terms):
    assert terms_from_lot(wire(terms), keep_seed=True) == terms


@pytest.mark.parametrize("terms", TERMS.values(), ids=TERMS.keys())
def test_the_seed_is_dropped_unless_kept(terms):
    assert terms_from_lot(wire(terms)) == dataclasses.replace(terms, seed=0)


def test_a_preset_reads_as_its_table():
    lot = wire(TERMS["english"])
    del lot.english.increments[:]
    lot.english.increment_preset = "flat_100"
    assert terms_from_lot(lot).params.increments == IncrementTable.preset("flat_100")


def test_extra_round_trips():
    terms = dataclasses.replace(
        TERMS["english"],
        extra={"below_reserve": "offer_vendor", "vendor_decision_ms": "3600000", "paddle_policy": "[]"},
    )
    message = wire(terms)
    assert dict(message.extra) == terms.extra
    assert terms_from_lot(res.Lot.FromString(message.SerializeToString()), keep_seed=True) == terms


def test_every_bad_field_is_reported_with_its_path():
    lot = wire(TERMS["english"])
    lot.english.opening_bid.CopyFrom(Money(amount_minor=5_000, currency="USD"))
    lot.english.increment_preset = "flat_100"
    lot.english.close = 99
    lot.extra["Bad-Key"] = "x"
    lot.extra["long"] = "x" * 4_097
    for index in range(31):
        lot.extra[f"k{index}"] = "v"

    with pytest.raises(InvalidArgument) as caught:
        terms_from_lot(lot, "sale.lots[0]")

    fields = [violation.field for violation in caught.value.violations]
    assert fields.count("sale.lots[0].extra") == 3  # too many entries, a bad key, a long value
    assert set(fields) == {
        "sale.lots[0].english.opening_bid.currency",
        "sale.lots[0].english.increment_preset",
        "sale.lots[0].english.close",
        "sale.lots[0].extra",
    }


def test_a_format_without_its_parameters_is_refused():
    lot = res.Lot(currency="EUR", format=res.FORMAT_DUTCH)
    lot.lucky.price.amount_minor = 1
    with pytest.raises(InvalidArgument) as caught:
        terms_from_lot(lot)
    assert [v.field for v in caught.value.violations] == ["lot.dutch"]


def test_a_dutch_step_in_another_currency_is_named_by_its_index():
    lot = wire(TERMS["dutch_steps"])
    lot.dutch.steps[1].currency = "USD"
    with pytest.raises(InvalidArgument) as caught:
        terms_from_lot(lot)
    assert [v.field for v in caught.value.violations] == ["lot.dutch.steps[1].currency"]


def test_too_many_dutch_steps_are_refused_before_any_is_read():
    lot = wire(TERMS["dutch_steps"])
    for _ in range(1_001):
        lot.dutch.steps.add(amount_minor=1, currency="EUR")
    with pytest.raises(InvalidArgument) as caught:
        terms_from_lot(lot)
    assert [(v.field, v.description) for v in caught.value.violations] == [("lot.dutch.steps", "give 2 to 1000 steps")]


def test_an_unspecified_lucky_rule_means_the_room_draws():
    lot = wire(TERMS["lucky_drawn"])
    lot.lucky.winning_rule = res.LUCKY_WINNING_RULE_UNSPECIFIED
    assert terms_from_lot(lot).params.winning_rule is LuckyWinningRule.DRAWN
