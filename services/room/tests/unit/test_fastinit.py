"""The faster constructor keeps frozen-dataclass behaviour exactly."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from room.domain import GOOD_STANDING, BidderStanding, PlaceBid
from room.domain.events import BidAccepted
from room.domain.fastinit import fast_init


def test_events_built_positionally_or_by_keyword_are_equal_frozen_and_hashable() -> None:
    a = BidAccepted("L", 1, "b", "alice", 10, 10, "alice", None)
    b = BidAccepted(lot_id="L", at_ms=1, bid_id="b", bidder="alice", amount=10, price=10, leader="alice",
                    previous_leader=None)  # fmt: skip
    assert a == b
    assert hash(a) == hash(b)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.price = 11  # type: ignore[misc]


def test_defaults_are_kept() -> None:
    assert PlaceBid("b", "alice", 10).standing is GOOD_STANDING
    assert PlaceBid("b", "alice", 10, BidderStanding(banned=True)).standing.banned


def test_missing_arguments_still_fail_like_the_generated_constructor() -> None:
    with pytest.raises(TypeError):
        PlaceBid("b", "alice")  # type: ignore[call-arg]


def test_only_frozen_slotted_dataclasses_are_accepted() -> None:
    @dataclass(slots=True)
    class Mutable:
        x: int

    with pytest.raises(TypeError, match="frozen slots"):
        fast_init(Mutable)
