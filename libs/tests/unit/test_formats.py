import pytest

from gavel_core.errors import InvalidArgument
from gavel_core.formats import (
    DutchParams,
    DutchStepMode,
    EnglishClose,
    EnglishParams,
    Format,
    LotTerms,
    LuckyParams,
    TenderParams,
)
from gavel_core.increments import IncrementTable

TABLE = IncrementTable.of([[0, 100]])


def violations_of(terms: LotTerms) -> set[str]:
    with pytest.raises(InvalidArgument) as caught:
        terms.validate()
    return {v.field for v in caught.value.violations}


def test_a_plain_english_lot_is_valid():
    LotTerms("USD", Format.ENGLISH, EnglishParams(1_000, TABLE, duration_ms=60_000)).validate()


def test_every_bad_parameter_is_reported_at_once():
    terms = LotTerms("XYZ", Format.DUTCH, DutchParams(start_price=100, floor_price=200, tick_ms=0), tax_bp=20_000)
    assert violations_of(terms) >= {"lot.currency", "lot.tax_bp", "lot.dutch.floor_price", "lot.dutch.tick_ms"}


def test_format_and_parameters_must_match():
    assert "lot.params" in violations_of(LotTerms("USD", Format.ENGLISH, TenderParams(start_price=1)))


def test_round_limited_english_needs_rounds_and_a_round_time():
    params = EnglishParams(1_000, TABLE, close=EnglishClose.ROUNDS)
    assert violations_of(LotTerms("USD", Format.ENGLISH, params)) >= {
        "lot.english.rounds",
        "lot.english.round_duration_ms",
    }


def test_buy_now_below_the_reserve_is_rejected():
    params = EnglishParams(1_000, TABLE, reserve=5_000, buy_now=2_000, duration_ms=1)
    assert "lot.english.buy_now" in violations_of(LotTerms("USD", Format.ENGLISH, params))


def test_random_step_dutch_needs_a_step_count_within_the_drop():
    params = DutchParams(1_000, 900, tick_ms=1_000, step_mode=DutchStepMode.RANDOM, random_steps=500)
    assert "lot.dutch.random_steps" in violations_of(LotTerms("USD", Format.DUTCH, params))


def test_lucky_options_must_be_distinct_and_the_winner_must_exist():
    params = LuckyParams(options=("red", "red"), price=500, window_ms=10_000, winning_option=5)
    assert violations_of(LotTerms("USD", Format.LUCKY, params)) >= {"lot.lucky.options", "lot.lucky.winning_option"}


def test_bid_ticket_sales_need_a_ticket_price_and_step():
    params = TenderParams(start_price=0)
    assert "lot.tender.ticket_price" in violations_of(LotTerms("USD", Format.TENDER_BID_TICKET, params))
