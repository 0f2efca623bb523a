"""One benchmark run, from an empty cluster to the JSON and the plot.

1. The cluster: `gavel up --no-seed` on free ports under var/bench-<ts>/ (or a running one with
   --target), plus the extra room replicas, whose partition leases are left to balance.
2. Set-up, timed but outside the measured window: the lots are created, published and opened
   through the catalog and the room (gavel_bench.fixture); the client processes start and open
   their watch streams, each proven live by a first message per lot.
3. The measured window: every client process bids open-loop at its share of the rate and
   reports each second; this process prints a progress line per second and, for the failover
   run, kills and restarts a room replica on the period.
4. After the window: the bids in flight finish (or run out of retry budget), the watchers get the
   last batches, the client processes stop.
5. The echo ceiling, with the same client processes count and concurrency (gavel_bench.echo),
   while the cluster idles; then the lots' event logs are read back to count lost and duplicated
   bids.

Everything started here is stopped in `finally` (SIGINT, then SIGKILL), also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import multiprocessing
import os
import queue
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gavel.common.v1.money_pb2 import Money
from gavel.room.v1 import room_service_pb2 as room_pb
from gavel_bench.cluster import Endpoints, LocalCluster, RoomReplica, room_replicas, target_endpoints
from gavel_bench.cpu import CpuMeter, MemoryMeter, Tracked, cluster_processes
from gavel_bench.echo import EchoResult, measure_echo_ceiling
from gavel_bench.eventlog import audit, logged_bid_ids
from gavel_bench.failover import Kill, failover_gaps, read_leases
from gavel_bench.fixture import CURRENCY, PreparedLot, prepare_lots, settle
from gavel_bench.histograms import Latency, merged
from gavel_bench.identities import Identities, bidders_of_lot
from gavel_bench.machine import code_revision, machine_info
from gavel_bench.processes import stop_child, stop_popen
from gavel_bench.profile import find_room_process
from gavel_bench.profile import start as start_profile
from gavel_bench.profile import summarize as summarize_profile
from gavel_bench.report import write_json, write_plot
from gavel_bench.workload import (
    RAMP_DRAIN_S,
    RAMP_PAUSE_S,
    WATCH_GROUP,
    Step,
    Tick,
    WorkerFinal,
    WorkerPlan,
    worker_main,
)

PROFILE_DELAY_S = 2.0  # the profile starts once the load has settled in
PROFILE_GRACE_S = 60.0
KEEPS_UP = 0.95  # a ramp step "keeps up" when at least this share of its target rate is acknowledged
LATE_TICK_S = 3.0  # print a second's line without a worker that has not reported this long after it
BALANCE_TIMEOUT_S = 45.0


def _ready_timeout_s(rooms: int) -> float:
    """How long the watch streams get to go live: the room reads every watched lot's log first."""
    return 60.0 + rooms / 20


@dataclass
class RunOptions:
    rooms: int = 100
    watchers: int = 5
    rate: float = 500.0
    duration_s: float = 30.0
    ramp: tuple[float, ...] = ()  # target rates, each for duration_s (one set-up, one cluster)
    room_replicas: int = 1
    kill_every_s: float | None = None
    kill_nats_every_s: float | None = None  # SIGKILL the started cluster's nats-server (gavel up restarts it)
    target: bool = False
    catalog: str | None = None
    room_addresses: list[str] | None = None
    nats_url: str | None = None
    keys_dir: str | None = None
    room_database_url: str | None = None
    client_processes: int = 2
    concurrency: int = 128
    channels_per_address: int = 2
    echo_duration_s: float = 5.0
    setup_concurrency: int = 32
    request_timeout_s: float = 5.0
    retry_window_s: float = 20.0
    drain_s: float = 2.0
    json_path: Path | None = None
    plot_path: Path | None = None
    var_root: Path = field(default_factory=lambda: Path("var"))
    seed: int = 1
    profile_room_s: float | None = None  # py-spy the cluster's room replica this long during the window
    command: str = ""

    @property
    def rates(self) -> tuple[float, ...]:
        return self.ramp or (self.rate,)


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def split_lots(lots: Sequence[PreparedLot], parts: int) -> list[list[PreparedLot]]:
    """Contiguous, nearly equal shares (a watcher's ten lots stay in one process)."""
    size, extra = divmod(len(lots), parts)
    shares, start = [], 0
    for part in range(parts):
        end = start + size + (1 if part < extra else 0)
        shares.append(list(lots[start:end]))
        start = end
    return shares


