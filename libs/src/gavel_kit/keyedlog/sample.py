"""A small engine for the keyed log's own tests and `gavel bench keyedlog`: an ascending auction
per key, a bid must beat the standing price. It exercises everything a real engine does (mutable
state, accepted records, remembered refusals, no-op answers) at a fraction of the cost, so a
benchmark measures the log rather than an engine.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from gavel_core.errors import FailedPrecondition
from gavel_kit.keyedlog.engine import Accept, Refuse, Reply


@dataclass(slots=True)
class Book:
    price: int = 0
    leader: str | None = None
    bids: int = 0
    bidders: dict[str, int] = field(default_factory=dict)  # each bidder's highest bid


@dataclass(frozen=True, slots=True)
class Bid:
    bidder: str
    amount: int


@dataclass(frozen=True, slots=True)
class Peek:
    """A no-op: answers the standing price."""


@dataclass(frozen=True, slots=True)
class Placed:
    """The record of an accepted bid."""

    bidder: str
    amount: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class Standing:
    """The answer: where the key stands after the command."""

    key_sequence: int
    price: int
    leader: str | None


class BidBookEngine:
    """KeyedEngine[Book, Bid | Peek, Placed, Standing]."""

    def initial_state(self, key: str) -> Book:
        return Book()

    def decide(
        self, key: str, state: Book, command: Bid | Peek, now_ms: int, key_sequence: int
    ) -> Accept[Placed] | Refuse | Reply[Standing]:
        if isinstance(command, Peek):
            return Reply(Standing(key_sequence - 1, state.price, state.leader))
        if command.amount <= state.price:
            return Refuse(
                FailedPrecondition(
                    "BID_TOO_LOW", f"a bid must be above {state.price}", {"min_amount_minor": str(state.price + 1)}
                )
            )
        return Accept(Placed(command.bidder, command.amount, now_ms))

    def apply(self, key: str, state: Book, record: Placed) -> Book:
        state.price = record.amount
        state.leader = record.bidder
        state.bids += 1
        state.bidders[record.bidder] = record.amount
        return state

    def answer(self, key: str, state: Book, record: Placed, key_sequence: int) -> Standing:
        return Standing(key_sequence, state.price, state.leader)

    def encode_record(self, key: str, record: Placed, state: Book) -> bytes:
        return f"{record.bidder}\x1f{record.amount}\x1f{record.at_ms}".encode()

    def decode_record(self, key: str, data: bytes) -> Placed:
        bidder, amount, at_ms = data.decode().split("\x1f")
        return Placed(bidder, int(amount), int(at_ms))

    def encode_state(self, key: str, state: Book) -> bytes:
        return json.dumps(
            {"price": state.price, "leader": state.leader, "bids": state.bids, "bidders": state.bidders},
            separators=(",", ":"),
        ).encode()

    def decode_state(self, key: str, data: bytes) -> Book:
        raw = json.loads(data)
        return Book(raw["price"], raw["leader"], raw["bids"], dict(raw["bidders"]))

    def state_hash(self, state: Book) -> str:
        canonical = json.dumps(
            [state.price, state.leader, state.bids, sorted(state.bidders.items())], separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def encode_answer(self, answer: Standing) -> bytes:
        return json.dumps([answer.key_sequence, answer.price, answer.leader]).encode()

    def decode_answer(self, data: bytes) -> Standing:
        key_sequence, price, leader = json.loads(data)
        return Standing(key_sequence, price, leader)

    def encode_refusal(self, error: Exception) -> bytes:
        if isinstance(error, FailedPrecondition):
            return json.dumps([error.reason, error.message, error.metadata]).encode()
        return json.dumps(["", str(error), {}]).encode()

    def decode_refusal(self, data: bytes) -> Exception:
        reason, message, metadata = json.loads(data)
        return FailedPrecondition(reason, message, metadata)
