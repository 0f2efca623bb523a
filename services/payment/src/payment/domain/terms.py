"""A sale's financial terms: who pays what, when, and how much a deposit lets a bidder bid. Pure.

Payment owns these (set by sale admins through SetSaleTerms), not the catalog: they are money
policy that only payment applies, they change nothing in how a lot runs, and the catalog's flat
`buyer_premium_bp`/`tax_bp` remain the default for sales without terms of their own. Terms are
frozen once the sale's first invoice is issued (an invoice records the numbers it used).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from gavel_core.errors import Violations
from gavel_core.money import MAX_AMOUNT_MINOR, validate_currency

MAX_BANDS = 10
MAX_BP = 10_000
MAX_MULTIPLIER_BP = 1_000_000  # buying power at most 100 x the deposit
MAX_DUE_DAYS = 90


class TaxBase(StrEnum):
    PREMIUM = "premium"  # tax on the buyer's premium only (e.g. the UK margin scheme)
    WHOLE = "whole"  # tax on hammer (after discount) + premium


class CreditScope(StrEnum):
    PRODUCT = "product"  # ticket credit redeemable only on the product it was spent on
    ANY = "any"  # redeemable on any invoice


@dataclass(frozen=True, slots=True)
class Band:
    """From `from_minor` of the (discounted) hammer upward, `bp` basis points apply (marginally)."""

    from_minor: int
    bp: int


@dataclass(frozen=True, slots=True)
class SaleTerms:
    sale_id: str
    currency: str
    premium_bands: tuple[Band, ...] = (Band(0, 0),)
    tax_bp: int = 0
    tax_base: TaxBase = TaxBase.WHOLE
    commission_bp: int = 0
    deposit_minor: int = 0  # the deposit a bidder is asked for (0: none asked)
    buying_power_bp: int = 10_000  # buying power = deposit x this / 10,000
    penalty_fee_minor: int = 0  # fixed part of a penalty
    penalty_fee_bp: int = 0  # plus this share of the defaulted price
    payment_due_days: int = 7
    credit_scope: CreditScope = CreditScope.PRODUCT
    frozen: bool = False
    version: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def default(cls, sale_id: str, currency: str, premium_bp: int = 0, tax_bp: int = 0) -> SaleTerms:
        """Terms of a sale whose admins set none: the catalog lot's flat premium and tax on the whole."""
        return cls(sale_id=sale_id, currency=currency, premium_bands=(Band(0, premium_bp),), tax_bp=tax_bp)

    def validate(self) -> SaleTerms:
        problems = Violations()
        try:
            validate_currency(self.currency, "terms.currency")
        except Exception:
            problems.add("terms.currency", f"unknown currency {self.currency!r}")
        bands = self.premium_bands
        problems.require(1 <= len(bands) <= MAX_BANDS, "terms.premium_bands", f"1 to {MAX_BANDS} bands")
        if bands:
            problems.require(
                bands[0].from_minor == 0, "terms.premium_bands[0].from_minor", "the first band starts at 0"
            )
        for index, band in enumerate(bands):
            problems.require(0 <= band.bp <= MAX_BP, f"terms.premium_bands[{index}].bp", f"0 to {MAX_BP}")
            problems.require(
                0 <= band.from_minor <= MAX_AMOUNT_MINOR, f"terms.premium_bands[{index}].from_minor", "out of range"
            )
            if index:
                problems.require(
                    band.from_minor > bands[index - 1].from_minor,
                    f"terms.premium_bands[{index}].from_minor",
                    "bands must start in increasing order",
                )
        for name, value, top in (
            ("tax_bp", self.tax_bp, MAX_BP),
            ("commission_bp", self.commission_bp, MAX_BP),
            ("penalty_fee_bp", self.penalty_fee_bp, MAX_BP),
            ("buying_power_bp", self.buying_power_bp, MAX_MULTIPLIER_BP),
            ("deposit_minor", self.deposit_minor, MAX_AMOUNT_MINOR),
            ("penalty_fee_minor", self.penalty_fee_minor, MAX_AMOUNT_MINOR),
            ("payment_due_days", self.payment_due_days, MAX_DUE_DAYS),
        ):
            problems.require(0 <= value <= top, f"terms.{name}", f"0 to {top}")
        problems.require(self.payment_due_days >= 1, "terms.payment_due_days", "at least 1 day")
        problems.raise_if_any()
        return self

    def buying_power(self, deposit_minor: int) -> int:
        return min(MAX_AMOUNT_MINOR, deposit_minor * self.buying_power_bp // 10_000)

    def penalty_fee(self, price_minor: int) -> int:
        return min(MAX_AMOUNT_MINOR, self.penalty_fee_minor + bp_of(price_minor, self.penalty_fee_bp))


def bp_of(amount_minor: int, bp: int) -> int:
    """`amount x bp / 10,000` rounded half up (gavel_core.money.Money.percent_of)."""
    return (amount_minor * bp + 5_000) // 10_000


def premium(hammer_minor: int, bands: tuple[Band, ...]) -> int:
    """The buyer's premium on a hammer price, band by band (each band's rate applies only to the
    part of the price inside it, like tax brackets), each band's part rounded half up."""
    total = 0
    for index, band in enumerate(bands):
        upper = bands[index + 1].from_minor if index + 1 < len(bands) else None
        if hammer_minor <= band.from_minor:
            break
        portion = (min(hammer_minor, upper) if upper is not None else hammer_minor) - band.from_minor
        total += bp_of(portion, band.bp)
    return total
