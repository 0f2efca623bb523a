"""Reservations: a bidder's "remind me, and keep me a seat" for a lot group."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from catalog.domain.states import invalid_state


class ReservationState(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class Reservation:
    """At most one active reservation per (group, bidder); a cancelled one may be followed by a new one."""

    id: str
    group_id: str
    sale_id: str
    bidder_id: str
    state: ReservationState
    created_at: datetime
    estimated_start: datetime | None
    cancelled_at: datetime | None = None

    def cancel(self, now: datetime) -> None:
        if self.state is not ReservationState.ACTIVE:
            raise invalid_state("reservation", self.id, self.state, "cancel")
        self.state = ReservationState.CANCELLED
        self.cancelled_at = now