class Progress:
    """Merges the client processes' per-second ticks, prints one line per second, keeps the series."""

    def __init__(self, workers: int, say: Callable[[str], None]) -> None:
        self.workers = workers
        self.say = say
        self.ticks: dict[int, list[Tick]] = {}
        self.printed = -1
        self.rows: dict[int, dict[str, Any]] = {}
        self.bids_so_far = Latency()
        self.fanout_so_far = Latency()
        self.totals = {"sent": 0, "acked": 0, "rejected": 0, "errors": 0}

    def add(self, tick: Tick) -> None:
        self.ticks.setdefault(tick.second, []).append(tick)
        row = self.rows.setdefault(
            tick.second,
            {
                "second": tick.second,
                "sent": 0,
                "acked": 0,
                "rejected": 0,
                "errors": 0,
                "not_sent": 0,
                "deliveries": 0,
                "in_flight": 0,
                "_bids": Latency(),
                "_fanout": Latency(),
            },
        )
        for key in ("sent", "acked", "rejected", "errors", "not_sent", "deliveries", "in_flight"):
            row[key] += getattr(tick, key)
        for key in ("sent", "acked", "rejected", "errors"):
            self.totals[key] += getattr(tick, key)
        bids, fanout = Latency.decode(tick.bid_latency), Latency.decode(tick.fanout)
        row["_bids"].add(bids)
        row["_fanout"].add(fanout)
        self.bids_so_far.add(bids)
        self.fanout_so_far.add(fanout)

    def flush(self, t0: float, force: bool = False) -> None:
        """Print every second that all workers reported (or that is LATE_TICK_S overdue)."""
        while True:
            second = self.printed + 1
            arrived = self.ticks.get(second, [])
            overdue = time.time() > t0 + second + 1 + LATE_TICK_S
            if not arrived or (len(arrived) < self.workers and not (overdue or force)):
                return
            self.printed = second
            row = self.rows[second]
            so_far = self.bids_so_far
            fanout = self.fanout_so_far
            self.say(
                f"  {second + 1:>4}s  sent {row['sent']:>6}  acked {row['acked']:>6}  refused {row['rejected']:>5}"
                f"  errors {row['errors']:>4}  in flight {row['in_flight']:>5}"
                f" | PlaceBid so far p50 {_ms(so_far.percentile_ms(50))} p99 {_ms(so_far.percentile_ms(99))}"
                f" | fanout p50 {_ms(fanout.percentile_ms(50))} p99 {_ms(fanout.percentile_ms(99))}"
                f" | watcher deliveries {row['deliveries']:>6}"
            )

    def series(self) -> list[dict[str, Any]]:
        rows = []
        for second in sorted(self.rows):
            row = dict(self.rows[second])
            bids, fanout = row.pop("_bids"), row.pop("_fanout")
            row["bid_p50_ms"], row["bid_p99_ms"] = bids.percentile_ms(50), bids.percentile_ms(99)
            row["fanout_p50_ms"], row["fanout_p99_ms"] = fanout.percentile_ms(50), fanout.percentile_ms(99)
            rows.append(row)
        return rows


class StepCpu:
    """CPU of the tracked processes second by second (one CpuMeter per second of the run), so each
    ramp step gets its own cpu_percent once its start is known: the client processes report when
    each step started (after the previous step's drain) only at the end."""

    def __init__(self, tracked: Sequence[Tracked]) -> None:
        self.tracked = list(tracked)
        self.seconds: list[tuple[float, float, dict[str, float]]] = []  # (wall start, wall end, shares)
        self._meter: CpuMeter | None = None
        self._began = 0.0

    def poll(self, now: float) -> None:
        """Close the current second (if a second has passed) and start the next."""
        if self._meter is not None and now < self._began + 1.0:
            return
        self.stop(now)
        self._meter, self._began = CpuMeter(self.tracked), now
        self._meter.start()

    def stop(self, now: float) -> None:
        if self._meter is not None:
            self.seconds.append((self._began, now, self._meter.stop()))
            self._meter = None

    def share(self, start: float, end: float) -> dict[str, float] | None:
        """Each process's CPU over [start, end] (wall clock), in % of one CPU: the metered seconds
        weighted by how much of each lies inside the interval."""
        weights: dict[str, float] = {}
        totals: dict[str, float] = {}
        for began, ended, shares in self.seconds:
            overlap = min(ended, end) - max(began, start)
            if overlap <= 0:
                continue
            for name, percent in shares.items():
                totals[name] = totals.get(name, 0.0) + percent * overlap
                weights[name] = weights.get(name, 0.0) + overlap
        if not totals:
            return None
        return {name: round(totals[name] / weights[name], 1) for name in totals}


