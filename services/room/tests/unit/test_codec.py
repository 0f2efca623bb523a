"""Events and lot terms survive the plain-data codecs unchanged; bad input is named field by field."""

from __future__ import annotations

import json

import pytest
from room_support import crier, dutch, english, lucky, rounds, soft

from gavel_core.errors import InvalidArgument
from gavel_core.formats import LotTerms, LuckyWinningRule
from room.domain import ALL_EVENTS, event_from_dict, event_to_dict, terms_from_dict, terms_to_dict
from room.domain.events import BidAccepted, BiddingReopened, LotSold, LuckyWindowOpened


def sample(event_type: type) -> object:
    values = {"str": "x", "int": 7, "bool": True, "str | None": None, "int | None": 3}
    from dataclasses import fields

    return event_type(**{f.name: values[str(f.type)] for f in fields(event_type)})


@pytest.mark.parametrize("event_type", ALL_EVENTS, ids=lambda t: t.__name__)
def test_every_event_round_trips_through_json(event_type: type) -> None:
    event = sample(event_type)
    assert event_from_dict(json.loads(json.dumps(event_to_dict(event)))) == event  # type: ignore[arg-type]


def test_an_event_dict_names_its_type() -> None:
    event = LotSold("L", 5, "alice", 100, "floor", "P1", 250)
    assert event_to_dict(event) == {
        "type": "LotSold",
        "lot_id": "L",
        "at_ms": 5,
        "buyer": "alice",
        "hammer_price": 100,
        "source": "floor",
        "paddle": "P1",
        "discount_bp": 250,
    }


def test_a_bad_event_dict_is_refused_field_by_field() -> None:
    data = event_to_dict(BidAccepted("L", 1, "b", "alice", 10, 10, "alice", None))
    data["price"] = "ten"
    data["extra"] = 1
    del data["bid_id"]
    with pytest.raises(InvalidArgument) as caught:
        event_from_dict(data)
    assert {v.field for v in caught.value.violations} == {"price", "extra", "bid_id"}


@pytest.mark.parametrize(
    ("data", "event"),
    [
        (
            {
                "type": "LuckyWindowOpened",
                "lot_id": "L",
                "at_ms": 0,
                "window": 1,
                "winning_option": 2,
                "deadline_ms": 9,
            },
            LuckyWindowOpened("L", 0, 1, 2, 9, ""),
        ),
        (
            {"type": "BiddingReopened", "lot_id": "L", "at_ms": 0, "price": 800, "deadline_ms": 9},
            BiddingReopened("L", 0, 800, 9, None),
        ),
    ],
    ids=["window-without-commitment", "reopened-without-tick"],
)
def test_an_event_logged_before_a_field_was_added_still_reads(data: dict[str, object], event: object) -> None:
    assert event_from_dict(data) == event


def test_an_unknown_event_type_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        event_from_dict({"type": "Nope"})


@pytest.mark.parametrize(
    "terms",
    [
        english(reserve=5_000, buy_now=9_000, confirm_ms=1_000, seed=3, extra={"below_reserve": "offer_vendor"}),
        soft(cap_ms=5_000),
        rounds(rounds_beat_by_increment=True),
        crier(grace_ms=2_000, policy=[{"min_force": 500, "jumps": 2}]),
        dutch(random_steps=4, seed=9),
        dutch(steps=(2_500, 2_500, 5_000), seed=9),
        lucky(rule=LuckyWinningRule.DRAWN_PER_WINDOW, seed=1),
    ],
    ids=["english", "soft", "rounds", "crier", "dutch", "dutch-steps", "lucky"],
)
def test_terms_round_trip_through_json(terms: LotTerms) -> None:
    assert terms_from_dict(json.loads(json.dumps(terms_to_dict(terms)))) == terms


def test_terms_accept_an_increment_preset_by_name() -> None:
    terms = terms_from_dict({"format": "english", "currency": "USD", "opening_bid": 100, "increments": "ebay_usd"})
    assert terms.params.increments.step_at(150) == 25  # type: ignore[union-attr]


def test_bad_terms_are_refused_naming_every_bad_key() -> None:
    with pytest.raises(InvalidArgument) as caught:
        terms_from_dict({"format": "english", "opening_bid": "1", "increments": [[0]], "colour": "red"})
    assert {v.field for v in caught.value.violations} == {
        "lot.opening_bid",
        "lot.increments[0]",
        "lot.colour",
        "lot.currency",
    }


def test_a_tender_format_is_not_a_room_format() -> None:
    with pytest.raises(InvalidArgument):
        terms_from_dict({"format": "tender_open", "currency": "USD"})
