"""The keyed log on JetStream with ONE message per group commit: writer subjects and claims.

The partition-subject layout (jetstream.py) fences each partition with its own subject, so a
group over k partitions is k messages — an atomic batch, whose cost grows with k (docs/event-log.md
has the measurements). Here a partition is fenced by *claiming* it, and a writer's group over any
number of its partitions is one message on a subject of its own:

- `<prefix>.w.<writer>` — the writer's group commits: one `LogBundle` (its partitions' LogGroups)
  per append, with the subject's expected last sequence. `<writer>` is unique per store instance.
- `<prefix>.own.<p>` — partition p's claims. Claiming appends a claim (expected last sequence of
  that subject: of two claimers, one wins; the other reads again and claims after it) in one atomic
  batch with a **marker** on the previous claimer's writer subject (even our own). The marker
  moves that subject on, so the previous writer's next append fails its expected-sequence check:
  it reads back, finds the marker, re-reads the claims of its partitions, refuses the ones claimed
  away (`Fenced`: the log closes them) and sends the rest again. A writer never sends a part of a
  partition it does not hold a claim on.

A partition's history is its claims' writers' subjects between consecutive claims: a rebuild reads
the claims, then each of those writer subjects after the checkpoint's position and before the next
claim, keeping that partition's groups. Unknown outcomes are resolved as in jetstream.py, on the
writer subject: the first message after the expected sequence is a bundle of ours (its parts are
stored, the others sent again), a marker (someone claimed: see above) or nothing (send again).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import nats.errors
from nats.aio.client import Client

from gavel.events.v1 import keyed_log_pb2 as pb
from gavel_core.errors import Unavailable
from gavel_kit.keyedlog import wire
from gavel_kit.keyedlog.jetstream import JetStreamLogStore, LogLayout, _BatchRefused, _describe
from gavel_kit.keyedlog.store import AppendOutcome, Fenced, Outgoing, Retry, Stored, StoredMessage
from gavel_kit.nats import EVENT_TYPE as EVENT_TYPE_HEADER
from gavel_kit.nats import EXPECTED_LAST_SUBJECT_SEQUENCE, MSG_ID
from gavel_kit.streamread import first_after, last_message, last_per_subject, read_subject

WRITER = "Gavel-Writer"
KIND = "Gavel-Log-Kind"
BUNDLE, CLAIM, MARKER = "bundle", "claim", "marker"
CLAIM_ATTEMPTS = 5
WRITER_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
RANGE_TTL_S = 30.0


@dataclass
class _Range:
    """A writer subject's bundles between two stream sequences (both exclusive), as read lately:
    rebuilding the partitions a writer held reads its subject once, not once per partition."""

    after: int
    before: int
    bundles: list[tuple[int, pb.LogBundle]] = field(default_factory=list)
    used_at: float = 0.0


class WriterLogStore(JetStreamLogStore):
    """`LogStore` on JetStream, one message per append (the snapshot side is jetstream.py's)."""

    fences_by_claim = True

    def __init__(self, nc: Client, layout: LogLayout, *, writer: str, **options: object) -> None:
        super().__init__(nc, layout, **options)  # type: ignore[arg-type]
        if WRITER_TOKEN.fullmatch(writer) is None:
            raise ValueError("writer: 1 to 64 letters, digits, '-' or '_'")
        self.writer = f"{writer}-{os.urandom(4).hex()}"  # unique: a restart never reuses a subject
        self.subject = layout.writer_subject(self.writer)
        self._expected = 0  # the writer subject's last sequence as this writer knows it
        self._claims: dict[int, int] = {}  # partition -> the stream sequence of our claim
        self._bundles = itertools.count(1)
        self._ranges: dict[str, _Range] = {}
        self._range_locks: dict[str, asyncio.Lock] = {}
        self.range_reads = 0  # reads of writer subjects for rebuilds, and the bundles they returned
        self.range_bundles = 0

    def holds(self, partition: int) -> bool:
        return partition in self._claims

    # -- claims -------------------------------------------------------------------------------------

    async def claim(self, partition: int) -> None:
        layout, subject = self.layout, self.layout.claim_subject(partition)
        for _ in range(CLAIM_ATTEMPTS):
            last = await last_message(self._nc, layout.stream, subject, timeout_s=self._read_timeout_s)
            headers = {EXPECTED_LAST_SUBJECT_SEQUENCE: str(last.sequence if last else 0), WRITER: self.writer}
            batch: list[tuple[str, str | None, dict[str, str], bytes]] = [
                (subject, None, {**headers, KIND: CLAIM}, wire.claim_message(self.writer, partition))
            ]
            previous = last.headers.get(WRITER) if last is not None else None
            if previous:  # fence off whoever held it (ourselves too: a stale bundle of ours in flight)
                marker = wire.marker_message(self.writer, partition)
                batch.append((layout.writer_subject(previous), None, {KIND: MARKER, WRITER: self.writer}, marker))
            try:
                sequences = await self._write_batch(batch)
            except _BatchRefused:
                continue  # claimed by someone else meanwhile: read again, claim after them
            self._claims[partition] = sequences[0]
            return
        raise Unavailable(f"partition {partition} could not be claimed (contended); retry")

    async def _refresh_claims(self) -> None:
        """Forget the partitions whose latest claim is not ours any more."""
        if not self._claims:
            return
        subjects = {self.layout.claim_subject(p): p for p in self._claims}
        found = await last_per_subject(
            self._nc, self.layout.stream, list(subjects), batch=len(subjects) + 1, timeout_s=self._read_timeout_s
        )
        latest = {subjects[m.subject]: m.sequence for m in found if m.subject in subjects}
        for partition, sequence in list(self._claims.items()):
            if latest.get(partition) != sequence:
                del self._claims[partition]

    # -- appends ------------------------------------------------------------------------------------

    async def append(self, messages: Sequence[Outgoing]) -> list[AppendOutcome]:
        self.stats.appends += 1
        outcomes: list[AppendOutcome] = [Fenced(0)] * len(messages)  # parts of partitions not ours
        sendable = [(i, m) for i, m in enumerate(messages) if m.partition in self._claims]
        if sendable:
            self.stats.messages += 1
            for (i, _), outcome in zip(sendable, await self._send([m for _, m in sendable]), strict=True):
                outcomes[i] = outcome
        for outcome in outcomes:
            name = type(outcome).__name__.lower()
            self.stats.outcomes[name] = self.stats.outcomes.get(name, 0) + 1
        return outcomes

    async def _send(self, messages: Sequence[Outgoing]) -> list[AppendOutcome]:
        data = wire.bundle_message(self.writer, [m.data for m in messages])
        self.stats.bytes += len(data)
        headers = {
            MSG_ID: f"{self.writer}:{next(self._bundles)}",
            EXPECTED_LAST_SUBJECT_SEQUENCE: str(self._expected),
            EVENT_TYPE_HEADER: wire.BUNDLE_TYPE,
            WRITER: self.writer,
            KIND: BUNDLE,
        }
        try:
            reply = await self._nc.request(self.subject, data, timeout=self._ack_wait_s, headers=headers)
            ack = json.loads(reply.data)
        except (nats.errors.Error, TimeoutError, ValueError) as exc:
            return await self._resolve_bundle(messages, repr(exc))
        if "error" in ack:
            return await self._resolve_bundle(messages, _describe(ack))
        self._expected = int(ack["seq"])
        return [Stored(self._expected)] * len(messages)

    async def _resolve_bundle(self, messages: Sequence[Outgoing], reason: str) -> list[AppendOutcome]:
        """What follows our expected sequence on our subject: a bundle of ours, a marker, nothing."""
        try:
            found = await first_after(
                self._nc, self.layout.stream, self.subject, self._expected, timeout_s=self._read_timeout_s
            )
            if found is None:
                return [Retry(reason) for _ in messages]
            if found.headers.get(KIND) == BUNDLE and found.headers.get(WRITER) == self.writer:
                self._expected = found.sequence
                stored = {f"{g.writer}:{g.partition}:{g.group}" for g in wire.groups_in(found.data)}
                return [
                    Stored(found.sequence) if m.msg_id in stored else Retry("stored without it: send again")
                    for m in messages
                ]
            await self._refresh_claims()  # a marker: some partition of ours was claimed
            last = await last_message(self._nc, self.layout.stream, self.subject, timeout_s=self._read_timeout_s)
            if last is not None:
                self._expected = last.sequence
        except Exception as exc:
            return [Retry(f"{reason}; reading back failed: {exc!r}") for _ in messages]
        return [
            Retry("claims changed: send again") if m.partition in self._claims else Fenced(found.sequence)
            for m in messages
        ]

    # -- reading ------------------------------------------------------------------------------------

    async def read_partition(self, partition: int, after: int) -> list[StoredMessage]:
        """The partition's groups after `after`: in each claimer's subject, up to the next claim."""
        layout = self.layout
        claims = await read_subject(
            self._nc, layout.stream, layout.claim_subject(partition), timeout_s=self._read_timeout_s
        )
        found: list[StoredMessage] = []
        for claim, following in itertools.zip_longest(claims, claims[1:]):
            end = following.sequence if following is not None else None
            writer = claim.headers.get(WRITER)
            if writer is None or (end is not None and end <= after):
                continue
            start = max(after, claim.sequence)
            for sequence, bundle in await self._bundles_between(layout.writer_subject(writer), start, end):
                group = next((g for g in bundle.groups if g.partition == partition), None)
                if group is not None:
                    found.append(StoredMessage(sequence, group.SerializeToString()))
        return found

    async def _bundles_between(self, subject: str, after: int, before: int | None) -> list[tuple[int, pb.LogBundle]]:
        """A writer subject's bundles in (after, before) — the end of the subject when `before` is
        None — served from, and extending, what was read of it lately."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for stale in [s for s, r in self._ranges.items() if now - r.used_at > RANGE_TTL_S]:
            del self._ranges[stale]
        async with self._range_locks.setdefault(subject, asyncio.Lock()):
            kept = self._ranges.get(subject)
            if kept is None or after > kept.before:
                kept = _Range(after, after + 1)
            if after < kept.after:
                kept.bundles[:0] = await self._read_bundles(subject, after, kept.after + 1)
                kept.after = after
            if before is None or before > kept.before:
                newer = await self._read_bundles(subject, kept.before - 1, before)
                kept.bundles.extend(newer)
                kept.before = before if before is not None else (newer[-1][0] + 1 if newer else kept.before)
            kept.used_at = now
            self._ranges[subject] = kept
            return [(q, b) for q, b in kept.bundles if q > after and (before is None or q < before)]

    async def _read_bundles(self, subject: str, after: int, before: int | None) -> list[tuple[int, pb.LogBundle]]:
        self.range_reads += 1
        messages = await read_subject(
            self._nc,
            self.layout.stream,
            subject,
            after_sequence=after,
            before_sequence=before,
            timeout_s=self._read_timeout_s,
        )
        bundles = [(m.sequence, pb.LogBundle.FromString(m.data)) for m in messages if m.headers.get(KIND) == BUNDLE]
        self.range_bundles += len(bundles)
        return bundles
