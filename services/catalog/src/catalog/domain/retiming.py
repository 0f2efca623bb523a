"""Re-timing a live session when its running order slips (a lot starts later than estimated).

Lots of a session run one after another, so a late start pushes every later group back — but only
as far as it must: a group whose estimated start is after the late one's expected end (a break
between time slots absorbs the delay) keeps its time. Groups are never moved earlier. Notify
re-times the reservers' reminders from the `LotsRetimed` event this produces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from catalog.domain.lots import Lot, groups_of
from catalog.domain.sales import SLOT_MINUTES
from catalog.domain.states import State

MIN_SLIP = timedelta(minutes=1)  # a scheduler round's few seconds of lateness is not a slip


@dataclass(frozen=True, slots=True)
class Retimed:
    group_id: str
    lot_ids: tuple[str, ...]
    previous_start: datetime
    estimated_start: datetime


def _ceil_minute(instant: datetime) -> datetime:
    floored = instant.replace(second=0, microsecond=0)
    return floored if floored == instant else floored + timedelta(minutes=1)


def retime_after(started: Lot, started_at: datetime, sale_lots: Sequence[Lot], now: datetime) -> list[Retimed]:
    """Move the still-scheduled groups after `started` back if its start at `started_at` slipped.

    Changes the lots' `estimated_start` in place and returns what moved, in running order.
    """
    if started.estimated_start is None or started_at - started.estimated_start < MIN_SLIP:
        return []
    cursor = _ceil_minute(started_at + timedelta(minutes=SLOT_MINUTES * max(started.duration_slots, 1)))
    moved: list[Retimed] = []
    for group in groups_of(sale_lots):
        lead = group.lead
        if lead.position <= started.position or lead.estimated_start is None:
            continue
        if any(lot.state is not State.SCHEDULED for lot in group.rooms):
            continue
        previous = lead.estimated_start
        start = max(previous, cursor)
        cursor = start + timedelta(minutes=SLOT_MINUTES * max(lead.duration_slots, 1))
        if start == previous:
            continue
        for lot in group.rooms:
            lot.estimated_start = start
            lot.updated_at = now
        moved.append(Retimed(group.id, tuple(lot.id for lot in group.rooms), previous, start))
    return moved
