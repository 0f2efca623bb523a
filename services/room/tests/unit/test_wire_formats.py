"""The log's wire format (every engine event round-trips through gavel.events.v1.RoomEvent), the
catalog's Lot as terms, what watchers see, and the payment service's eligibility events."""

from __future__ import annotations

from dataclasses import fields

import pytest
from room_support import DRAW_SECRET, Lot, crier, dutch, english, lucky, rounds, soft

from gavel.common.v1.money_pb2 import Money
from gavel.events.v1 import eligibility_events_pb2 as eev
from gavel.events.v1 import room_events_pb2 as ev
from gavel_core.formats import LuckyWinningRule
from room.adapters.codec import (
    decode_batch,
    encode_batch,
    lot_from_message,
    lot_message,
    public_batch,
    watch_response,
)
from room.adapters.consumers import eligibility_event
from room.app.eligibility import BidderBanned, BidderUnbanned, BidLimitSet, EligibilityBook
from room.app.model import Batch, ClosingSoon, LotConfigured, LotInfo, LotSummary
from room.app.views import INTERNAL_EVENTS, SECRET_FIELDS
from room.domain import ALL_EVENTS, PickOption
from room.domain.draws import verify

SAMPLES = {"str": "alice", "int": 4_200, "bool": True, "str | None": "bob", "int | None": 1_700_000_000_123}


def sample(event_type, *, nones: bool = False):
    values = {}
    for f in fields(event_type):
        if f.name == "lot_id":
            values[f.name] = "lot-1"
        elif f.name == "at_ms":
            values[f.name] = 1_700_000_000_500
        elif nones and "None" in str(f.type):
            values[f.name] = None
        else:
            values[f.name] = SAMPLES[str(f.type)]
    return event_type(**values)


def batch(*events) -> Batch:
    return Batch(
        "lot-1",
        7,
        "cmd-1",
        "PlaceBid",
        "alice",
        "fp",
        1_700_000_000_999,
        events,
        LotSummary("open", 5, "alice", 9),
        "EUR",
    )


@pytest.mark.parametrize("event_type", ALL_EVENTS, ids=lambda t: t.__name__)
@pytest.mark.parametrize("nones", [False, True], ids=["values", "nones"])
def test_every_engine_event_round_trips_through_the_log_format(event_type, nones):
    event = sample(event_type, nones=nones)
    assert decode_batch(encode_batch(batch(event))).events == (event,)


@pytest.mark.parametrize(
    "terms",
    [
        english(reserve=3_000, buy_now=9_000),
        soft(),
        rounds(),
        rounds(rounds_beat_by_increment=True),
        crier(grace_ms=500),
        dutch(),
        dutch(steps=(1_000, 4_000, 5_000)),
        lucky(),
        lucky(rule=LuckyWinningRule.DRAWN_PER_WINDOW),
    ],
)
def test_terms_round_trip_through_the_catalogs_lot(terms):
    terms = type(terms)(**{**{f.name: getattr(terms, f.name) for f in fields(terms)}, "seed": 42})
    info = LotInfo("lot-1", "sale-1", "seller-1", "group-1", 2, 3, "product-1")
    assert lot_from_message(lot_message(info, terms)) == (info, terms)


def test_the_first_batch_and_closing_soon_round_trip():
    info = LotInfo("lot-1", "sale-1", "seller-1")
    configured = LotConfigured("lot-1", 1_000, info, english())
    notice = ClosingSoon("lot-1", 2_000, 62_000)
    decoded = decode_batch(encode_batch(batch(configured, notice)))
    assert decoded.events == (configured, notice)
    assert decoded.after == LotSummary("open", 5, "alice", 9)
    assert decoded.currency == "EUR"


def test_a_lucky_lots_draw_secret_stays_in_its_first_batch():
    configured = LotConfigured("lot-1", 1_000, LotInfo("lot-1", "sale-1", "seller-1"), lucky(), DRAW_SECRET)
    message = ev.LotEventBatch.FromString(encode_batch(batch(configured)))
    assert message.events[0].lot_configured.draw_secret == DRAW_SECRET
    assert decode_batch(message.SerializeToString()).events == (configured,)
    assert watch_response(message).events == []  # LotConfigured is internal


def test_watchers_see_the_lucky_commitment_and_the_reveal_but_never_the_option_before_the_close():
    lot = Lot(lucky())
    lot.open(0)
    lot.do(PickOption("p1", "bob", lot.state.winning_option), 5)  # type: ignore[attr-defined]
    shown = watch_response(ev.LotEventBatch.FromString(encode_batch(batch(*lot.events)))).events
    window = next(e.lucky_window_opened for e in shown if e.WhichOneof("event") == "lucky_window_opened")
    revealed = next(e.lucky_draw_revealed for e in shown if e.WhichOneof("event") == "lucky_draw_revealed")
    assert not window.HasField("winning_option")
    assert window.commitment == revealed.commitment != ""
    assert verify("lot-1", revealed.draw, revealed.option, revealed.nonce, window.commitment)


