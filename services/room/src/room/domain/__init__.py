"""The room's pure auction engines: one deterministic, replayable state machine per live format.

    engine = engine_for(terms)                 # EnglishEngine | RoundsEngine | CrierEngine | DutchEngine | LuckyEngine
    state = engine.initial_state(lot_id)
    events = engine.decide(state, PlaceBid("b-1", "alice", 17_500), now_ms)   # or a typed rejection
    for event in events:
        engine.apply(state, event)
    state_hash(state), next_deadline_ms(state)

No I/O, clock or randomness here (import-linter enforces it): time is `now_ms`, randomness is the
lot's seed through `prng`, or (the lucky option, which the seller must not be able to predict) the
room's own secret passed to `initial_state`, through `draws`. See docs/auction-formats.md for the
rules, their sources in the specification and the choices made.
"""

from room.domain.codec import event_from_dict, event_to_dict, terms_from_dict, terms_to_dict
from room.domain.commands import (
    BuyNow,
    CallGoingOnce,
    CallGoingTwice,
    Command,
    ConfirmWin,
    DeclineWin,
    FloorBid,
    Hammer,
    OpenLot,
    PassLot,
    Pause,
    PickOption,
    PlaceBid,
    Reopen,
    Resume,
    SetAsking,
    SetIncrement,
    Tick,
    UndoLastBid,
    VendorAccept,
    VendorDecline,
)
from room.domain.crier import DEFAULT_PADDLE_POLICY, CrierEngine, PaddlePolicy, PaddleRule
from room.domain.dutch import DutchEngine
from room.domain.engine import Engine, canonical_state, next_deadline_ms, state_hash, summarize
from room.domain.english import EnglishEngine
from room.domain.events import ALL_EVENTS, Event
from room.domain.factory import AnyEngine, engine_for, initial_state
from room.domain.lucky import LuckyEngine
from room.domain.model import (
    GOOD_STANDING,
    Award,
    BidderStanding,
    CrierState,
    DutchState,
    EnglishState,
    LotState,
    LuckyState,
    Phase,
    RoundsState,
    Source,
    UnsoldReason,
)
from room.domain.rounds import RoundsEngine

__all__ = [
    "ALL_EVENTS",
    "DEFAULT_PADDLE_POLICY",
    "GOOD_STANDING",
    "AnyEngine",
    "Award",
    "BidderStanding",
    "BuyNow",
    "CallGoingOnce",
    "CallGoingTwice",
    "Command",
    "ConfirmWin",
    "CrierEngine",
    "CrierState",
    "DeclineWin",
    "DutchEngine",
    "DutchState",
    "Engine",
    "EnglishEngine",
    "EnglishState",
    "Event",
    "FloorBid",
    "Hammer",
    "LotState",
    "LuckyEngine",
    "LuckyState",
    "OpenLot",
    "PaddlePolicy",
    "PaddleRule",
    "PassLot",
    "Pause",
    "Phase",
    "PickOption",
    "PlaceBid",
    "Reopen",
    "Resume",
    "RoundsEngine",
    "RoundsState",
    "SetAsking",
    "SetIncrement",
    "Source",
    "Tick",
    "UndoLastBid",
    "UnsoldReason",
    "VendorAccept",
    "VendorDecline",
    "canonical_state",
    "engine_for",
    "event_from_dict",
    "event_to_dict",
    "initial_state",
    "next_deadline_ms",
    "state_hash",
    "summarize",
    "terms_from_dict",
    "terms_to_dict",
]
