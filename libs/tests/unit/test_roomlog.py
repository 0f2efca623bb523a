from gavel.events.v1 import room_events_pb2 as ev
from gavel_kit import roomlog


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
