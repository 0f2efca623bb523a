"""Lot terms survive the database (JSON codec) and the wire (proto mapping) unchanged, for every format."""

import dataclasses
from datetime import UTC, datetime

import pytest

from catalog.adapters.mapping import lot_message
from catalog.adapters.orm import decode_terms, encode_terms
from catalog.domain.lots import Lot, LotView
from catalog.domain.states import State
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
from gavel_kit.lotwire import terms_from_lot

TERMS = {
    "english": LotTerms(
        "EUR",
        Format.ENGLISH,
        EnglishParams(
            opening_bid=5_000,
            increments=IncrementTable(((0, 100), (10_000, 500))),
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
        extra={"below_reserve": "offer_vendor", "vendor_decision_ms": "3600000"},
    ),
    "dutch": LotTerms(
        "JPY", Format.DUTCH, DutchParams(50_000, 20_000, 2_000, DutchStepMode.RANDOM, random_steps=12), seed=1
    ),
    "dutch_steps": LotTerms(
        "EUR",
        Format.DUTCH,
        DutchParams(10_000, 2_000, 2_000, DutchStepMode.RANDOM, steps=(2_500, 2_500, 5_000)),
        seed=1,
    ),
    "lucky": LotTerms(
        "USD", Format.LUCKY, LuckyParams(("red", "green", "blue"), 5_000, 60_000, LuckyWinningRule.SEEDED), seed=3
    ),
    "lucky_drawn": LotTerms(
        "USD", Format.LUCKY, LuckyParams(("red", "green"), 5_000, 60_000, LuckyWinningRule.DRAWN_PER_WINDOW)
    ),
    "tender": LotTerms(
        "GBP",
        Format.TENDER_BID_TICKET,
        TenderParams(start_price=0, minimum_price=None, ticket_price=100, ticket_step=10),
    ),
}


@pytest.mark.parametrize("terms", TERMS.values(), ids=TERMS.keys())
def test_terms_read_back_from_their_stored_json_exactly(terms):
    assert decode_terms(encode_terms(terms)) == terms


@pytest.mark.parametrize("terms", TERMS.values(), ids=TERMS.keys())
def test_terms_sent_on_the_wire_parse_back_exactly_but_the_seed_is_the_catalogs_own(terms):
    now = datetime(2030, 1, 1, tzinfo=UTC)
    lot = Lot("l", "l", "s", "p", "seller", 0, 1, 0, 1, terms, State.DRAFT, now, now)

    assert terms_from_lot(lot_message(LotView(lot, False, True))) == dataclasses.replace(terms, seed=0)
