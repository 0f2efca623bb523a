"""Is a bidder seated in this room? From the catalog's SeatAssigned events, else its GetSeat.

Only lots of multi-room products ask. A lot's seats are read from its subject
(`gavel.catalog.seat_assigned.<lot_id>` on CATALOG) the first time a bidder is not found, and
after that only what was added since; seats are never taken back, so a seated bidder stays in the
cache. A bidder still not found is checked with the catalog (GetSeat: the events may lag behind),
and a negative answer is remembered briefly so a bidder who is not seated cannot make every bid
cost a catalog call.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import nats.errors
from nats.aio.client import Client

from gavel.events.v1 import catalog_events_pb2 as cev
from gavel_kit.logging import get_logger
from gavel_kit.streamread import read_subject
from room.adapters.catalog_client import CatalogClient
from room.app.model import LotInfo
from room.app.ports import Clock

log = get_logger("room.seating")

CATALOG_STREAM = "CATALOG"
REFRESH_INTERVAL_MS = 200
NEGATIVE_TTL_MS = 2_000


def seat_subject(lot_id: str) -> str:
    return f"gavel.catalog.seat_assigned.{lot_id}"


@dataclass(slots=True)
class _LotSeats:
    bidders: set[str] = field(default_factory=set)
    last_sequence: int = 0
    refreshed_ms: int = -REFRESH_INTERVAL_MS
    refreshing: asyncio.Future[None] | None = None


class SeatBook:
    def __init__(self, nc: Client, catalog: CatalogClient | None, clock: Clock) -> None:
        self._nc = nc
        self._catalog = catalog
        self._clock = clock
        self._lots: dict[str, _LotSeats] = {}
        self._not_seated: dict[tuple[str, str], int] = {}

    async def is_seated(self, lot: LotInfo, bidder_id: str) -> bool:
        seats = self._lots.get(lot.lot_id)
        if seats is None:
            seats = self._lots[lot.lot_id] = _LotSeats()
        if bidder_id in seats.bidders:
            return True
        key = (lot.lot_id, bidder_id)
        refused_at = self._not_seated.get(key)
        now = self._clock()
        if refused_at is not None and now - refused_at < NEGATIVE_TTL_MS:
            return False
        if now - seats.refreshed_ms >= REFRESH_INTERVAL_MS:
            await self._refresh(lot.lot_id, seats)
        if bidder_id in seats.bidders:
            return True
        if self._catalog is not None and await self._catalog.is_seated(lot.lot_id, bidder_id):
            seats.bidders.add(bidder_id)
            return True
        self._not_seated[key] = self._clock()
        if len(self._not_seated) > 100_000:
            self._not_seated.clear()
        return False

    async def _refresh(self, lot_id: str, seats: _LotSeats) -> None:
        """Read the lot's new SeatAssigned events (concurrent callers share one read)."""
        if seats.refreshing is not None:
            await asyncio.shield(seats.refreshing)
            return
        seats.refreshing = asyncio.get_running_loop().create_future()
        try:
            messages = await read_subject(
                self._nc, CATALOG_STREAM, seat_subject(lot_id), after_sequence=seats.last_sequence
            )
            for message in messages:
                seat = cev.SeatAssigned.FromString(message.data)
                if seat.lot_id == lot_id:
                    seats.bidders.add(seat.bidder_id)
                seats.last_sequence = message.sequence
        except (nats.errors.Error, TimeoutError, RuntimeError):
            log.warning("reading seats failed", lot_id=lot_id, exc_info=True)
        finally:
            seats.refreshed_ms = self._clock()
            seats.refreshing.set_result(None)
            seats.refreshing = None
