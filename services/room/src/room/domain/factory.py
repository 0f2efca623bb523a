"""Which engine runs a lot: `engine_for(terms)` and `initial_state(lot_id, terms)`."""

from __future__ import annotations

from typing import Any

from gavel_core.errors import FailedPrecondition
from gavel_core.formats import EnglishClose, EnglishParams, Format, LotTerms
from room.domain.crier import CrierEngine
from room.domain.dutch import DutchEngine
from room.domain.engine import Engine
from room.domain.english import EnglishEngine
from room.domain.lucky import LuckyEngine
from room.domain.model import LotState
from room.domain.rounds import RoundsEngine

AnyEngine = Engine[Any]


def engine_for(terms: LotTerms, *, recorded: bool = False) -> AnyEngine:
    """The engine for a live lot's terms (validated here: InvalidArgument lists every bad field).

    English lots pick their engine by `close`: HARD/SOFT proxy bidding, ROUNDS, or CRIER.
    Tender formats are not run by the room: FailedPrecondition FORMAT_NOT_LIVE. `recorded`: the
    terms come from a lot's log, so rules since retired (the seller's lucky option) are still run,
    to rebuild what was recorded under them; a lot being configured never gets them.
    """
    terms.validate(allow_retired=recorded)
    if terms.format is Format.ENGLISH:
        assert isinstance(terms.params, EnglishParams)
        close = terms.params.close
        if close is EnglishClose.CRIER:
            return CrierEngine(terms)
        if close is EnglishClose.ROUNDS:
            return RoundsEngine(terms)
        return EnglishEngine(terms)
    if terms.format is Format.DUTCH:
        return DutchEngine(terms)
    if terms.format is Format.LUCKY:
        return LuckyEngine(terms)
    raise FailedPrecondition(
        "FORMAT_NOT_LIVE", f"{terms.format.value} lots are tenders, not run in a room", {"format": terms.format.value}
    )


def initial_state(lot_id: str, terms: LotTerms, draw_secret: bytes = b"") -> LotState:
    """A lot before it opens (phase SCHEDULED); lucky lots need the room's `draw_secret`."""
    state: LotState = engine_for(terms).initial_state(lot_id, draw_secret)
    return state
