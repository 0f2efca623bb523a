"""Money as integer minor units plus an ISO 4217 currency code. Never floats."""

from __future__ import annotations

from dataclasses import dataclass

from gavel_core.errors import FieldViolation, InvalidArgument

# ISO 4217 codes Gavel accepts, with their minor-unit exponent (digits after the decimal point).
CURRENCY_EXPONENTS: dict[str, int] = {
    "AED": 2, "AUD": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "CZK": 2, "DKK": 2, "EUR": 2,
    "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "JPY": 0, "KRW": 0, "MXN": 2,
    "MYR": 2, "NOK": 2, "NZD": 2, "PHP": 2, "PLN": 2, "RON": 2, "SAR": 2, "SEK": 2, "SGD": 2,
    "THB": 2, "TRY": 2, "TWD": 2, "USD": 2, "VND": 0, "ZAR": 2, "BHD": 3, "KWD": 3, "OMR": 3,
}  # fmt: skip

# Amounts travel as protobuf int64; keep every stored amount well inside it so sums cannot overflow.
MAX_AMOUNT_MINOR = 10**15


def validate_currency(currency: str, field: str = "currency") -> str:
    """Return the currency if Gavel accepts it, else raise InvalidArgument naming `field`."""
    if currency not in CURRENCY_EXPONENTS:
        raise InvalidArgument([FieldViolation(field, f"unknown currency {currency!r}; use an ISO 4217 code")])
    return currency


def validate_amount(amount_minor: int, field: str, *, allow_zero: bool = True) -> int:
    """Return the amount if it is a non-negative integer below MAX_AMOUNT_MINOR, else raise InvalidArgument."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise InvalidArgument([FieldViolation(field, "amount must be an integer number of minor units")])
    if amount_minor < 0 or (amount_minor == 0 and not allow_zero):
        raise InvalidArgument(
            [FieldViolation(field, "amount must be positive" if not allow_zero else "amount must not be negative")]
        )
    if amount_minor > MAX_AMOUNT_MINOR:
        raise InvalidArgument([FieldViolation(field, f"amount must not exceed {MAX_AMOUNT_MINOR} minor units")])
    return amount_minor


def amount_in(currency: str, amount_minor: int, amount_currency: str, path: str) -> int:
    """An amount from a wire Money that must be in the lot's currency (empty means the lot's)."""
    if amount_currency and amount_currency != currency:
        raise InvalidArgument([FieldViolation(f"{path}.currency", f"must be the lot's currency {currency}")])
    return amount_minor


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units (cents, pence, yen) of one currency."""

    amount_minor: int
    currency: str

    @classmethod
    def of(cls, amount_minor: int, currency: str, field: str = "amount") -> Money:
        """Build a validated Money; errors name `field` (e.g. `lot.opening_bid`)."""
        validate_currency(currency, f"{field}.currency")
        validate_amount(amount_minor, f"{field}.amount_minor")
        return cls(amount_minor, currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount_minor < other.amount_minor

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount_minor <= other.amount_minor

    def percent_of(self, basis_points: int) -> Money:
        """This amount times basis_points / 10,000, rounded half up (premiums and taxes)."""
        return Money((self.amount_minor * basis_points + 5_000) // 10_000, self.currency)

    def __str__(self) -> str:
        exponent = CURRENCY_EXPONENTS.get(self.currency, 2)
        if exponent == 0:
            return f"{self.amount_minor} {self.currency}"
        sign = "-" if self.amount_minor < 0 else ""
        whole, frac = divmod(abs(self.amount_minor), 10**exponent)
        return f"{sign}{whole}.{frac:0{exponent}d} {self.currency}"
