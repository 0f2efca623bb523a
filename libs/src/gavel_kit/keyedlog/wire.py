"""The keyed log's messages on the wire (protos/gavel/events/v1/keyed_log.proto).

An entry is serialised once, when its command is decided, already framed as the `entries` field
of a LogGroup; a group's message is then its small header followed by those frames (protobuf
merges concatenated messages, repeated fields appending), so cutting a group copies bytes instead
of building and re-serialising a message per entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gavel.events.v1 import keyed_log_pb2 as pb

EVENT_TYPE = "gavel.events.v1.LogGroup"
BUNDLE_TYPE = "gavel.events.v1.LogBundle"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_ENTRIES_TAG = _varint((pb.LogGroup.ENTRIES_FIELD_NUMBER << 3) | 2)  # a length-delimited `entries` field


def entry_frame(
    key: str,
    key_sequence: int,
    command_id: str,
    fingerprint: str,
    decided_at_ms: int,
    record: bytes = b"",
    refusal: bytes = b"",
) -> bytes:
    """One entry, framed as a LogGroup `entries` field (ready to concatenate into a group)."""
    body = pb.LogEntry(
        key=key,
        key_sequence=key_sequence,
        command_id=command_id,
        fingerprint=fingerprint,
        decided_at_ms=decided_at_ms,
        record=record,
        refusal=refusal,
    ).SerializeToString()
    return _ENTRIES_TAG + _varint(len(body)) + body


def group_message(partition: int, writer: str, group: int, links: Mapping[str, int], frames: Iterable[bytes]) -> bytes:
    """A partition's LogGroup: the header (partition, writer, group, each key's previous message)
    followed by the entry frames in decision order."""
    header = pb.LogGroup(
        partition=partition,
        writer=writer,
        group=group,
        links=[pb.KeyLink(key=key, previous=previous) for key, previous in links.items()],
    ).SerializeToString()
    return header + b"".join(frames)


def decode_group(data: bytes) -> pb.LogGroup:
    return pb.LogGroup.FromString(data)


_GROUPS_TAG = _varint((pb.LogBundle.GROUPS_FIELD_NUMBER << 3) | 2)


def bundle_message(writer: str, groups: Iterable[bytes]) -> bytes:
    """One writer's group commit (the writer-subject layout): its partitions' LogGroups."""
    return pb.LogBundle(writer=writer).SerializeToString() + b"".join(
        _GROUPS_TAG + _varint(len(group)) + group for group in groups
    )


def claim_message(writer: str, partition: int) -> bytes:
    return pb.LogBundle(writer=writer, claim=partition).SerializeToString()


def marker_message(writer: str, partition: int) -> bytes:
    """Put on the previous owner's writer subject by `writer` when it claims `partition`."""
    return pb.LogBundle(writer=writer, fence=partition).SerializeToString()


def groups_in(data: bytes) -> list[pb.LogGroup]:
    """The LogGroups a stored message carries: a bundle's (the writer-subject layout), a group
    alone (the partition-subject layout), or none (claims, markers, older layouts' messages)."""
    bundle = pb.LogBundle.FromString(data)
    if bundle.writer:
        return list(bundle.groups)
    group = pb.LogGroup.FromString(data)
    return [group] if group.entries else []


def group_in(data: bytes, partition: int) -> pb.LogGroup | None:
    return next((group for group in groups_in(data) if group.partition == partition), None)


def is_group(data: bytes) -> bool:
    """Whether a stored message is a LogGroup (every one has an entry) rather than a message of an
    older one-record-per-message layout: LogGroup's fields are numbered from 1000, so such a
    message parses as a LogGroup with none of them."""
    try:
        return len(pb.LogGroup.FromString(data).entries) > 0
    except Exception:  # not even a protobuf message of this shape
        return False


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry as the log holds it: in the message at `sequence` (a stream sequence)."""

    sequence: int
    key: str
    key_sequence: int
    command_id: str
    fingerprint: str
    decided_at_ms: int
    record: bytes
    refusal: bytes

    @property
    def accepted(self) -> bool:
        return self.key_sequence > 0


def stored_entries(sequence: int, group: pb.LogGroup) -> list[StoredEntry]:
    return [
        StoredEntry(
            sequence,
            entry.key,
            entry.key_sequence,
            entry.command_id,
            entry.fingerprint,
            entry.decided_at_ms,
            entry.record,
            entry.refusal,
        )
        for entry in group.entries
    ]


def links(group: pb.LogGroup) -> dict[str, int]:
    return {link.key: link.previous for link in group.links}


# -- snapshots ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceiptRecord:
    command_id: str
    fingerprint: str
    decided_at_ms: int
    key_sequence: int
    answer: bytes


@dataclass(frozen=True, slots=True)
class RefusalRecord:
    command_id: str
    fingerprint: str
    decided_at_ms: int
    refusal: bytes


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A key's state as of its entry `key_sequence`, found in the message at `position`."""

    key: str
    partition: int
    key_sequence: int
    position: int
    state: bytes
    state_hash: str
    receipts: Sequence[ReceiptRecord]
    refusals: Sequence[RefusalRecord]
    taken_at_ms: int
    writer: str


def encode_snapshot(snapshot: Snapshot) -> bytes:
    return pb.KeySnapshot(
        key=snapshot.key,
        partition=snapshot.partition,
        key_sequence=snapshot.key_sequence,
        position=snapshot.position,
        state=snapshot.state,
        state_hash=snapshot.state_hash,
        receipts=[
            pb.SnapshotReceipt(
                command_id=r.command_id,
                fingerprint=r.fingerprint,
                decided_at_ms=r.decided_at_ms,
                key_sequence=r.key_sequence,
                answer=r.answer,
            )
            for r in snapshot.receipts
        ],
        refusals=[
            pb.SnapshotRefusal(
                command_id=r.command_id, fingerprint=r.fingerprint, decided_at_ms=r.decided_at_ms, refusal=r.refusal
            )
            for r in snapshot.refusals
        ],
        taken_at_ms=snapshot.taken_at_ms,
        writer=snapshot.writer,
    ).SerializeToString()


def decode_snapshot(data: bytes) -> Snapshot:
    message = pb.KeySnapshot.FromString(data)
    return Snapshot(
        key=message.key,
        partition=message.partition,
        key_sequence=message.key_sequence,
        position=message.position,
        state=message.state,
        state_hash=message.state_hash,
        receipts=tuple(
            ReceiptRecord(r.command_id, r.fingerprint, r.decided_at_ms, r.key_sequence, r.answer)
            for r in message.receipts
        ),
        refusals=tuple(
            RefusalRecord(r.command_id, r.fingerprint, r.decided_at_ms, r.refusal) for r in message.refusals
        ),
        taken_at_ms=message.taken_at_ms,
        writer=message.writer,
    )


def encode_checkpoint(partition: int, position: int, writer: str, taken_at_ms: int, keys: int) -> bytes:
    return pb.PartitionCheckpoint(
        partition=partition, position=position, writer=writer, taken_at_ms=taken_at_ms, keys=keys
    ).SerializeToString()


def checkpoint_position(data: bytes | None) -> int:
    """The partition subject's stream sequence a checkpoint covers (0: no checkpoint)."""
    return pb.PartitionCheckpoint.FromString(data).position if data else 0
