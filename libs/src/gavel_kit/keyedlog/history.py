"""Reading one key's history back from a keyed log, and replaying it.

A key's entries live in its partition's messages, among other keys'. They are found without
scanning the partition: the key's snapshot names the message of its last entry it includes
(`position`), the partition's tail after its checkpoint (bounded by the checkpoint interval) holds
anything newer, and every message links each of its keys to the previous message with an entry
of that key. So a history walk reads the tail once and then only messages that hold the key.
"""

from __future__ import annotations

from typing import Any

from gavel.events.v1.keyed_log_pb2 import LogGroup
from gavel_kit.keyedlog import wire
from gavel_kit.keyedlog.engine import KeyedEngine
from gavel_kit.keyedlog.machine import LogCorrupt
from gavel_kit.keyedlog.store import LogStore


async def key_history(store: LogStore, partition: int, key: str, after_key_sequence: int = 0) -> list[wire.StoredEntry]:
    """The key's accepted entries after `after_key_sequence`, in key-sequence order."""
    checkpoint = await store.read_checkpoint(partition)
    snapshot = await store.read_snapshot(partition, key)
    head = wire.decode_snapshot(snapshot.data).position if snapshot.data is not None else 0
    groups: dict[int, LogGroup] = {}
    for stored in await store.read_partition(partition, wire.checkpoint_position(checkpoint.data)):
        tail_group = wire.decode_group(stored.data)
        if any(link.key == key for link in tail_group.links):
            groups[stored.sequence] = tail_group
            head = stored.sequence
    found: list[wire.StoredEntry] = []
    sequence = head
    while sequence:
        group = groups.get(sequence)
        if group is None:
            message = await store.read_message(sequence)
            linked = wire.group_in(message.data, partition) if message is not None else None
            if linked is None:
                raise LogCorrupt(f"key {key}: its history links to message {sequence}, which does not hold it")
            group = linked
        mine = [entry for entry in wire.stored_entries(sequence, group) if entry.key == key and entry.accepted]
        found.extend(reversed(mine))
        if mine and mine[0].key_sequence <= after_key_sequence + 1:
            break
        sequence = wire.links(group).get(key, 0)
    history = sorted(
        (entry for entry in found if entry.key_sequence > after_key_sequence), key=lambda e: e.key_sequence
    )
    for expected, entry in enumerate(history, start=after_key_sequence + 1):
        if entry.key_sequence != expected:
            raise LogCorrupt(f"key {key}: its history has entry {entry.key_sequence} where {expected} belongs")
    return history


def replay(engine: KeyedEngine[Any, Any, Any, Any], key: str, entries: list[wire.StoredEntry]) -> Any:
    """The key's state after its entries, from its initial state (the reference a snapshot plus
    tail must agree with)."""
    state = engine.initial_state(key)
    for entry in entries:
        if entry.accepted:
            state = engine.apply(key, state, engine.decode_record(key, entry.record))
    return state


async def partition_entries(store: LogStore, partition: int) -> list[wire.StoredEntry]:
    """Every entry of the partition from its first message (audits and tests: it scans)."""
    entries: list[wire.StoredEntry] = []
    for message in await store.read_partition(partition, 0):
        entries.extend(wire.stored_entries(message.sequence, wire.decode_group(message.data)))
    return entries
