"""Reading the bids back from the lots' event log, to count lost and duplicated bids.

The most direct evidence is the log itself: every lot's subject `gavel.room.lot.<lot_id>` of the
JetStream stream ROOM_EVENTS, read with batched direct gets (gavel_kit.streamread, no consumer),
exactly what a new owner replays to rebuild the lot. The SQL projections behind ListBids are
eventually consistent and one step removed, so they are not used.

- lost: a bid the room acknowledged (PlaceBid returned OK, possibly after retries with the same
  request id) whose id is in no BidAccepted event of its lot's log;
- duplicated: a bid id found in more than one BidAccepted event of its lot's log.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gavel.events.v1 import room_events_pb2 as ev
from gavel_bench.access import connect_nats
from gavel_kit.streamread import read_subject
from room.adapters.event_log import STREAM, lot_subject

READ_CONCURRENCY = 32
READ_TIMEOUT_S = 10.0


@dataclass
class Audit:
    bids_in_log: int = 0
    lost: int = 0
    duplicated: int = 0
    lost_examples: list[str] = field(default_factory=list)
    duplicated_examples: list[str] = field(default_factory=list)


async def logged_bid_ids(nats_url: str, lot_ids: Iterable[str]) -> dict[str, list[str]]:
    """Every BidAccepted bid id of each lot's log, in log order."""
    found: dict[str, list[str]] = {}
    nc = await connect_nats(nats_url, connect_timeout=10, max_reconnect_attempts=5, name="gavel-bench-audit")
    try:
        slots = asyncio.Semaphore(READ_CONCURRENCY)

        async def read(lot_id: str) -> None:
            async with slots:
                messages = await read_subject(nc, STREAM, lot_subject(lot_id), timeout_s=READ_TIMEOUT_S)
            ids: list[str] = []
            for message in messages:
                for event in ev.LotEventBatch.FromString(message.data).events:
                    if event.HasField("bid_accepted"):
                        ids.append(event.bid_accepted.bid_id)
            found[lot_id] = ids

        await asyncio.gather(*(read(lot_id) for lot_id in lot_ids))
    finally:
        await nc.close()
    return found


def audit(acknowledged: Mapping[str, Iterable[str]], logged: Mapping[str, list[str]]) -> Audit:
    """Compare what the room acknowledged with what its log holds, lot by lot."""
    result = Audit()
    for lot_id, ids in logged.items():
        result.bids_in_log += len(ids)
        for bid_id, times in Counter(ids).items():
            if times > 1:
                result.duplicated += times - 1
                if len(result.duplicated_examples) < 5:
                    result.duplicated_examples.append(f"{lot_id}/{bid_id} x{times}")
    for lot_id, acked_ids in acknowledged.items():
        stored = set(logged.get(lot_id, ()))
        for bid_id in acked_ids:
            if bid_id not in stored:
                result.lost += 1
                if len(result.lost_examples) < 5:
                    result.lost_examples.append(f"{lot_id}/{bid_id}")
    return result
