"""One client process of the load: bidders and watchers of its share of the lots.

Each process owns a disjoint share of the lots, bids only on them and runs their watchers, so
what its watchers see (prices, leaders) is what its bidders bid from, like a real bidder's client.

Bidders are open-loop: bid n of a step is *scheduled* at step_start + n / rate whatever happened to
earlier bids, and its latency is measured from that scheduled instant, not from when it was
actually sent, so a stalled server or client shows up in the latency instead of silently lowering
the rate (no coordinated omission). At most `concurrency` bids are in flight per process (the same
client concurrency the echo ceiling is measured with); bids beyond that wait, and that wait counts
in their latency. A bid waiting longer than the backlog bound is not sent at all and is counted
(`not_sent`), which keeps memory bounded if the server stops answering.

Each bid is what a real bidder would send: the lot's minimum acceptable bid as this client last
knew it (from PlaceBid answers and Watch batches; the opening bid before the first bid) plus 0-3
increments, from one of the lot's bidders who is not (as far as the client knows) leading. A
refusal for being too low (BID_TOO_LOW, BID_NOT_ABOVE_OWN_MAX: another bid got there first) is
counted as `rejected`, not as an error, and its minimum is remembered. UNAVAILABLE and deadline
errors (a partition changing owner, a replica killed) are retried with the same request id (the
room answers a repeat with its first answer) on the next replica until `retry_window_s` after the
bid's scheduled time; only then is the bid an error, of unknown outcome.

Each watcher is ONE RoomService.Watch stream following up to 10 lots, like a bidder's watchlist,
resumed from its per-lot cursors on another replica if the stream breaks. It starts just before
the batch that opened each lot, so the first message per lot proves the stream is live before the
measured window starts. Fan-out latency is measured per delivered batch holding a BidAccepted:
this process's wall clock when the message arrives minus the batch's `occurred_at` (the owner's
wall clock when it decided the bid, in whole milliseconds, same machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import random
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from gavel.common.v1.money_pb2 import Money
from gavel.room.v1 import room_service_pb2 as room_pb
from gavel.room.v1 import room_service_pb2_grpc as room_grpc
from gavel_bench.fixture import CURRENCY, INCREMENT_MINOR, OPENING_BID_MINOR, PreparedLot
from gavel_bench.histograms import Latency
from gavel_bench.identities import Identities, bidders_of_lot
from gavel_kit import garbage
from gavel_kit import loop as event_loops
from gavel_kit.grpc.errors import error_info_of

WATCH_GROUP = 10  # lots per watcher stream: a bidder's watchlist
REFUSALS = frozenset({"BID_TOO_LOW", "BID_NOT_ABOVE_OWN_MAX"})
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
FIRST_RETRY_DELAY_S = 0.05
MAX_RETRY_DELAY_S = 0.5
MAX_ERROR_SAMPLES = 5
GO_TIMEOUT_S = 900.0  # the parent measures the echo ceiling between ready and go
MAX_WATCH_RECONNECTS = 1_000
# At most this many watch streams per client process are opening (no first message yet) at once:
# grpcio 1.85 (asyncio or uvloop) was seen to leave some of several thousand server-streaming calls
# opened in a burst waiting forever (5,000 at once: ~3,200 started; 2 x 2,500 against a busy room:
# 3,024 of 5,000), while the same streams opened a few hundred at a time all went live. Real
# watchers arrive spread out too.
WATCH_OPENING_AT_ONCE = 100
RAMP_DRAIN_S = 30.0  # between ramp steps, bids still in flight get this long to finish
RAMP_PAUSE_S = 1.0
RAMP_GIVE_UP_BELOW = 0.5  # a step that acknowledged less than this share of its target ends the ramp


@dataclass(frozen=True)
class Step:
    """`rate` bids per second (this process's share) for `duration_s` seconds."""

    rate: float
    duration_s: float


@dataclass(frozen=True)
class WorkerPlan:
    worker: int
    run_id: str
    keys_dir: str
    room_addresses: tuple[str, ...]
    lots: tuple[PreparedLot, ...]
    watchers_per_room: int
    steps: tuple[Step, ...]
    concurrency: int
    max_backlog_s: float = 10.0
    request_timeout_s: float = 5.0
    retry_window_s: float = 20.0
    drain_s: float = 2.0
    channels_per_address: int = 2
    seed: int = 1
    ready_timeout_s: float = 120.0  # for every watch stream's first message


@dataclass
class StepTotals:
    """Bids by the step they were scheduled in."""

    sent: int = 0
    acked: int = 0
    rejected: int = 0
    errors: int = 0
    not_sent: int = 0
    acked_in_window: int = 0  # acknowledgements that arrived while the step was running
    started_s: float | None = None  # seconds after the window's start; None: skipped
    bid_latency: bytes = b""
    fanout: bytes = b""


@dataclass
class WorkerFinal:
    worker: int
    steps: list[StepTotals]
    acked_bids: dict[str, list[str]]  # lot id → acknowledged bid ids
    ack_times: dict[str, list[float]]  # lot id → wall-clock instants of the acknowledgements
    rejected_latency: bytes
    error_kinds: dict[str, int]
    error_samples: list[str]
    watch_streams: int
    watch_reconnects: int
    deliveries: int
    max_in_flight: int
    retried_bids: int


@dataclass
class Tick:
    """What happened in one second of the run (by completion time), for progress and plots."""

    worker: int
    second: int
    sent: int = 0
    acked: int = 0
    rejected: int = 0
    errors: int = 0
    not_sent: int = 0
    deliveries: int = 0
    in_flight: int = 0
    bid_latency: bytes = b""
    fanout: bytes = b""


class LotLive:
    """What this client knows of one lot, and how its bidders bid on it."""

    __slots__ = ("bidders", "leader", "lot_id", "maxima", "min_bid", "open_sequence", "price", "sequence")

    def __init__(self, lot: PreparedLot, bidders: tuple[str, ...]) -> None:
        self.lot_id = lot.lot_id
        self.open_sequence = lot.open_sequence
        self.bidders = bidders
        self.sequence = lot.open_sequence
        self.price = 0
        self.leader: str | None = None
        self.min_bid = OPENING_BID_MINOR
        self.maxima: dict[str, int] = {}

    def observe(self, sequence: int, price: int, leader: str | None) -> None:
        """A newer state of the lot from the room (prices never fall, so the estimate only rises)."""
        if sequence <= self.sequence:
            return
        self.sequence, self.price, self.leader = sequence, price, leader
        minimum = price + INCREMENT_MINOR if leader else OPENING_BID_MINOR
        if minimum > self.min_bid:
            self.min_bid = minimum

    def next_bid(self, rng: random.Random) -> tuple[str, int]:
        """A bidder who is not leading, and their maximum: the minimum known + 0-3 increments."""
        candidates = [b for b in self.bidders if b != self.leader] or list(self.bidders)
        bidder = rng.choice(candidates)
        floor = max(self.min_bid, self.maxima.get(bidder, 0) + INCREMENT_MINOR)
        amount = floor + rng.randint(0, 3) * INCREMENT_MINOR
        self.maxima[bidder] = amount
        # Bids still in flight will raise the price: the next bidder starts above this one.
        self.min_bid = max(self.min_bid, amount + INCREMENT_MINOR)
        return bidder, amount

    def refused(self, bidder: str, reason: str, minimum: int) -> None:
        if reason == "BID_NOT_ABOVE_OWN_MAX":
            self.maxima[bidder] = max(self.maxima.get(bidder, 0), minimum - 1)
        elif minimum > self.min_bid:
            self.min_bid = minimum


def plan_watch_groups(lot_ids: Sequence[str], watchers_per_room: int) -> list[list[str]]:
    """`watchers_per_room` streams per lot, each following up to WATCH_GROUP lots.

    Each layer groups the lots differently (rotated), so a lot's watchers do not all watch the
    same ten lots.
    """
    groups: list[list[str]] = []
    count = len(lot_ids)
    for layer in range(watchers_per_room):
        shift = (layer * 3) % count if count else 0
        rotated = list(lot_ids[shift:]) + list(lot_ids[:shift])
        groups.extend(rotated[start : start + WATCH_GROUP] for start in range(0, count, WATCH_GROUP))
    return groups


def occurred_ms(response: room_pb.WatchResponse) -> int:
    stamp = response.occurred_at
    return int(stamp.seconds) * 1000 + int(stamp.nanos) // 1_000_000


class Worker:
    def __init__(self, plan: WorkerPlan, results: Any) -> None:
        self.plan = plan
        self.results = results
        self.rng = random.Random(plan.seed * 1_000_003 + plan.worker)
        self.identities = Identities(plan.keys_dir, plan.run_id)
        self.lots = {lot.lot_id: LotLive(lot, bidders_of_lot(plan.run_id, lot.index)) for lot in plan.lots}
        self.lot_order = list(self.lots.values())
        self.rng.shuffle(self.lot_order)
        self.next_lot = 0
        self.channels: list[grpc.aio.Channel] = []
        self.stubs: list[room_grpc.RoomServiceAsyncStub] = []
        self.slots = asyncio.Semaphore(plan.concurrency)
        # counters of the current second (ticks) and of each step (by scheduled time)
        self.tick = Tick(plan.worker, 0)
        self.tick_bids = Latency()
        self.tick_fanout = Latency()
        self.step_totals = [StepTotals() for _ in plan.steps]
        self.step_bids = [Latency() for _ in plan.steps]
        self.step_fanout = [Latency() for _ in plan.steps]
        self.rejected_latency = Latency()
        self.acked_bids: dict[str, list[str]] = {}
        self.ack_times: dict[str, list[float]] = {}
        self.error_kinds: Counter[str] = Counter()
        self.error_samples: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.retried_bids = 0
        self.deliveries = 0
        self.watch_reconnects = 0
        self.watch_groups = plan_watch_groups([lot.lot_id for lot in plan.lots], plan.watchers_per_room)
        self.ready_streams = 0
        self.all_ready = asyncio.Event()
        self.opening = asyncio.Semaphore(WATCH_OPENING_AT_ONCE)
        self.stopping = False
        self.t0_wall_ms = 0.0
        self.step_windows_ms: list[tuple[float, float]] = []  # wall clock (start, end) of each step begun
        self.running_step: tuple[int, float, float] | None = None  # (step, start, end), monotonic

    # -- plumbing -------------------------------------------------------------------------------------

    def _stub(self, number: int) -> room_grpc.RoomServiceAsyncStub:
        return self.stubs[number % len(self.stubs)]

    def _step_at_ms(self, wall_ms: float) -> int | None:
        """The step whose window holds this wall-clock instant (None: before, between or after)."""
        for index, (start, end) in enumerate(self.step_windows_ms):
            if start <= wall_ms < end:
                return index
        return None

    def _error(self, step: int, kind: str, message: str) -> None:
        self.tick.errors += 1
        self.step_totals[step].errors += 1
        self.error_kinds[kind] += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(f"{kind}: {message[:300]}")

    # -- watchers ---------------------------------------------------------------------------------------

    async def watch(self, number: int, lot_ids: list[str]) -> None:
        cursors = {lot_id: self.lots[lot_id].open_sequence - 1 for lot_id in lot_ids}
        unseen = set(lot_ids)
        attempt = 0
        while not self.stopping and attempt <= MAX_WATCH_RECONNECTS:
            request = room_pb.WatchRequest(
                lots=[room_pb.LotCursor(lot_id=lot_id, after_sequence=cursors[lot_id]) for lot_id in lot_ids]
            )
            await self.opening.acquire()
            opening = True
            call = self._stub(number + attempt).Watch(request)
            try:
                async for response in call:
                    received_ms = time.time() * 1000
                    if opening:
                        opening = False
                        self.opening.release()
                    self.deliveries += 1
                    self.tick.deliveries += 1
                    lot_id = response.lot_id
                    sequence = response.lot_sequence
                    if sequence > cursors.get(lot_id, 0):
                        cursors[lot_id] = sequence
                    if unseen:
                        unseen.discard(lot_id)
                        if not unseen:
                            self.ready_streams += 1
                            if self.ready_streams == len(self.watch_groups):
                                self.all_ready.set()
                    after = response.after
                    lot = self.lots.get(lot_id)
                    if lot is not None:
                        lot.observe(sequence, after.price.amount_minor, after.leader_id or None)
                    if self.step_windows_ms and any(event.HasField("bid_accepted") for event in response.events):
                        decided_ms = occurred_ms(response)
                        step = self._step_at_ms(decided_ms)
                        if step is not None:
                            fanout_ms = received_ms - decided_ms
                            self.tick_fanout.record_ms(fanout_ms)
                            self.step_fanout[step].record_ms(fanout_ms)
            except grpc.aio.AioRpcError as error:
                if self.stopping or error.code() == grpc.StatusCode.CANCELLED:
                    return
                self.watch_reconnects += 1
                attempt += 1
                await asyncio.sleep(min(MAX_RETRY_DELAY_S, FIRST_RETRY_DELAY_S * attempt))
            else:
                return  # the server ended the stream without an error: only at shutdown
            finally:
                if opening:
                    self.opening.release()

    # -- bidders ----------------------------------------------------------------------------------------

    async def bid(self, number: int, step: int, scheduled: float) -> None:
        self.tick.sent += 1
        self.step_totals[step].sent += 1
        try:
            async with self.slots:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    await self._place(number, step, scheduled)
                finally:
                    self.in_flight -= 1
        except asyncio.CancelledError:
            self._error(step, "CLIENT_GAVE_UP", "no answer within the retry budget after the window")
            raise

    async def _place(self, number: int, step: int, scheduled: float) -> None:
        lot = self.lot_order[self.next_lot]
        self.next_lot = (self.next_lot + 1) % len(self.lot_order)
        bidder, amount = lot.next_bid(self.rng)
        request = room_pb.PlaceBidRequest(
            request_id=f"bench-{self.plan.run_id}-w{self.plan.worker}-{number}",
            lot_id=lot.lot_id,
            max_amount=Money(amount_minor=amount, currency=CURRENCY),
        )
        metadata = self.identities.bidder(bidder)
        delay = FIRST_RETRY_DELAY_S
        attempt = 0
        while True:
            try:
                reply = await self._stub(number + attempt).PlaceBid(
                    request, metadata=metadata, timeout=self.plan.request_timeout_s
                )
                break
            except grpc.aio.AioRpcError as error:
                code = error.code()
                elapsed = time.monotonic() - scheduled
                if code in RETRYABLE and elapsed + delay < self.plan.retry_window_s:
                    if attempt == 0:
                        self.retried_bids += 1
                    attempt += 1
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_RETRY_DELAY_S)
                    continue
                info = error_info_of(error)
                reason = info.reason if info is not None else ""
                if code == grpc.StatusCode.FAILED_PRECONDITION and reason in REFUSALS:
                    self.tick.rejected += 1
                    self.step_totals[step].rejected += 1
                    self.rejected_latency.record_s(time.monotonic() - scheduled)
                    minimum = int(info.metadata.get("min_amount_minor", "0")) if info is not None else 0
                    lot.refused(bidder, reason, minimum)
                else:
                    self._error(step, f"{code.name}{':' + reason if reason else ''}", error.details() or "")
                return
        answered = time.monotonic()
        latency_s = answered - scheduled
        self.tick.acked += 1
        self.step_totals[step].acked += 1
        running = self.running_step
        if running is not None and running[1] <= answered < running[2]:
            self.step_totals[running[0]].acked_in_window += 1
        self.tick_bids.record_s(latency_s)
        self.step_bids[step].record_s(latency_s)
        self.acked_bids.setdefault(lot.lot_id, []).append(request.request_id)
        self.ack_times.setdefault(lot.lot_id, []).append(time.time())
        lot.observe(reply.lot_sequence, reply.price.amount_minor, reply.leader_id or None)

    async def schedule_bids(self, t0_mono: float) -> None:
        """Open loop: bid n of a step is due at step_start + n / rate; due bids are started at once.

        Ramp steps are separated by a pause in which the bids still in flight finish (bounded), so
        a step is not measured on the previous one's backlog; a step that acknowledged less than
        RAMP_GIVE_UP_BELOW of its target ends the ramp (faster steps could only do worse)."""
        tasks: set[asyncio.Task[None]] = set()
        number = 0
        step_start = t0_mono
        for step_index, step in enumerate(self.plan.steps):
            if step_index > 0:
                if tasks:
                    await asyncio.wait(set(tasks), timeout=RAMP_DRAIN_S)
                await asyncio.sleep(RAMP_PAUSE_S)
                previous = self.step_totals[step_index - 1]
                if (
                    previous.acked_in_window
                    < RAMP_GIVE_UP_BELOW * self.plan.steps[step_index - 1].rate * step.duration_s
                ):
                    break
                step_start = time.monotonic()
            total = int(step.rate * step.duration_s)
            backlog_limit = max(self.plan.concurrency, int(step.rate * self.plan.max_backlog_s))
            self.running_step = (step_index, step_start, step_start + step.duration_s)
            start_wall_ms = (time.time() + (step_start - time.monotonic())) * 1000
            self.step_windows_ms.append((start_wall_ms, start_wall_ms + step.duration_s * 1000))
            self.step_totals[step_index].started_s = round(step_start - t0_mono, 3)
            for n in range(total):
                due = step_start + n / step.rate
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if len(tasks) - self.in_flight > backlog_limit:
                    # Bids waiting for a free slot already cover `max_backlog_s` at this rate: the
                    # server has stopped keeping up, so do not pile up more work.
                    self.tick.not_sent += 1
                    self.step_totals[step_index].not_sent += 1
                    continue
                task = asyncio.create_task(self.bid(number, step_index, due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                number += 1
            wait = step_start + step.duration_s - time.monotonic()
            if wait > 0:  # the step's window lasts its full duration, whatever the last bid's time
                await asyncio.sleep(wait)
        budget = self.plan.retry_window_s + self.plan.request_timeout_s + 5
        if tasks:
            await asyncio.wait(tasks, timeout=budget)
        for task in tasks:  # still pending after the retry budget: give up on them
            task.cancel()

    # -- reporting --------------------------------------------------------------------------------------

    def _take_tick(self, second: int) -> Tick:
        tick = self.tick
        tick.second = second
        tick.in_flight = self.in_flight
        tick.bid_latency = self.tick_bids.take()
        tick.fanout = self.tick_fanout.take()
        self.tick = Tick(self.plan.worker, second + 1)
        return tick

    async def report_ticks(self, t0_mono: float) -> None:
        second = 0
        while True:
            wait = t0_mono + second + 1 - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self.results.put(("tick", self.plan.worker, self._take_tick(second)))
            second += 1

    def final(self) -> WorkerFinal:
        for totals, bids, fanout in zip(self.step_totals, self.step_bids, self.step_fanout, strict=True):
            totals.bid_latency = bids.encode() if bids.count else b""
            totals.fanout = fanout.encode() if fanout.count else b""
        return WorkerFinal(
            worker=self.plan.worker,
            steps=self.step_totals,
            acked_bids=self.acked_bids,
            ack_times=self.ack_times,
            rejected_latency=self.rejected_latency.encode() if self.rejected_latency.count else b"",
            error_kinds=dict(self.error_kinds),
            error_samples=self.error_samples,
            watch_streams=len(self.watch_groups),
            watch_reconnects=self.watch_reconnects,
            deliveries=self.deliveries,
            max_in_flight=self.max_in_flight,
            retried_bids=self.retried_bids,
        )

    # -- the whole life of the process -------------------------------------------------------------------

    async def run(self, control: Any) -> None:
        plan = self.plan
        options = (("grpc.use_local_subchannel_pool", 1),)  # one TCP connection per channel
        for _ in range(plan.channels_per_address):  # interleaved: the next stub is the next replica
            for address in plan.room_addresses:
                channel = grpc.aio.insecure_channel(address, options=options)
                self.channels.append(channel)
                self.stubs.append(room_grpc.RoomServiceStub(channel))
        watchers = [asyncio.create_task(self.watch(number, group)) for number, group in enumerate(self.watch_groups)]
        if not watchers:
            self.all_ready.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_ready.wait(), plan.ready_timeout_s)
            self.results.put(("ready", plan.worker, self.ready_streams, len(self.watch_groups)))
            loop = asyncio.get_running_loop()
            message = await loop.run_in_executor(None, _get, control, GO_TIMEOUT_S)
            if message is None or message[0] != "go":
                return
            t0_wall: float = message[1]
            self.tick = Tick(plan.worker, 0)  # the window's first second starts clean (no set-up deliveries)
            self.tick_fanout.take()
            t0_mono = time.monotonic() + (t0_wall - time.time())
            self.t0_wall_ms = t0_wall * 1000
            ticker = asyncio.create_task(self.report_ticks(t0_mono))
            await self.schedule_bids(t0_mono)
            await asyncio.sleep(plan.drain_s)  # the last batches reach the watchers
            self.stopping = True
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            self.results.put(("tick", plan.worker, self._take_tick(self.tick.second)))
            self.results.put(("final", plan.worker, self.final()))
        finally:
            self.stopping = True
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            for channel in self.channels:
                await channel.close()


def _get(control: Any, timeout_s: float) -> Any:
    try:
        return control.get(timeout=timeout_s)
    except queue.Empty:
        return None


def worker_main(plan: WorkerPlan, control: Any, results: Any) -> None:
    """The client process's entry point (multiprocessing, spawn)."""
    garbage.set_thresholds_from_environment()  # a client's own collector pauses would count as the room's
    try:
        event_loops.run(Worker(plan, results).run(control))
    except BaseException:
        results.put(("error", plan.worker, traceback.format_exc()))
