"""Tiered bid-increment tables: `[[from_amount, step], ...]` in minor units (DESIGN.md "Domain rules").

The step that applies at an amount is the step of the last tier whose `from_amount` is at or below it.
Shared by catalog (which validates a lot's table) and room (which bids with it).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from gavel_core.errors import FieldViolation, InvalidArgument
from gavel_core.money import MAX_AMOUNT_MINOR

MAX_TIERS = 100  # a lot's increment table; more would make an event no consumer should have to carry


@dataclass(frozen=True, slots=True)
class IncrementTable:
    """An immutable, validated increment table. Build with `IncrementTable.of(...)`."""

    tiers: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, tiers: Sequence[Sequence[int]], field: str = "increments") -> IncrementTable:
        violations: list[FieldViolation] = []
        normalised: list[tuple[int, int]] = []
        if not tiers:
            violations.append(FieldViolation(field, "an increment table needs at least one tier"))
        if len(tiers) > MAX_TIERS:  # refused before looking at them: a huge table is not a table
            raise InvalidArgument([FieldViolation(field, f"at most {MAX_TIERS} tiers")])
        for index, tier in enumerate(tiers):
            path = f"{field}[{index}]"
            if len(tier) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in tier):
                violations.append(FieldViolation(path, "a tier is [from_amount, step] in integer minor units"))
                continue
            start, step = int(tier[0]), int(tier[1])
            if start < 0 or start > MAX_AMOUNT_MINOR:
                violations.append(FieldViolation(f"{path}.from_amount", "must be between 0 and the maximum amount"))
            if step <= 0 or step > MAX_AMOUNT_MINOR:
                violations.append(FieldViolation(f"{path}.step", "step must be a positive amount"))
            if normalised and start <= normalised[-1][0]:
                violations.append(FieldViolation(f"{path}.from_amount", "tiers must be in strictly ascending order"))
            normalised.append((start, step))
        if normalised and normalised[0][0] != 0:
            violations.append(FieldViolation(f"{field}[0].from_amount", "the first tier must start at 0"))
        if violations:
            raise InvalidArgument(violations)
        return cls(tuple(normalised))

    @classmethod
    def preset(cls, name: str) -> IncrementTable:
        try:
            return PRESETS[name]
        except KeyError:
            known = ", ".join(sorted(PRESETS))
            raise InvalidArgument(
                [FieldViolation("increment_preset", f"unknown preset {name!r}; known: {known}")]
            ) from None

    def step_at(self, amount_minor: int) -> int:
        """The increment that applies to a price of `amount_minor`."""
        index = bisect_right(self.tiers, (amount_minor, MAX_AMOUNT_MINOR + 1)) - 1
        return self.tiers[max(index, 0)][1]

    def next_amount(self, amount_minor: int) -> int:
        """The smallest acceptable next bid over a standing price of `amount_minor`."""
        return amount_minor + self.step_at(amount_minor)

    def round_down(self, amount_minor: int) -> int:
        """`amount_minor` rounded down to a multiple of the step that applies there (opening-bid calls)."""
        step = self.step_at(amount_minor)
        return amount_minor - amount_minor % step

    def as_lists(self) -> list[list[int]]:
        return [[start, step] for start, step in self.tiers]


PRESETS: dict[str, IncrementTable] = {
    # eBay-style table (USD cents).
    "ebay_usd": IncrementTable(
        ((0, 5), (100, 25), (500, 50), (2_500, 100), (10_000, 250), (25_000, 500), (50_000, 1_000),
         (100_000, 2_500), (250_000, 5_000), (500_000, 10_000))
    ),
    # Common auction-house table (minor units of GBP/EUR/USD).
    "auction_house": IncrementTable(
        ((0, 500), (5_000, 1_000), (20_000, 2_000), (50_000, 5_000), (100_000, 10_000), (200_000, 20_000),
         (500_000, 50_000), (1_000_000, 100_000), (2_000_000, 200_000), (5_000_000, 500_000))
    ),
    # Real-estate style: large round steps.
    "real_estate": IncrementTable(((0, 100_000), (10_000_000, 500_000), (100_000_000, 1_000_000))),
    # Simple flat table for tests and demos.
    "flat_100": IncrementTable(((0, 100),)),
}  # fmt: skip


def resolve_increments(tiers: Sequence[Sequence[int]], preset: str, path: str) -> IncrementTable:
    """The English increment table from the wire: explicit tiers or a named preset, not both.

    For adapters mapping `lot.english.increments` / `lot.english.increment_preset`; errors name
    `path.increments[i]…` or `path.increment_preset`.
    """
    if tiers and preset:
        raise InvalidArgument([FieldViolation(f"{path}.increment_preset", "give increments or a preset, not both")])
    if preset:
        try:
            return IncrementTable.preset(preset)
        except InvalidArgument as exc:
            raise InvalidArgument(
                [FieldViolation(f"{path}.increment_preset", v.description) for v in exc.violations]
            ) from None
    return IncrementTable.of(tiers, field=f"{path}.increments")
