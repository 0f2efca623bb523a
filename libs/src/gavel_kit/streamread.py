"""Reading stored JetStream messages by subject without creating a consumer.

Event-sourced services rebuild an entity by reading its subject from the start; a consumer per
rebuild would cost a consumer create/delete round trip each and load the server's consumer
machinery. JetStream's *direct get* answers from the stream itself, in batches
(`{"seq": n, "next_by_subj": subject, "batch": k}`, nats-server 2.11+; the stream needs
`allow_direct: true`), and can also return the last message of every subject matching a filter
(`multi_last`), which is how a key-value bucket is read in one request. Streams without direct
gets fall back to the stream's message-get API, one message per request.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

SEQUENCE = "Nats-Sequence"
SUBJECT = "Nats-Subject"
NUM_PENDING = "Nats-Num-Pending"
STATUS = "Status"
NO_MESSAGE = "404"
END_OF_BATCH = "204"
NO_RESPONDERS = "503"
DEFAULT_BATCH = 500


class DirectGetUnavailable(Exception):
    """The stream does not answer direct gets (no `allow_direct`, or no such stream)."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    subject: str
    sequence: int
    data: bytes
    headers: dict[str, str]


def _stored(msg: Msg) -> StoredMessage:
    headers = dict(msg.headers or {})
    return StoredMessage(headers.get(SUBJECT, ""), int(headers[SEQUENCE]), msg.data, headers)


async def _batches(
    nc: Client, stream: str, request: dict[str, object], timeout_s: float
) -> tuple[list[StoredMessage], int]:
    """One direct-get batch: the messages and how many more match after them.

    The replies are collected by a subscription callback (not `next_msg`, which costs a task and
    a timer per message: the room's lease view and watch-history reads go through here)."""
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    found: list[StoredMessage] = []

    async def collect(msg: Msg) -> None:
        if done.done():
            return
        headers = msg.headers or {}
        status = headers.get(STATUS)
        if status is None:
            found.append(_stored(msg))
        elif status == NO_MESSAGE:
            done.set_result(0)
        elif status == END_OF_BATCH:
            done.set_result(int(headers.get(NUM_PENDING, "0")))
        elif status == NO_RESPONDERS:
            done.set_exception(DirectGetUnavailable(stream))
        else:
            done.set_exception(RuntimeError(f"direct get from {stream} failed with status {status}: {headers}"))

    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox, cb=collect)
    try:
        await nc.publish(f"$JS.API.DIRECT.GET.{stream}", json.dumps(request).encode(), reply=inbox)
        pending = await asyncio.wait_for(done, timeout_s)
        return found, pending
    finally:
        await subscription.unsubscribe()


async def read_subject(
    nc: Client,
    stream: str,
    subject: str,
    *,
    after_sequence: int = 0,
    batch: int = DEFAULT_BATCH,
    timeout_s: float = 5.0,
    before_sequence: int | None = None,
) -> list[StoredMessage]:
    """Every message of `subject` with a stream sequence above `after_sequence` (and below
    `before_sequence`, if given), in order."""
    found: list[StoredMessage] = []
    start = after_sequence + 1
    try:
        while True:
            messages, pending = await _batches(
                nc, stream, {"seq": start, "next_by_subj": subject, "batch": batch}, timeout_s
            )
            if before_sequence is not None and messages and messages[-1].sequence >= before_sequence:
                found.extend(m for m in messages if m.sequence < before_sequence)
                return found
            found.extend(messages)
            if not messages or pending == 0:
                return found
            start = messages[-1].sequence + 1
    except DirectGetUnavailable:
        if found:
            raise
    found = await _read_subject_one_by_one(nc, stream, subject, after_sequence, timeout_s)
    return found if before_sequence is None else [m for m in found if m.sequence < before_sequence]


async def _read_subject_one_by_one(
    nc: Client, stream: str, subject: str, after_sequence: int, timeout_s: float
) -> list[StoredMessage]:
    js = nc.jetstream(timeout=timeout_s)
    found: list[StoredMessage] = []
    start = after_sequence + 1
    while True:
        try:
            raw = await js.get_msg(stream, seq=start, subject=subject, next=True)
        except NotFoundError:
            return found
        sequence = int(raw.seq or 0)
        found.append(StoredMessage(raw.subject or subject, sequence, raw.data or b"", dict(raw.headers or {})))
        start = sequence + 1


async def last_per_subject(
    nc: Client, stream: str, subjects: list[str], *, batch: int = 10_000, timeout_s: float = 5.0
) -> list[StoredMessage]:
    """The last message of every subject matching any of the filters (direct get `multi_last`)."""
    messages, pending = await _batches(nc, stream, {"multi_last": subjects, "batch": batch}, timeout_s)
    if pending:
        raise RuntimeError(f"more than {batch} subjects match {subjects} in {stream}")
    return messages


async def first_after(
    nc: Client, stream: str, subject: str, after_sequence: int, *, timeout_s: float = 5.0
) -> StoredMessage | None:
    """The first message of `subject` (a filter: wildcards allowed) after a stream sequence, if any."""
    messages, _ = await _batches(
        nc, stream, {"seq": after_sequence + 1, "next_by_subj": subject, "batch": 1}, timeout_s
    )
    return messages[0] if messages else None


async def message_at(nc: Client, stream: str, sequence: int, *, timeout_s: float = 5.0) -> StoredMessage | None:
    """The message at a stream sequence (None: none there, e.g. deleted)."""
    messages, _ = await _batches(nc, stream, {"seq": sequence, "batch": 1}, timeout_s)
    return messages[0] if messages and messages[0].sequence == sequence else None


async def last_message(nc: Client, stream: str, subject: str, *, timeout_s: float = 5.0) -> StoredMessage | None:
    """The last message of `subject`, if it has any (a batched `multi_last`: a plain `last_by_subj`
    answers without the end-of-batch status the collector waits for)."""
    messages, _ = await _batches(nc, stream, {"multi_last": [subject], "batch": 1}, timeout_s)
    return messages[0] if messages else None
