"""A tiny deterministic PRNG (SplitMix64) for the only randomness a lot may have: its seed.

Engines never import `random`: every seeded choice (the Dutch random steps and their order) is
a pure function of `LotTerms.seed`, so a replay on any machine, in any Python version, draws
the same numbers. (The lucky option is not seeded, because the seller can read the seed: it
comes from the room's own secret, `room.domain.draws`.) SplitMix64 is Steele, Lea and Flood's
generator (the seeder of xoshiro); its k-th output is `mix(seed + k * GAMMA)`, which also gives
O(1) random access (`splitmix64_at`).
"""

from __future__ import annotations

import itertools

MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15

# Salts keep the streams of different uses independent even when a lot's seed is reused.
DUTCH_STEPS_SALT = 0xD0_7C_45_7E_95
DUTCH_ORDER_SALT = 0xD0_7C_0D_E5_55
LUCKY_OPTION_SALT = 0x1C_4B_0F_70_15  # the retired SEEDED lucky rule only


def mix64(z: int) -> int:
    """The SplitMix64 output function: a bijective avalanche of a 64-bit word."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def splitmix64_at(seed: int, index: int) -> int:
    """The `index`-th (0-based) output of `SplitMix64(seed)`, without generating the ones before."""
    return mix64((seed + (index + 1) * GAMMA) & MASK64)


class SplitMix64:
    """SplitMix64 stream. Not for cryptography; for reproducible lot-level choices only."""

    __slots__ = ("state",)

    def __init__(self, seed: int) -> None:
        self.state = seed & MASK64

    def next_u64(self) -> int:
        self.state = (self.state + GAMMA) & MASK64
        return mix64(self.state)

    def below(self, bound: int) -> int:
        """A uniform integer in [0, bound), without modulo bias (rejection sampling)."""
        if bound <= 0:
            raise ValueError("bound must be positive")
        limit = (1 << 64) - (1 << 64) % bound
        while True:
            value = self.next_u64()
            if value < limit:
                return value % bound


def random_composition(total: int, parts: int, seed: int) -> tuple[int, ...]:
    """Split `total` into `parts` positive integers, uniformly over all compositions, reproducibly.

    Picks `parts - 1` distinct cut points in 1..total-1 with Floyd's algorithm (O(parts) draws,
    whatever the total) and returns the gaps between consecutive cuts, in order.
    """
    if parts < 1 or total < parts:
        raise ValueError("need 1 <= parts <= total")
    rng = SplitMix64(seed)
    span = total - 1  # candidate cut points 1..span
    wanted = parts - 1
    cuts: set[int] = set()
    for j in range(span - wanted + 1, span + 1):
        pick = 1 + rng.below(j)
        cuts.add(j if pick in cuts else pick)
    bounds = [0, *sorted(cuts), total]
    return tuple(b - a for a, b in itertools.pairwise(bounds))


def shuffled(items: list[int], seed: int) -> tuple[int, ...]:
    """`items` in a uniformly random order (Fisher-Yates), reproducibly from `seed`."""
    rng = SplitMix64(seed)
    result = list(items)
    for i in range(len(result) - 1, 0, -1):
        j = rng.below(i + 1)
        result[i], result[j] = result[j], result[i]
    return tuple(result)


def seeded_index(seed: int, salt: int, draw: int, bound: int) -> int:
    """A reproducible index in [0, bound) for the `draw`-th choice of a lot (e.g. lucky window n)."""
    return SplitMix64(splitmix64_at(seed ^ salt, draw)).below(bound)
