from gavel.events.v1 import room_events_pb2 as ev
from gavel_kit import roomlog
from gavel_kit.keyedlog import wire


def stored_batch() -> bytes:
    batch = ev.LotEventBatch(lot_id="lot-1", lot_sequence=7, command_id="bid-9", command="PlaceBid")
    batch.events.add().lot_opened.by = "crier-1"
    batch.events.add().going_once.by = "crier-1"
    return batch.SerializeToString()


def test_a_stored_message_decodes_into_its_lot_batches():
    (batch,) = roomlog.lot_batches(stored_batch())
    assert (batch.lot_id, batch.lot_sequence, len(batch.events)) == ("lot-1", 7, 2)


def test_every_event_gets_a_stable_id_from_its_lot_batch_and_index():
    ids = [event_id for event_id, _, _ in roomlog.events(stored_batch())]
    assert ids == ["lot-1:7:0", "lot-1:7:1"]
    assert ids == [event_id for event_id, _, _ in roomlog.events(stored_batch())]


def grouped(*batches: ev.LotEventBatch, refusal_for: str | None = None) -> bytes:
    """A partition's group-committed message holding these batches (and a logged refusal)."""
    frames = [
        wire.entry_frame(b.lot_id, b.lot_sequence, b.command_id, "", 0, record=b.SerializeToString()) for b in batches
    ]
    if refusal_for is not None:
        frames.insert(1, wire.entry_frame(refusal_for, 0, "bid-low", "", 0, refusal=b"BID_TOO_LOW"))
    return wire.group_message(3, "room-1.1", 9, {b.lot_id: 0 for b in batches}, frames)


def test_a_group_committed_message_decodes_into_every_lot_batch_it_carries_in_log_order():
    first = ev.LotEventBatch.FromString(stored_batch())
    second = ev.LotEventBatch(lot_id="lot-2", lot_sequence=1, command_id="configure", command="Configure")
    third = ev.LotEventBatch(lot_id="lot-1", lot_sequence=8, command_id="bid-10", command="PlaceBid")
    batches = roomlog.lot_batches(grouped(first, second, third, refusal_for="lot-1"))
    assert [(b.lot_id, b.lot_sequence) for b in batches] == [("lot-1", 7), ("lot-2", 1), ("lot-1", 8)]


def test_event_ids_are_the_same_whichever_layout_carried_the_batch():
    alone = [event_id for event_id, _, _ in roomlog.events(stored_batch())]
    together = [event_id for event_id, _, _ in roomlog.events(grouped(ev.LotEventBatch.FromString(stored_batch())))]
    assert alone == together == ["lot-1:7:0", "lot-1:7:1"]


def test_group_commits_sit_under_the_lots_subjects_a_consumer_already_filters_on():
    subject = roomlog.LAYOUT.partition_subject(12)
    assert subject == "gavel.room.lot.part.12"
    assert f"{roomlog.LAYOUT.prefix}.>" == roomlog.SUBJECTS
    assert roomlog.is_partition_subject(subject)
    assert not roomlog.is_partition_subject("gavel.room.lot.lot-1")


def test_a_writers_bundle_decodes_into_the_batches_of_every_partition_it_carries_and_claims_into_none():
    first = ev.LotEventBatch.FromString(stored_batch())
    second = ev.LotEventBatch(lot_id="lot-9", lot_sequence=3, command_id="bid-1", command="PlaceBid")
    groups = [
        wire.group_message(
            p,
            "room-1",
            4,
            {b.lot_id: 0},
            [wire.entry_frame(b.lot_id, b.lot_sequence, "", "", 0, record=b.SerializeToString())],
        )
        for p, b in ((3, first), (5, second))
    ]
    bundle = wire.bundle_message("room-1-ab12", groups)
    assert [(b.lot_id, b.lot_sequence) for b in roomlog.lot_batches(bundle)] == [("lot-1", 7), ("lot-9", 3)]
    assert roomlog.lot_batches(wire.claim_message("room-2-cd34", 0)) == []
    assert roomlog.lot_batches(wire.marker_message("room-2-cd34", 5)) == []
    assert roomlog.is_partition_subject(roomlog.LAYOUT.writer_subject("room-1-ab12"))
