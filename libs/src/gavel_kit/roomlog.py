"""Reading the room's event log from another service (payment, notify, later tender's reports).

The room owns the log's layout (docs/room-service.md, docs/event-log.md); every other service reads
it through this module — the stream, the subjects to filter on, and how a stored message decodes
into lot batches — so a change of layout changes one place. Two layouts, both under
`gavel.room.lot.>` (so a consumer's filter is the same for both):

- one `LotEventBatch` per message on `gavel.room.lot.<lot_id>` (what the room writes today);
- group commit (gavel_kit.keyedlog): one `LogGroup` per partition per commit on
  `gavel.room.lot.part.<partition>`, its entries' records being the lots' `LotEventBatch`es, in log
  order (refusals the room logs for retries are entries too, and are not batches: skipped); or, in
  the writer-subject layout, one `LogBundle` of several partitions' `LogGroup`s per commit on
  `gavel.room.lot.w.<writer>` (and claims / markers on `gavel.room.lot.own.<p>` and the writer
  subjects, which carry no batches).

`lot_batches` tells them apart from the bytes alone (LogGroup's fields are numbered from 1000 and
LogBundle's from 1100; a LotEventBatch has none of them), so consumers need not look at subjects.

Room events carry no id of their own: `event_id` names one event of one lot's batch stably (the
lot, its gapless batch sequence, the event's index) — the same in both layouts — which is what
consumers deduplicate by.
"""

from __future__ import annotations

from collections.abc import Iterator

from gavel.events.v1 import keyed_log_pb2 as kl
from gavel.events.v1 import room_events_pb2 as ev
from gavel_kit.keyedlog.jetstream import LogLayout

STREAM = "ROOM_EVENTS"
SUBJECTS = "gavel.room.lot.>"
LAYOUT = LogLayout(
    stream=STREAM, prefix="gavel.room.lot", snapshot_stream="ROOM_SNAPSHOTS", snapshot_prefix="gavel.room.snap"
)


def lot_batches(data: bytes) -> list[ev.LotEventBatch]:
    """The lot batches one stored message of the room's log carries, in log order."""
    bundle = kl.LogBundle.FromString(data)
    if bundle.writer:  # the writer-subject layout: a group commit, or a claim/marker (no batches)
        groups = list(bundle.groups)
    else:
        group = kl.LogGroup.FromString(data)
        if not group.entries:  # not a group: a message of the one-batch-per-message layout
            return [ev.LotEventBatch.FromString(data)]
        groups = [group]
    return [
        ev.LotEventBatch.FromString(entry.record)
        for group in groups
        for entry in group.entries
        if entry.key_sequence > 0
    ]


def is_partition_subject(subject: str) -> bool:
    """Whether a subject of the stream holds group-committed messages (vs a single lot's)."""
    return subject.startswith((f"{LAYOUT.prefix}.part.", f"{LAYOUT.prefix}.w.", f"{LAYOUT.prefix}.own."))


def event_id(lot_id: str, lot_sequence: int, index: int) -> str:
    """A stable id for the `index`-th event of a lot's batch `lot_sequence`."""
    return f"{lot_id}:{lot_sequence}:{index}"


def events(data: bytes) -> Iterator[tuple[str, ev.LotEventBatch, ev.RoomEvent]]:
    """Every event of a stored message with its stable id and the batch it belongs to."""
    for batch in lot_batches(data):
        for index, event in enumerate(batch.events):
            yield event_id(batch.lot_id, batch.lot_sequence, index), batch, event
