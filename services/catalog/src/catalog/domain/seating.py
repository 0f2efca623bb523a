"""Seating: which room of a lot group a bidder sits in, and who may reserve or enter at all.

The rule: the k-th bidder (from 0) to be seated in a group — by reserving or by entering,
whichever they do first — sits in room k mod N. Reservation order is therefore seat order: the
first reserver gets room 0, the second room 1, and so on, spreading bidders evenly over the N
identical lots. A seat never changes: re-entering, or cancelling and re-reserving, returns the
same room, so nobody can shop for a quieter room. Bidders see only their own room (lot id and
index), never their ordinal or how full the rooms are.

The eligibility checks return the refusal instead of raising it, so the schedule can show the
very same rules as flags ("can reserve", "can enter") without duplicating them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from catalog.domain.access import own_lot_error
from catalog.domain.lots import LotGroup
from catalog.domain.registrations import Registration
from catalog.domain.states import State, invalid_state
from gavel_core.auth import Principal, Role
from gavel_core.errors import FailedPrecondition, GavelError, PermissionDenied

NOT_REGISTERED = "NOT_REGISTERED"
TOO_LATE = "TOO_LATE"
LOT_NOT_OPEN = "LOT_NOT_OPEN"

# A room opens this long before its lot's estimated start, so bidders can settle in.
ROOM_OPENS_BEFORE = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Seat:
    group_id: str
    bidder_id: str
    sale_id: str
    lot_id: str
    room_index: int
    ordinal: int  # the bidder's place in the group's seating order; never shown to bidders
    assigned_at: datetime


def assign_seat(group: LotGroup, bidder_id: str, ordinal: int, now: datetime) -> Seat:
    """Seat the `ordinal`-th bidder of the group round-robin: room `ordinal mod N`."""
    if ordinal < 0:
        raise ValueError("a seating ordinal counts from 0")
    room = group.rooms[ordinal % len(group.rooms)]
    return Seat(group.id, bidder_id, room.sale_id, room.id, room.room_index, ordinal, now)


def _bidder_blocker(
    principal: Principal, group: LotGroup, registration: Registration | None, registration_required: bool
) -> GavelError | None:
    if not principal.has(Role.BIDDER):
        return PermissionDenied("only bidders reserve lots and enter rooms")
    if principal.subject == group.lead.seller_id:
        return own_lot_error("lot", group.id)
    if registration_required and (registration is None or not registration.is_approved):
        status = registration.status.value if registration else "none"
        return FailedPrecondition(
            NOT_REGISTERED,
            f"register for sale {group.lead.sale_id!r} and be approved first",
            {"sale_id": group.lead.sale_id, "registration_status": status},
        )
    return None


def reservation_blocker(
    principal: Principal,
    group: LotGroup,
    registration: Registration | None,
    now: datetime,
    registration_required: bool = True,
) -> GavelError | None:
    """Why the caller may not reserve the group now, or None.

    A lot group can be reserved while it is scheduled and has not reached its estimated start,
    by an approved bidder of the sale who is not its seller.
    """
    if group.state is not State.SCHEDULED:
        return invalid_state("lot", group.id, group.state, "reserve")
    start = group.lead.estimated_start
    if start is not None and now >= start:
        return FailedPrecondition(
            TOO_LATE, f"lot {group.id!r} has started; enter its room instead", {"lot_id": group.id}
        )
    return _bidder_blocker(principal, group, registration, registration_required)


def room_opens_at(group: LotGroup) -> datetime | None:
    start = group.lead.estimated_start
    return None if start is None else start - ROOM_OPENS_BEFORE


def entry_blocker(
    principal: Principal,
    group: LotGroup,
    registration: Registration | None,
    now: datetime,
    registration_required: bool = True,
) -> GavelError | None:
    """Why the caller may not enter the group's rooms now, or None.

    Only live formats have rooms (tenders are bid through the tender service). Rooms open
    ROOM_OPENS_BEFORE the estimated start and stay open while any room is scheduled or live;
    an approved bidder of the sale who is not its seller may enter.
    """
    if not group.lead.is_live_format:
        return FailedPrecondition(
            LOT_NOT_OPEN, f"lot {group.id!r} is a timed tender lot and has no room", {"lot_id": group.id}
        )
    if group.state not in (State.SCHEDULED, State.LIVE):
        return invalid_state("lot", group.id, group.state, "enter the room of")
    opens_at = room_opens_at(group)
    if group.state is State.SCHEDULED and (opens_at is None or now < opens_at):
        metadata = {"lot_id": group.id}
        if opens_at is not None:
            metadata["opens_at"] = opens_at.isoformat()
        return FailedPrecondition(LOT_NOT_OPEN, f"the room of lot {group.id!r} is not open yet", metadata)
    return _bidder_blocker(principal, group, registration, registration_required)