def test_watchers_never_see_internal_events_or_secrets():
    events = [sample(t) for t in ALL_EVENTS] + [LotConfigured("lot-1", 1, LotInfo("lot-1", "s", "v"), lucky())]
    message = ev.LotEventBatch.FromString(encode_batch(batch(*events)))
    shown = watch_response(message)
    names = {e.WhichOneof("event") for e in shown.events}
    assert "lot_configured" not in names
    assert "penalty_assessed" not in names
    assert len(shown.events) == len(ALL_EVENTS) - len(INTERNAL_EVENTS) + 1
    for event in shown.events:
        which = event.WhichOneof("event")
        inner = getattr(event, which)
        name = type(inner).DESCRIPTOR.name
        for secret in SECRET_FIELDS.get(name, ()):
            assert not inner.HasField(secret), f"{name}.{secret} leaked"
    bid = next(e.bid_accepted for e in shown.events if e.WhichOneof("event") == "bid_accepted")
    assert bid.price.amount_minor == 4_200
    assert bid.leader == "alice"
    assert message.events[1].bid_accepted.HasField("amount")  # the log itself keeps it


def test_an_announcement_carries_only_the_public_projection_and_watchers_see_the_same():
    events = [sample(t) for t in ALL_EVENTS] + [LotConfigured("lot-1", 1, LotInfo("lot-1", "s", "v"), lucky())]
    stored = encode_batch(batch(*events))
    announced = ev.LotEventBatch.FromString(public_batch(stored))
    assert (announced.command_id, announced.actor_id, announced.request_fingerprint) == ("", "", "")
    assert {e.WhichOneof("event") for e in announced.events}.isdisjoint({"lot_configured", "penalty_assessed"})
    assert b"secret-seed" not in public_batch(stored)
    for event in announced.events:
        inner = getattr(event, event.WhichOneof("event"))
        for secret in SECRET_FIELDS.get(type(inner).DESCRIPTOR.name, ()):
            assert not inner.HasField(secret)
    assert watch_response(announced) == watch_response(ev.LotEventBatch.FromString(stored))


def test_the_public_names_bidders_by_a_per_sale_pseudonym_stable_in_a_sale_unlinkable_across_sales():
    from room.app.views import Pseudonyms

    names = Pseudonyms(b"k" * 32)
    assert names.alias("sale-1", "alice") == names.alias("sale-1", "alice") != names.alias("sale-2", "alice")
    assert names.alias("sale-1", "alice") != names.alias("sale-1", "bob")
    assert "alice" not in names.alias("sale-1", "alice")
    assert Pseudonyms(b"j" * 32).alias("sale-1", "alice") != names.alias("sale-1", "alice")  # keyed
    stored = encode_batch(batch(*[sample(t) for t in ALL_EVENTS]))
    shown = ev.LotEventBatch.FromString(public_batch(stored, lambda who: names.alias("sale-1", who)))
    from room.app.views import ACCOUNT_FIELDS

    for event in shown.events:  # no account id in any field that names one
        inner = getattr(event, event.WhichOneof("event"))
        for name in ACCOUNT_FIELDS:
            if name in inner.DESCRIPTOR.fields_by_name and getattr(inner, name):
                assert getattr(inner, name).startswith("bidder-"), (event, name)
    assert shown.after.leader_id.startswith("bidder-")
    bid = next(e.bid_accepted for e in shown.events if e.WhichOneof("event") == "bid_accepted")
    assert bid.bidder == bid.leader == names.alias("sale-1", "alice")


def test_eligibility_events_from_their_subjects():
    banned = eev.BidderBanned(bidder_id="b1", sale_id="s1").SerializeToString()
    limit = eev.BidLimitSet(bidder_id="b1", limit=Money(amount_minor=500, currency="USD")).SerializeToString()
    cleared = eev.BidLimitSet(bidder_id="b1").SerializeToString()
    assert eligibility_event("gavel.payment.bidder.banned.b1", banned) == BidderBanned("b1", "s1")
    assert eligibility_event("gavel.payment.bidder.bid_limit_set.b1", limit) == BidLimitSet("b1", "", 500, "USD")
    assert eligibility_event("gavel.payment.bidder.bid_limit_set.b1", cleared) == BidLimitSet("b1", "", None)
    assert eligibility_event("gavel.payment.bidder.something_else.b1", b"") is None


def test_bans_and_limits_by_scope():
    book = EligibilityBook()
    book.apply(BidderBanned("b1", "sale-1"))
    assert book.is_banned("b1", "sale-1")
    assert not book.is_banned("b1", "sale-2")
    book.apply(BidderBanned("b1"))
    assert book.is_banned("b1", "sale-2")
    book.apply(BidderUnbanned("b1"))
    assert book.is_banned("b1", "sale-1")
    assert not book.is_banned("b1", "sale-2")
    book.apply(BidderUnbanned("b1", "sale-1"))
    assert not book.is_banned("b1", "sale-1")
    book.apply(BidLimitSet("b2", "", 1_000, "USD"))
    book.apply(BidLimitSet("b2", "sale-1", 5_000, "USD"))
    assert book.bid_limit("b2", "sale-1", "USD") == 5_000
    assert book.bid_limit("b2", "sale-2", "USD") == 1_000
    assert book.bid_limit("b2", "sale-2", "EUR") is None
    book.apply(BidLimitSet("b2", "sale-1", None))
    assert book.bid_limit("b2", "sale-1", "USD") == 1_000
