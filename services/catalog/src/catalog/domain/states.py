"""The life cycle shared by sales and lots, and the errors for moves it does not allow.

    draft ──publish──▶ scheduled ──start──▶ live ──close──▶ closed
      │                    │                  │
      └──────cancel────────┴──▶ cancelled ◀───┘ (lots only: withdrawn while live)

A refused move is FailedPrecondition with reason INVALID_STATE; its metadata names the resource,
its id, its current state and the action, so a client can explain or refresh.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from gavel_core.errors import FailedPrecondition

INVALID_STATE = "INVALID_STATE"


class State(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    LIVE = "live"
    CLOSED = "closed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (State.CLOSED, State.CANCELLED)


SALE_TRANSITIONS: dict[State, frozenset[State]] = {
    State.DRAFT: frozenset({State.SCHEDULED, State.CANCELLED}),
    State.SCHEDULED: frozenset({State.LIVE, State.CANCELLED}),
    # A live sale is not cancelled: its rooms are running; the crier withdraws lots one by one.
    State.LIVE: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
    State.CANCELLED: frozenset(),
}

LOT_TRANSITIONS: dict[State, frozenset[State]] = {
    State.DRAFT: frozenset({State.SCHEDULED, State.CANCELLED}),
    State.SCHEDULED: frozenset({State.LIVE, State.CANCELLED}),
    State.LIVE: frozenset({State.CLOSED, State.CANCELLED}),
    State.CLOSED: frozenset(),
    State.CANCELLED: frozenset(),
}


def invalid_state(resource: str, resource_id: str, current: StrEnum, action: str) -> FailedPrecondition:
    """INVALID_STATE for any resource with a state enum (sales, lots, registrations, reservations)."""
    return FailedPrecondition(
        INVALID_STATE,
        f"cannot {action} {resource} {resource_id!r}: it is {current.value}",
        {"resource": resource, "resource_id": resource_id, "current_state": current.value, "action": action},
    )


def require_state(resource: str, resource_id: str, current: State, allowed: Collection[State], action: str) -> None:
    if current not in allowed:
        raise invalid_state(resource, resource_id, current, action)


def transition(
    table: dict[State, frozenset[State]], resource: str, resource_id: str, current: State, target: State, action: str
) -> State:
    """Return `target` if the table allows current -> target, else raise INVALID_STATE."""
    if target not in table[current]:
        raise invalid_state(resource, resource_id, current, action)
    return target
