"""What may be shown of a lot, and to whom.

The log holds everything (it is how a lot is rebuilt); watchers and GetLotState get a projection.
`INTERNAL_EVENTS` are never sent to watchers; `SECRET_FIELDS` are cleared from the events that
are: a proxy bidder's maximum, the lucky winning option, which option a bidder picked and whether
it was right (a wrong pick would tell everyone else what to avoid), and the floor's device
readings and paddle discounts (commercial terms between the house and the bidder).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from gavel_core.formats import EnglishParams, LuckyParams
from room.app.model import LotInfo, LotSummary, LotView
from room.domain import (
    AnyEngine,
    CrierEngine,
    CrierState,
    DutchEngine,
    EnglishEngine,
    LotState,
    LuckyState,
    Phase,
    RoundsEngine,
    RoundsState,
)

INTERNAL_EVENTS = frozenset({"LotConfigured", "PenaltyAssessed"})
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "BidAccepted": ("amount",),
    "FloorBidAccepted": ("device_id", "force", "press_ms", "discount_bp"),
    "LuckyWindowOpened": ("winning_option",),
    "OptionPicked": ("option", "correct"),
    "OfferedToVendor": ("discount_bp",),
    "ProvisionalWinnerDeclared": ("discount_bp",),
    "LotSold": ("discount_bp",),
}
TERMINAL_PHASES = frozenset({Phase.SOLD, Phase.UNSOLD})
# Event fields naming an account: watchers see a per-sale pseudonym instead.
ACCOUNT_FIELDS = ("bidder", "leader", "previous_leader", "buyer", "by")
NOT_ACCOUNTS = frozenset({"", "room", "catalog"})  # the room's own actors are not people


class Pseudonyms:
    """Per-sale pseudonyms for bidders in what the public sees: stable within a sale (the same
    bidder is the same name in every lot and batch of the sale), unlinkable across sales (an
    HMAC of sale and account under a deployment secret nobody outside the room holds)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._cache: dict[tuple[str, str], str] = {}

    def alias(self, sale_id: str, subject: str) -> str:
        if subject in NOT_ACCOUNTS:
            return subject
        key = (sale_id, subject)
        found = self._cache.get(key)
        if found is None:
            digest = hmac.new(self._secret, f"{sale_id}\0{subject}".encode(), hashlib.sha256).digest()
            found = "bidder-" + base64.b32encode(digest[:8]).decode("ascii").rstrip("=").lower()
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key] = found
        return found


def summary(state: LotState) -> LotSummary:
    return LotSummary(state.phase.value, state.price, state.leader, state.deadline_ms)


def min_bid(engine: AnyEngine, state: LotState) -> int | None:
    """The lowest bid a new bidder may place right now, where the format has a single answer."""
    if state.phase is not Phase.OPEN:
        return None
    if isinstance(engine, EnglishEngine):
        return engine.opening if state.leader is None else state.price + engine.step(state.price)
    if isinstance(engine, RoundsEngine) and isinstance(state, RoundsState):
        return engine.minimum_bid(state)
    if isinstance(state, CrierState):
        return state.asking
    if isinstance(engine, DutchEngine):
        return state.price
    return None


def lot_view(info: LotInfo, engine: AnyEngine, state: LotState, lot_sequence: int) -> LotView:
    terms = engine.terms
    params = terms.params
    result = state.result if state.phase is Phase.SOLD else None
    if isinstance(state, RoundsState):
        round_ = state.round
    elif isinstance(state, LuckyState):
        round_ = state.window
    else:
        round_ = 0
    return LotView(
        lot_id=state.lot_id,
        sale_id=info.sale_id,
        currency=terms.currency,
        format=terms.format.value,
        close=params.close.value if isinstance(params, EnglishParams) else "",
        phase=state.phase.value,
        lot_sequence=lot_sequence,
        price=state.price,
        leader=state.leader,
        deadline_ms=state.deadline_ms,
        asking=state.asking if isinstance(engine, CrierEngine) and isinstance(state, CrierState) else None,
        min_bid=min_bid(engine, state),
        round=round_,
        options=params.options if isinstance(params, LuckyParams) else (),
        buyer=result.bidder if result is not None else None,
        hammer_price=result.price if result is not None else None,
        unsold_reason=state.unsold_reason,
        room_index=info.room_index,
        room_count=info.room_count,
    )
