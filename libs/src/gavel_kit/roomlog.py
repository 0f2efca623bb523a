"""Reading the room's event log from another service (payment, notify, later tender's reports).

The room owns the log's layout (docs/room-service.md); every other service reads it through this
module — the stream, the subjects to filter on, and how a stored message decodes into lot batches —
so a change of layout (group commit writing several lots' batches in one message) changes one
place. Room events carry no id of their own: `event_id` names one event of one lot's batch stably
(the lot, its gapless batch sequence, the event's index), which is what consumers deduplicate by.
"""

from __future__ import annotations

from collections.abc import Iterator

from gavel.events.v1 import room_events_pb2 as ev

STREAM = "ROOM_EVENTS"
SUBJECTS = "gavel.room.lot.>"


def lot_batches(data: bytes) -> list[ev.LotEventBatch]:
    """The lot batches one stored message of the room's log carries, in log order."""
    return [ev.LotEventBatch.FromString(data)]


def event_id(lot_id: str, lot_sequence: int, index: int) -> str:
    """A stable id for the `index`-th event of a lot's batch `lot_sequence`."""
    return f"{lot_id}:{lot_sequence}:{index}"


def events(data: bytes) -> Iterator[tuple[str, ev.LotEventBatch, ev.RoomEvent]]:
    """Every event of a stored message with its stable id and the batch it belongs to."""
    for batch in lot_batches(data):
        for index, event in enumerate(batch.events):
            yield event_id(batch.lot_id, batch.lot_sequence, index), batch, event
