"""Load and invariants the fault tests share: bidders that retry with the same bid id, watchers
that resume from their last lot_sequence, and the checks every fault must pass (no acknowledged
bid lost or renumbered, no command twice, gapless lots, each lot decided at most — or exactly —
once)."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any

import grpc

from gavel.common.v1.money_pb2 import Money
from gavel.events.v1 import room_events_pb2 as ev
from gavel.room.v1 import room_service_pb2 as pb
from gavel_kit import roomlog
from gavel_kit.grpc.errors import retry_info_of
from gavel_kit.streamread import read_subject


def retry_delay_s(error: grpc.aio.AioRpcError, default_s: float = 0.05) -> float:
    """How long a client waits before retrying: the server's hint (RetryInfo) if it gave one."""
    hint = retry_info_of(error)
    return hint.retry_delay.ToMilliseconds() / 1000 if hint is not None else default_s


def usd(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="USD")


@dataclass
class Acked:
    lot_id: str
    request_id: str
    lot_sequence: int
    at: float
    attempts: int  # 1: answered at once; more: retried with the same id after a failure
    sent_at: float = 0.0  # when its first attempt was sent


@dataclass
class Bidding:
    """Bidders raising on lots through any live replica. A failed call (anything but a definite
    refusal) is retried with the same bid id, as a client must: the answer, when it comes, must be
    the one the log holds."""

    stubs: dict[str, Any]
    alive: set[str]
    bidders: list[tuple[tuple[str, str], ...]]
    acked: list[Acked] = field(default_factory=list)
    codes: list[tuple[float, str]] = field(default_factory=list)  # (when, status code) of failed attempts
    details: list[str] = field(default_factory=list)  # their status details, in the same order
    running: bool = True
    more_acked: asyncio.Event = field(default_factory=asyncio.Event)
    call_timeout_s: float = 5.0

    async def until_each_has(self, lot_ids: set[str], count: int) -> None:
        """Wait until every one of the lots has at least `count` acknowledged bids."""
        while any(sum(a.lot_id == lot_id for a in self.acked) < count for lot_id in lot_ids):
            self.more_acked.clear()
            await self.more_acked.wait()

    async def until_acked_after(self, moment: float, lot_ids: set[str]) -> None:
        """Wait until every one of the lots has a bid acknowledged after `moment`."""
        while any(not any(a.lot_id == lot_id and a.at > moment for a in self.acked) for lot_id in lot_ids):
            self.more_acked.clear()
            await self.more_acked.wait()

    async def bid_on(self, lot_id: str, seed: int, pause_s: tuple[float, float] = (0.05, 0.15)) -> None:
        rng = random.Random(seed)
        amount = 1_000
        for n in itertools.count():
            if not self.running:
                return
            request = pb.PlaceBidRequest(request_id=f"{lot_id}-{n}", lot_id=lot_id, max_amount=usd(amount))
            bidder = self.bidders[n % len(self.bidders)]
            sent_at = time.monotonic()
            for attempt in range(1, 400):
                if not self.alive:
                    await asyncio.sleep(0.05)
                    continue
                name = rng.choice(sorted(self.alive))
                try:
                    reply = await self.stubs[name].PlaceBid(request, metadata=bidder, timeout=self.call_timeout_s)
                except grpc.aio.AioRpcError as exc:
                    self.codes.append((time.monotonic(), exc.code().name))
                    self.details.append(f"{exc.code().name}: {exc.details()}")
                    if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                        break  # refused (too low, or the lot closed): a definite answer
                    await asyncio.sleep(retry_delay_s(exc))
                    continue
                acked = Acked(lot_id, request.request_id, reply.lot_sequence, time.monotonic(), attempt, sent_at)
                self.acked.append(acked)
                self.more_acked.set()
                break
            amount += 500
            await asyncio.sleep(rng.uniform(*pause_s))


async def watch_gapless(stubs: dict[str, Any], alive: set[str], lot_id: str, seen: list[int], stop: Any) -> None:
    """A watcher that resumes from its last lot_sequence on any live replica when its stream ends."""
    while not stop.is_set():
        name = sorted(alive)[0] if alive else None
        if name is None:
            await asyncio.sleep(0.05)
            continue
        after = seen[-1] if seen else 0
        call = stubs[name].Watch(pb.WatchRequest(lots=[pb.LotCursor(lot_id=lot_id, after_sequence=after)]))
        try:
            async for item in call:
                seen.append(item.lot_sequence)
                if stop.is_set():
                    return
        except grpc.aio.AioRpcError as exc:
            await asyncio.sleep(retry_delay_s(exc))  # ended (replica stopping, NATS away): resume
        finally:
            call.cancel()


async def lot_ready(stub: Any, lot_id: str) -> None:
    for _ in range(400):
        try:
            await stub.GetLotState(pb.GetLotStateRequest(lot_id=lot_id), timeout=5)
            return
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
                raise
            await asyncio.sleep(0.05)
    raise TimeoutError(lot_id)


def check_logs(logs: dict[str, list[ev.LotEventBatch]], acked: list[Acked], *, decided: bool) -> None:
    """No acknowledged bid lost or answered with another sequence, no command twice, gapless
    sequences, and (with `decided`) every lot decided exactly once."""
    for lot_id, log in logs.items():
        assert [b.lot_sequence for b in log] == list(range(1, len(log) + 1)), f"gap in {lot_id}"
        commands = [b.command_id for b in log]
        assert len(commands) == len(set(commands)), f"a command twice in {lot_id}"
        outcomes = [e for b in log for e in b.events if e.WhichOneof("event") in ("lot_sold", "lot_unsold")]
        assert len(outcomes) <= 1, (lot_id, outcomes)  # never decided twice
        if decided:
            assert len(outcomes) == 1, (lot_id, outcomes)
    for bid in acked:
        stored = {b.command_id.partition("@")[0]: b.lot_sequence for b in logs[bid.lot_id]}  # ids are per caller
        assert stored.get(bid.request_id) == bid.lot_sequence, f"acknowledged bid lost or renumbered: {bid}"


async def lot_log(nc: Any, lot_id: str) -> list[ev.LotEventBatch]:
    """A lot's batches as the room's log holds them."""
    messages = await read_subject(nc, roomlog.STREAM, f"gavel.room.lot.{lot_id}")
    return [ev.LotEventBatch.FromString(m.data) for m in messages]


async def logs_when_decided(nc: Any, lot_ids: list[str], timeout_s: float) -> dict[str, list[ev.LotEventBatch]]:
    """Every lot's log once each has closed (its deadline fired on whoever owns it), or as it is
    after `timeout_s`."""
    logs: dict[str, list[ev.LotEventBatch]] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        logs = {lot_id: await lot_log(nc, lot_id) for lot_id in lot_ids}
        if all(log and log[-1].after.phase in ("sold", "unsold") for log in logs.values()):
            return logs
        await asyncio.sleep(0.2)
    return logs


def resume_delays(acked: list[Acked], lot_ids: set[str], moment: float) -> dict[str, float | None]:
    """Per lot, seconds from `moment` to its first bid acknowledged after it (None: none yet)."""
    delays: dict[str, float | None] = {}
    for lot_id in lot_ids:
        after = [a.at - moment for a in acked if a.lot_id == lot_id and a.at > moment]
        delays[lot_id] = min(after) if after else None
    return delays