def _step_window(index: int, duration_s: float, finals: Sequence[WorkerFinal]) -> tuple[float, float] | None:
    """Seconds after t0 from the first client's start of the step to the last one's end (None: not run)."""
    starts = [final.steps[index].started_s for final in finals]
    begun = [start for start in starts if start is not None]
    if not begun:
        return None
    return min(begun), max(begun) + duration_s


def _ms(value: float | None) -> str:
    return "   -   " if value is None else f"{value:6.1f} ms"


def _wait_balanced(nats_url: str, replicas: int, say: Callable[[str], None]) -> dict[str, int]:
    """Wait (bounded) until every replica holds partitions and all are held: the load starts balanced."""
    deadline = time.monotonic() + BALANCE_TIMEOUT_S
    share: dict[str, int] = {}
    while time.monotonic() < deadline:
        snapshot = asyncio.run(read_leases(nats_url))
        share = snapshot.share()
        if len(share) >= replicas and len(snapshot.holders) == snapshot.partition_count:
            fair = -(-snapshot.partition_count // replicas)
            if max(share.values()) <= fair:
                return share
        time.sleep(0.5)
    say(f"  partitions not balanced after {BALANCE_TIMEOUT_S:.0f} s: {share}")
    return share


def _echo_payload(lots: Sequence[PreparedLot], identities: Identities, run_id: str) -> tuple[bytes, Any]:
    """A real PlaceBidRequest and a bidder's metadata: the echo carries the bid's bytes."""
    lot = lots[0]
    request = room_pb.PlaceBidRequest(
        request_id=f"bench-{run_id}-w0-123456",
        lot_id=lot.lot_id,
        max_amount=Money(amount_minor=123_400, currency=CURRENCY),
    )
    return request.SerializeToString(), identities.bidder(bidders_of_lot(run_id, lot.index)[0])


def _step_summary(index: int, rate: float, duration_s: float, finals: Sequence[WorkerFinal]) -> dict[str, Any]:
    """One step's figures: bids by the step they were scheduled in; bids/s = acknowledgements that
    arrived while the step ran, over its duration."""
    totals = [final.steps[index] for final in finals]
    acked_in_window = sum(t.acked_in_window for t in totals)
    bids = merged(t.bid_latency for t in totals)
    fanout = merged(t.fanout for t in totals)
    return {
        "target_rate": rate,
        "duration_s": duration_s,
        "skipped": all(t.started_s is None for t in totals),
        "bids_per_s": round(acked_in_window / duration_s, 1),
        "bids_sent": sum(t.sent for t in totals),
        "bids_acknowledged": sum(t.acked for t in totals),
        "bids_refused": sum(t.rejected for t in totals),
        "bid_errors": sum(t.errors for t in totals),
        "bids_not_sent": sum(t.not_sent for t in totals),
        "bid_rpc_ms": bids.summary(),
        "fanout_ms": fanout.summary(),
        "_bids": bids,
        "_fanout": fanout,
    }


def _public(step: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in step.items() if not key.startswith("_")}


def _chosen_step(steps: Sequence[dict[str, Any]]) -> int:
    """The step reported at the top level: for a ramp, the fastest that kept up with its target."""
    if len(steps) == 1:
        return 0
    run = [i for i, step in enumerate(steps) if not step.get("skipped")]
    keeping_up = [i for i in run if steps[i]["bids_per_s"] >= KEEPS_UP * steps[i]["target_rate"]]
    candidates = keeping_up or run or range(len(steps))
    return max(candidates, key=lambda i: steps[i]["bids_per_s"])


def run(options: RunOptions, say: Callable[[str], None] = print) -> dict[str, Any]:
    started_at = _utc_now()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_id = f"{stamp.replace('-', '')}{secrets.token_hex(2)}"  # lot ids, bid ids and subjects: [a-z0-9-]
    machine = machine_info()
    rates = options.rates
    window_s = options.duration_s * len(rates)
    processes = options.client_processes
    cluster: LocalCluster | None = None
    replicas: list[RoomReplica] = []
    workers: list[Any] = []
    profiler: subprocess.Popen[bytes] | None = None
    profile_path: Path | None = None
    setup_s: dict[str, float] = {}
    var_dir = (options.var_root / f"bench-{stamp}").resolve()
    try:
        began = time.perf_counter()
        if options.target:
            endpoints = target_endpoints(options.catalog, options.room_addresses, options.nats_url, options.keys_dir)
            base_env = dict(os.environ)
            room_database_url = options.room_database_url
            say(f"• driving the running cluster: catalog {endpoints.catalog}, room {', '.join(endpoints.rooms)}")
        else:
            say(f"• starting `gavel up --no-seed` on free ports, var dir {var_dir}")
            cluster = LocalCluster(var_dir)
            cluster.start()
            endpoints = cluster.endpoints()
            base_env = cluster.env
            room_database_url = options.room_database_url or cluster.room_database_url
        setup_s["cluster"] = time.perf_counter() - began

        partition_share: dict[str, int] = {}
        if options.room_replicas > 1:
            if not room_database_url:
                raise SystemExit("gavel bench: extra room replicas on a --target cluster need --room-database-url")
            began = time.perf_counter()
            replicas = room_replicas(
                options.room_replicas - 1,
                var_dir,
                base_env,
                endpoints.nats_url,
                room_database_url,
                endpoints.keys_dir,
            )
            say(f"• starting {len(replicas)} extra room replica(s)")
            for replica in replicas:
                replica.start()
            for replica in replicas:
                replica.wait_serving()
            partition_share = _wait_balanced(endpoints.nats_url, options.room_replicas, say)
            endpoints = replace(endpoints, rooms=endpoints.rooms + tuple(r.address for r in replicas))
            setup_s["room_replicas"] = time.perf_counter() - began
            say(f"  partitions per replica: {partition_share}")

        identities = Identities(endpoints.keys_dir, run_id)
        say(f"• creating {options.rooms} rooms through the catalog and opening them (crier)")
        prepared = asyncio.run(
            prepare_lots(endpoints, identities, options.rooms, concurrency=options.setup_concurrency, say=say)
        )
        setup_s.update(prepared.seconds)
        setup_s["settle"] = asyncio.run(settle(endpoints.nats_url, _ready_timeout_s(options.rooms), say))

        began = time.perf_counter()
        context = multiprocessing.get_context("spawn")  # fork would copy this process's gRPC state
        results = context.Queue()
        controls = []
        per_worker_steps = tuple(Step(rate / processes, options.duration_s) for rate in rates)
        shares = split_lots(prepared.lots, processes)
        for number, share in enumerate(shares):
            plan = WorkerPlan(
                worker=number,
                run_id=run_id,
                keys_dir=endpoints.keys_dir,
                room_addresses=endpoints.rooms,
                lots=tuple(share),
                watchers_per_room=options.watchers,
                steps=per_worker_steps,
                concurrency=options.concurrency,
                request_timeout_s=options.request_timeout_s,
                retry_window_s=options.retry_window_s,
                drain_s=options.drain_s,
                channels_per_address=options.channels_per_address,
                seed=options.seed,
                ready_timeout_s=_ready_timeout_s(options.rooms),
            )
            control = context.Queue()
            worker = context.Process(
                target=worker_main, args=(plan, control, results), name=f"gavel-bench-client-{number}"
            )
            worker.start()
            workers.append(worker)
            controls.append(control)
        streams = sum(-(-len(share) // WATCH_GROUP) * options.watchers for share in shares)
        say(f"• {processes} client processes opening {streams} watch streams ({options.watchers} per room)")
        ready_streams = 0
        ready = 0
        deadline = time.monotonic() + _ready_timeout_s(options.rooms) + 60
        while ready < processes:
            try:
                message = results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError("the client processes did not get ready in time") from None
            if message[0] == "error":
                raise RuntimeError(f"client process {message[1]} failed:\n{message[2]}")
            if message[0] == "ready":
                ready += 1
                ready_streams += message[2]
        setup_s["watchers"] = time.perf_counter() - began
        say(f"  {ready_streams} of {streams} watch streams live in {setup_s['watchers']:.1f} s")

        say(
            f"• measured window: {window_s:.0f} s, target "
            + " → ".join(f"{rate:,.0f}" for rate in rates)
            + " bids/s"
            + (f", SIGKILL a room replica every {options.kill_every_s:g} s" if options.kill_every_s else "")
        )
        t0 = time.time() + 1.0
        for control in controls:
            control.put(("go", t0))
        progress = Progress(processes, say)
        profile_at = t0 + PROFILE_DELAY_S if options.profile_room_s else None
        tracked = cluster_processes(cluster.var_dir) if cluster is not None else []
        tracked += [Tracked(f"client-{n}", worker.pid) for n, worker in enumerate(workers)]
        tracked += [Tracked(f"extra-{r.replica_id}", r.process.pid) for r in replicas if r.process is not None]
        meter = CpuMeter(tracked)
        memory = MemoryMeter(tracked)
        nats_kills: list[float] = []
        nats_kill_at = t0 + options.kill_nats_every_s if options.kill_nats_every_s and cluster is not None else None
        step_cpu = StepCpu(tracked) if len(rates) > 1 else None
        meter_running = False
        cpu_percent: dict[str, float] | None = None
        finals: dict[int, WorkerFinal] = {}
        kills: list[Kill] = []
        kill_at = t0 + options.kill_every_s if options.kill_every_s and replicas else None
        pauses = (len(rates) - 1) * (RAMP_DRAIN_S + RAMP_PAUSE_S)
        deadline_wall = (
            t0 + window_s + pauses + options.retry_window_s + options.request_timeout_s + options.drain_s + 60
        )
        while len(finals) < processes and time.time() < deadline_wall:
            if not meter_running and cpu_percent is None and time.time() >= t0:
                meter.start()
                meter_running = True
            elif meter_running and time.time() >= t0 + window_s + pauses:
                cpu_percent, meter_running = meter.stop(), False
            if step_cpu is not None and time.time() >= t0:
                step_cpu.poll(time.time())
            if t0 <= time.time() <= t0 + window_s + pauses:
                memory.poll(time.time())
            if nats_kill_at is not None and cluster is not None and time.time() >= nats_kill_at:
                if nats_kill_at < t0 + window_s + pauses:
                    nats_kills.append(_kill_nats(cluster.var_dir, t0, say))
                    nats_kill_at += options.kill_nats_every_s or 0
                else:
                    nats_kill_at = None
            if kill_at is not None and time.time() >= kill_at:
                if kill_at < t0 + window_s + pauses:
                    kills.append(_kill_one(replicas, endpoints.nats_url, t0, say))
                    kill_at += options.kill_every_s or 0
                else:
                    kill_at = None
            if profile_at is not None and time.time() >= profile_at:
                profile_at = None
                profiler, profile_path = _start_profile(cluster, options, say)
            try:
                message = results.get(timeout=0.1)
            except queue.Empty:
                progress.flush(t0)
                continue
            if message[0] == "tick":
                progress.add(message[2])
            elif message[0] == "final":
                finals[message[1]] = message[2]
            elif message[0] == "error":
                raise RuntimeError(f"client process {message[1]} failed:\n{message[2]}")
            progress.flush(t0)
        progress.flush(t0, force=True)
        if meter_running:
            cpu_percent = meter.stop()
        if step_cpu is not None:
            step_cpu.stop(time.time())
        if len(finals) < processes:
            raise RuntimeError(f"only {len(finals)} of {processes} client processes reported their results")
        for worker in workers:
            stop_child(worker)
        worker_finals = [finals[number] for number in sorted(finals)]
        room_profile: dict[str, Any] | None = None
        if profiler is not None and profile_path is not None:
            try:
                profiler.wait(PROFILE_GRACE_S)
            except subprocess.TimeoutExpired:
                stop_popen(profiler, 5.0)
            if profile_path.exists():
                room_profile = {"raw": str(profile_path), **summarize_profile(profile_path)}

        # After the window, not before: the echo saturates the machine, and measured just before the
        # window it starved the idle cluster (a room heartbeat lapsed in the window's first seconds).
        say(f"• echo ceiling: raw grpc.aio unary echo, {processes} client processes x {options.concurrency} in flight")
        payload, metadata = _echo_payload(prepared.lots, identities, run_id)
        echo: EchoResult = measure_echo_ceiling(
            processes, options.concurrency, options.echo_duration_s, payload, metadata
        )
        say(f"  {echo.rps:,.0f} calls/s (p50 {echo.latency_ms['p50']} ms, p99 {echo.latency_ms['p99']} ms)")
        say("• reading every lot's event log back (JetStream ROOM_EVENTS, one subject per lot)")
        acknowledged: dict[str, list[str]] = {}
        ack_times: dict[str, list[float]] = {}
        for final in worker_finals:
            acknowledged.update(final.acked_bids)
            ack_times.update(final.ack_times)
        logged = asyncio.run(logged_bid_ids(endpoints.nats_url, [lot.lot_id for lot in prepared.lots]))
        found = audit(acknowledged, logged)
        say(f"  {found.bids_in_log} bids in the log; lost {found.lost}, duplicated {found.duplicated}")

        failover: dict[str, Any] | None = None
        if kills:
            snapshot = asyncio.run(read_leases(endpoints.nats_url))
            gaps = failover_gaps(kills, ack_times, snapshot.partition_count, t0 + window_s)
            measured = [gap for gap in gaps if gap is not None]
            failover = {
                "max": max(measured) if measured else None,
                "kills": [
                    {
                        "at_s": round(kill.at - t0, 2),
                        "replica": kill.replica_id,
                        "partitions_moved": len(kill.partitions),
                        "gap_s": gap,
                    }
                    for kill, gap in zip(kills, gaps, strict=True)
                ],
            }

        series = progress.series()
        steps = [_step_summary(i, rate, options.duration_s, worker_finals) for i, rate in enumerate(rates)]
        if step_cpu is not None:  # each ramp step's CPU, over its own window (the same meter, per second)
            for index, step in enumerate(steps):
                window = _step_window(index, options.duration_s, worker_finals)
                step["cpu_percent"] = step_cpu.share(t0 + window[0], t0 + window[1]) if window else None
        step_starts = [step.started_s for step in worker_finals[0].steps]
        chosen = steps[_chosen_step(steps)]
        refused_latency = merged(final.rejected_latency for final in worker_finals)
        error_kinds: dict[str, int] = {}
        for final in worker_finals:
            for kind, count in final.error_kinds.items():
                error_kinds[kind] = error_kinds.get(kind, 0) + count
        result: dict[str, Any] = {
            "benchmark": "cluster",
            "rooms": options.rooms,
            "watchers_per_room": options.watchers,
            "target_rate": chosen["target_rate"],
            "duration_s": options.duration_s,
            "bids_per_s": chosen["bids_per_s"],
            "bids_acknowledged": sum(step["bids_acknowledged"] for step in steps),
            "bids_lost": found.lost,
            "bids_duplicated": found.duplicated,
            "bid_rpc_ms": chosen["bid_rpc_ms"],
            "fanout_ms": chosen["fanout_ms"],
            "failover_s": failover,
            "memory": memory.summary(chosen["bids_per_s"] or 0.0),
            "nats_kills_at_s": nats_kills,
            "echo_ceiling_rps": echo.rps,
            "bids_per_s_to_echo_ceiling": round(chosen["bids_per_s"] / echo.rps, 3) if echo.rps else None,
            "bids_sent": sum(step["bids_sent"] for step in steps),
            "bids_refused": sum(step["bids_refused"] for step in steps),
            "bid_errors": sum(step["bid_errors"] for step in steps),
            "bids_not_sent": sum(step["bids_not_sent"] for step in steps),
            "bids_retried": sum(final.retried_bids for final in worker_finals),
            "bids_in_log": found.bids_in_log,
            "refused_rpc_ms": refused_latency.summary(),
            "error_kinds": error_kinds,
            "error_samples": [sample for final in worker_finals for sample in final.error_samples][:10],
            "lost_examples": found.lost_examples,
            "duplicated_examples": found.duplicated_examples,
            "watch_streams": sum(final.watch_streams for final in worker_finals),
            "watcher_deliveries": sum(final.deliveries for final in worker_finals),
            "watch_reconnects": sum(final.watch_reconnects for final in worker_finals),
            "room_replicas": options.room_replicas,
            "partitions_per_replica": partition_share or None,
            "client_processes": processes,
            "client_concurrency": options.concurrency,
            "max_in_flight_per_process": max(final.max_in_flight for final in worker_finals),
            "echo": {
                "rps": echo.rps,
                "processes": echo.processes,
                "concurrency": echo.concurrency,
                "duration_s": echo.duration_s,
                "latency_ms": echo.latency_ms,
                "cpu_percent": echo.cpu_percent,
            },
            "setup_s": {name: round(seconds, 2) for name, seconds in setup_s.items()},
            "cpu_percent": cpu_percent,
            "room_profile": room_profile,
            "sales": prepared.sales,
            "ramp": [_public(step) for step in steps] if len(steps) > 1 else None,
            "per_second": series,
            "cluster": "target" if options.target else "started by gavel bench (gavel up --no-seed)",
            "machine": machine,
            "code_revision": code_revision(),
            "started_at": started_at,
            "command": options.command,
        }
        title = (
            f"gavel bench: {options.rooms:,} rooms x {options.watchers} watchers, target "
            + "/".join(f"{rate:,.0f}" for rate in rates)
            + f" bids/s, {options.room_replicas} room replica(s) — {started_at}"
        )
        if options.json_path is not None:
            write_json(options.json_path, result)
            say(f"• wrote {options.json_path}")
        if options.plot_path is not None:
            markers = [(kill.at - t0, f"kill {kill.replica_id}") for kill in kills]
            if len(rates) > 1:
                markers += [
                    (start, f"{rate:,.0f}/s")
                    for start, rate in zip(step_starts, rates, strict=True)
                    if start is not None
                ]
            last_start = max((start for start in step_starts if start is not None), default=0.0)
            write_plot(
                options.plot_path,
                title,
                {
                    f"PlaceBid at {chosen['target_rate']:,.0f}/s (acknowledged), from its scheduled send": chosen[
                        "_bids"
                    ].distribution(),
                    f"fan-out at {chosen['target_rate']:,.0f}/s: bid decided → watcher received": chosen[
                        "_fanout"
                    ].distribution(),
                },
                series,
                markers,
                last_start + options.duration_s,
            )
            say(f"• wrote {options.plot_path}")
        return result
    finally:
        if profiler is not None:
            stop_popen(profiler, 5.0)
        for worker in workers:
            stop_child(worker, grace_s=5.0)
        for replica in replicas:
            replica.stop()
        if cluster is not None:
            say("• stopping the cluster")
            cluster.stop()


def _start_profile(
    cluster: LocalCluster | None, options: RunOptions, say: Callable[[str], None]
) -> tuple[subprocess.Popen[bytes] | None, Path | None]:
    """py-spy on the cluster's room replica for `profile_room_s` (only a cluster started here: its pid is known)."""
    if cluster is None:
        say("  (no room profile: only a cluster started by gavel bench can be profiled)")
        return None, None
    pid = find_room_process(cluster.var_dir)
    base = options.json_path or cluster.var_dir / "bench.json"
    raw_path = base.with_name(base.stem + ".room-profile.txt")
    profiler = start_profile(pid, options.profile_room_s or 0, raw_path) if pid else None
    if profiler is None:
        say("  (no room profile: py-spy is not installed or the room process was not found)")
        return None, None
    say(f"  py-spy is sampling the room replica (pid {pid}) for {options.profile_room_s:g} s → {raw_path}")
    return profiler, raw_path


def _kill_nats(var_dir: Path, t0: float, say: Callable[[str], None]) -> float:
    """SIGKILL the cluster's embedded nats-server (its pid from `gavel up`'s status file); `gavel up`
    starts it again. Returns when, in seconds from the window's start."""
    status = json.loads((var_dir / "run" / "gavel-up.json").read_text())
    pid = status["nats-server"]["pid"]
    if pid:
        os.kill(pid, signal.SIGKILL)
    at = time.time() - t0
    say(f"  SIGKILL nats-server (pid {pid}) at {at:.1f} s")
    return round(at, 2)


def _kill_one(replicas: Sequence[RoomReplica], nats_url: str, t0: float, say: Callable[[str], None]) -> Kill:
    """SIGKILL the extra replica holding the most partitions (a restarted one may not have taken its
    share back yet) and start it again at once; the partitions it held are the ones that move."""
    snapshot = asyncio.run(read_leases(nats_url))
    replica = max(replicas, key=lambda r: len(snapshot.held_by(r.replica_id)))
    held = snapshot.held_by(replica.replica_id)
    at = time.time()
    replica.kill()
    replica.start()
    say(f"  ✗ {at - t0:6.1f}s SIGKILL {replica.replica_id} ({len(held)} partitions); restarted")
    return Kill(at, replica.replica_id, held)


__all__ = ["Endpoints", "RunOptions", "run"]
