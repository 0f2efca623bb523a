"""The lot's only source of randomness: SplitMix64 and what is drawn from it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from room.domain.prng import SplitMix64, random_composition, seeded_index, splitmix64_at


def test_splitmix64_matches_the_reference_sequence_for_seed_zero() -> None:
    rng = SplitMix64(0)
    assert [rng.next_u64() for _ in range(3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_random_access_gives_the_same_outputs_as_the_stream() -> None:
    rng = SplitMix64(12345)
    assert [rng.next_u64() for _ in range(10)] == [splitmix64_at(12345, k) for k in range(10)]


def test_below_stays_in_range_and_refuses_an_empty_range() -> None:
    rng = SplitMix64(1)
    assert {rng.below(3) for _ in range(200)} == {0, 1, 2}
    with pytest.raises(ValueError, match="bound"):
        rng.below(0)


@settings(max_examples=150, deadline=None)
@given(total=st.integers(1, 10**12), data=st.data(), seed=st.integers(0, 2**63 - 1))
def test_a_random_composition_is_positive_sums_to_the_total_and_is_reproducible(
    total: int, data: st.DataObject, seed: int
) -> None:
    parts = data.draw(st.integers(1, min(total, 200)))
    steps = random_composition(total, parts, seed)
    assert len(steps) == parts
    assert sum(steps) == total
    assert min(steps) >= 1
    assert steps == random_composition(total, parts, seed)


def test_a_composition_needs_at_least_one_unit_per_part() -> None:
    with pytest.raises(ValueError, match="parts"):
        random_composition(3, 4, 0)


def test_seeded_indices_are_reproducible_and_spread() -> None:
    picks = [seeded_index(99, 0xABC, draw, 6) for draw in range(300)]
    assert picks == [seeded_index(99, 0xABC, draw, 6) for draw in range(300)]
    assert set(picks) == set(range(6))
