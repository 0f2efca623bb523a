"""What a buyer owes: premium bands, tax base, paddle discount, deposit and credit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payment.domain.invoices import apply_funds, price_lot
from payment.domain.terms import Band, SaleTerms, TaxBase, premium

BANDS = (Band(0, 2500), Band(100_000, 2000), Band(1_000_000, 1500))


def test_the_premium_is_taken_band_by_band_like_tax_brackets():
    assert premium(50_000, BANDS) == 12_500
    assert premium(100_000, BANDS) == 25_000
    assert premium(200_000, BANDS) == 25_000 + 20_000
    assert premium(2_000_000, BANDS) == 25_000 + 180_000 + 150_000


def test_tax_on_the_premium_only_or_on_the_whole_as_the_sale_says():
    on_premium = SaleTerms("s", "EUR", premium_bands=(Band(0, 2000),), tax_bp=2000, tax_base=TaxBase.PREMIUM)
    on_whole = SaleTerms("s", "EUR", premium_bands=(Band(0, 2000),), tax_bp=2000, tax_base=TaxBase.WHOLE)
    assert price_lot(10_000, 0, on_premium).tax == 400
    assert price_lot(10_000, 0, on_whole).tax == 2_400


def test_the_paddle_discount_comes_off_the_hammer_before_premium_and_tax():
    terms = SaleTerms("s", "EUR", premium_bands=(Band(0, 1000),), tax_bp=1000)
    amounts = price_lot(10_000, 500, terms)
    assert (amounts.discount, amounts.net_hammer, amounts.premium, amounts.tax) == (500, 9_500, 950, 1_045)
    assert amounts.gross == 9_500 + 950 + 1_045


def test_the_deposit_is_used_first_then_credit_never_beyond_the_total():
    amounts = price_lot(10_000, 0, SaleTerms("s", "EUR"))
    assert apply_funds(amounts, 3_000, 2_000).to_pay == 5_000
    funded = apply_funds(amounts, 8_000, 5_000)
    assert (funded.deposit_applied, funded.credit_applied, funded.to_pay) == (8_000, 2_000, 0)


@given(
    hammer=st.integers(0, 10**12),
    discount_bp=st.integers(0, 10_000),
    tax_bp=st.integers(0, 10_000),
    deposit=st.integers(0, 10**12),
    credit=st.integers(0, 10**12),
    base=st.sampled_from(list(TaxBase)),
)
def test_an_invoice_adds_up_and_never_asks_for_a_negative_amount(hammer, discount_bp, tax_bp, deposit, credit, base):
    terms = SaleTerms("s", "EUR", premium_bands=BANDS, tax_bp=tax_bp, tax_base=base)
    amounts = apply_funds(price_lot(hammer, discount_bp, terms), deposit, credit)
    assert amounts.gross == amounts.hammer - amounts.discount + amounts.premium + amounts.tax
    assert 0 <= amounts.discount <= amounts.hammer
    assert amounts.to_pay >= 0
    assert amounts.deposit_applied + amounts.credit_applied + amounts.to_pay == amounts.gross


@pytest.mark.parametrize(
    ("field", "terms"),
    [
        ("terms.premium_bands[0].from_minor", SaleTerms("s", "EUR", premium_bands=(Band(5, 100),))),
        ("terms.premium_bands[1].from_minor", SaleTerms("s", "EUR", premium_bands=(Band(0, 1), Band(0, 2)))),
        ("terms.tax_bp", SaleTerms("s", "EUR", tax_bp=10_001)),
        ("terms.currency", SaleTerms("s", "XXX")),
        ("terms.payment_due_days", SaleTerms("s", "EUR", payment_due_days=0)),
    ],
)
def test_terms_that_make_no_sense_are_refused_naming_the_field(field, terms):
    from gavel_core.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as caught:
        terms.validate()
    assert field in [v.field for v in caught.value.violations]
