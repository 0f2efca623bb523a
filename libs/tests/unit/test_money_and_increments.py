import pytest

from gavel_core.errors import InvalidArgument
from gavel_core.increments import PRESETS, IncrementTable
from gavel_core.money import MAX_AMOUNT_MINOR, Money


def test_money_rejects_unknown_currency_naming_the_field():
    with pytest.raises(InvalidArgument) as caught:
        Money.of(100, "XXX", field="lot.opening_bid")
    assert caught.value.violations[0].field == "lot.opening_bid.currency"


@pytest.mark.parametrize("amount", [-1, MAX_AMOUNT_MINOR + 1])
def test_money_rejects_negative_and_overflowing_amounts(amount):
    with pytest.raises(InvalidArgument):
        Money.of(amount, "USD")


def test_money_formats_with_the_currency_exponent():
    assert str(Money(123456, "USD")) == "1234.56 USD"
    assert str(Money(1500, "JPY")) == "1500 JPY"


def test_premium_rounds_half_up_in_minor_units():
    assert Money(10_001, "EUR").percent_of(2_500).amount_minor == 2_500


def test_increment_step_comes_from_the_last_tier_at_or_below_the_amount():
    table = IncrementTable.of([[0, 5], [100, 25], [500, 50]])
    assert [table.step_at(a) for a in (0, 99, 100, 499, 500, 10_000)] == [5, 5, 25, 25, 50, 50]
    assert table.next_amount(100) == 125


@pytest.mark.parametrize(
    "tiers",
    [[], [[10, 5]], [[0, 5], [0, 10]], [[0, 0]], [[0, 5], [100]], [[0, 5], [50, -1]]],
)
def test_malformed_increment_tables_are_rejected(tiers):
    with pytest.raises(InvalidArgument):
        IncrementTable.of(tiers)


def test_every_preset_is_a_valid_table():
    for table in PRESETS.values():
        assert IncrementTable.of(table.as_lists()) == table
