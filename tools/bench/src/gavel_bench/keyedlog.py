"""`gavel bench keyedlog`: the shared keyed log (gavel_kit.keyedlog) alone against its own nats-server.

    gavel bench keyedlog --json docs/benchmarks/keyedlog.json
    gavel bench keyedlog --rates 2000,5000,10000,20000 --hot-rates 2000,5000 --seconds 5
    gavel bench keyedlog --layout partitions        (a subject per partition: an atomic batch per append)
    gavel bench keyedlog --layout partitions --atomic-from 1000000   (... concurrent publishes, no batch)

No room, no gRPC: the library with a small engine (gavel_kit.keyedlog.sample: a bid must beat the
standing price) on a real nats-server with `sync_interval: always` (gavel_kit.natsserver, the
cluster's config), store under --var-dir. Decisions arrive open-loop (decision n is due at
n / rate whatever happened before; its latency runs from that due time to its answer, so a stall
shows as latency, not as a lower rate), spread over --keys keys in --partitions partitions, all
owned by this process, then on ONE hot key. --layout: `writers` (default: one message per append
on the writer's subject, partitions fenced by claims) or `partitions` (a subject per partition).
A share of the bids is too low on purpose (refused: refusals are logged too). Each run reports
decisions/s answered, p50/p99/p99.9, appends, decisions, partitions and messages per append, and the
CPU of nats-server and of this process (100 = one CPU). After the runs every answered accepted bid
is looked for in the log (lost = answered but absent).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats

from gavel_bench.cpu import CpuMeter, Tracked
from gavel_bench.histograms import Latency
from gavel_bench.machine import code_revision, machine_info
from gavel_bench.ownserver import own_nats_server
from gavel_kit.keyedlog import KeyedLog, LogConfig
from gavel_kit.keyedlog.history import partition_entries
from gavel_kit.keyedlog.jetstream import JetStreamLogStore, LogLayout, ensure_log_streams
from gavel_kit.keyedlog.sample import Bid, BidBookEngine, Book, Peek, Placed, Standing
from gavel_kit.keyedlog.writers import WriterLogStore

LAYOUT = LogLayout("BENCH_KEYED_LOG", "bench.keyed", "BENCH_KEYED_SNAPSHOTS", "bench.keyedsnap")
RATES = (2_000.0, 5_000.0, 10_000.0, 20_000.0)
HOT_RATES = (2_000.0, 5_000.0)
SECONDS = 5.0
WARMUP_S = 1.0
KEYS = 1_000
PARTITIONS = 64
REFUSED_SHARE = 0.1
TICK_S = 0.001
CHECKPOINT_EVERY = 10_000  # the library's default
DRAIN_S = 30.0

Log = KeyedLog[Book, Bid | Peek, Placed, Standing]


@dataclass
class Run:
    """One open-loop run's counters."""

    name: str
    rate: float
    keys: int
    latency: Latency = field(default_factory=Latency)
    answered: int = 0
    refused: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    acknowledged: list[str] = field(default_factory=list)  # accepted command ids, for the audit


async def _drive(log: Log, run: Run, seconds: float, prefix: str, amounts: dict[str, int], record: bool) -> float:
    """Submit `run.rate` decisions/s for `seconds`; returns when all are answered (or DRAIN_S).
    Each run has keys of its own (named after it), shared by its warm-up."""
    loop = asyncio.get_running_loop()
    keys = [f"{run.name}-{n}" for n in range(run.keys)]
    refuse_every = round(1 / REFUSED_SHARE) if REFUSED_SHARE > 0 else 0
    outstanding = [0]
    drained = loop.create_future()
    submitted = 0
    began = loop.time()

    def reply_for(due: float, command_id: str) -> Callable[[Standing | None, BaseException | None], None]:
        def reply(answer: Standing | None, error: BaseException | None) -> None:
            outstanding[0] -= 1
            if record:
                if error is None:
                    run.answered += 1
                    run.latency.record_s(loop.time() - due)
                    run.acknowledged.append(command_id)
                elif getattr(error, "reason", "") == "BID_TOO_LOW":
                    run.refused += 1
                    run.latency.record_s(loop.time() - due)
                else:
                    kind = type(error).__name__
                    run.errors[kind] = run.errors.get(kind, 0) + 1
            if outstanding[0] == 0 and stopped[0] and not drained.done():
                drained.set_result(None)

        return reply

    stopped = [False]
    while True:
        now = loop.time()
        elapsed = now - began
        if elapsed >= seconds:
            break
        due_count = int(elapsed * run.rate)
        while submitted < due_count:
            key = keys[submitted % len(keys)]
            submitted += 1
            command_id = f"{prefix}-{submitted}"
            if refuse_every and submitted % refuse_every == 0:
                amount = 1  # below any standing price once the key has a bid: refused (and logged)
            else:
                amount = amounts[key] = amounts.get(key, 0) + 1
            outstanding[0] += 1
            command = Bid(f"bidder-{submitted % 500}", amount)
            log.submit_nowait(key, command_id, command_id, command, reply_for(began + submitted / run.rate, command_id))
        await asyncio.sleep(TICK_S)
    elapsed = loop.time() - began
    stopped[0] = True
    if outstanding[0] > 0:
        try:
            await asyncio.wait_for(drained, DRAIN_S)
        except TimeoutError:
            run.errors["not answered"] = outstanding[0]
    return elapsed


async def _measure_run(
    log: Log,
    store: JetStreamLogStore | WriterLogStore,
    name: str,
    rate: float,
    keys: int,
    seconds: float,
    tracked: Sequence[Tracked],
    say: Callable[[str], None],
    warmup_s: float = WARMUP_S,
) -> tuple[dict[str, Any], Run]:
    amounts: dict[str, int] = {}
    if warmup_s > 0:
        await _drive(log, Run(name, rate, keys), warmup_s, f"{name}-warm", amounts, record=False)
    run = Run(name, rate, keys)
    stats, store_stats = log.stats, store.stats
    physical_before = store_stats.messages
    before = (stats.appends, stats.messages, stats.entries, stats.bytes, stats.fenced, stats.retried, stats.snapshots)
    meter = CpuMeter(tracked)
    meter.start()
    elapsed = await _drive(log, run, seconds, name, amounts, record=True)
    cpu = meter.stop()
    after = (stats.appends, stats.messages, stats.entries, stats.bytes, stats.fenced, stats.retried, stats.snapshots)
    appends, messages, entries, data, fenced, retried, snapshots = (
        now - then for now, then in zip(after, before, strict=True)
    )
    decided = run.answered + run.refused
    latency = run.latency.summary()
    server_cpu = cpu.get("nats-server")
    row = {
        "run": name,
        "target_per_s": rate,
        "keys": keys,
        "decisions_per_s": round(decided / elapsed, 1),
        "accepted": run.answered,
        "refused": run.refused,
        "errors": run.errors,
        "latency_ms": latency,
        "appends": appends,
        "decisions_per_append": round(entries / appends, 1) if appends else None,
        "partitions_per_append": round(messages / appends, 2) if appends else None,
        "messages_per_append": round((store_stats.messages - physical_before) / appends, 2) if appends else None,
        "bytes_per_append": round(data / appends) if appends else None,
        "fenced": fenced,
        "retried": retried,
        "snapshots_written": snapshots,
        "cpu_percent": cpu,
        "server_us_per_decision": (
            round(server_cpu * 10_000 / (decided / elapsed), 1) if server_cpu and decided else None
        ),
        "store_outcomes": dict(store_stats.outcomes),
    }
    say(
        f"• {name}: {row['decisions_per_s']:,.0f} decisions/s (target {rate:,.0f}), p50 {latency['p50']} ms, "
        f"p99 {latency['p99']} ms, p99.9 {latency['p99.9']} ms; per append {row['decisions_per_append']} "
        f"decisions, {row['partitions_per_append']} partitions, {row['messages_per_append']} messages; "
        f"{snapshots} snapshots; "
        f"errors {sum(run.errors.values())}; CPU " + ", ".join(f"{k} {v:.0f} %" for k, v in cpu.items())
    )
    return row, run


async def measure(
    nats_url: str,
    rates: Sequence[float],
    hot_rates: Sequence[float],
    seconds: float,
    keys: int,
    partitions: int,
    atomic_from: int,
    tracked: Sequence[Tracked],
    say: Callable[[str], None] = print,
    warmup_s: float = WARMUP_S,
    checkpoint_every: int = CHECKPOINT_EVERY,
    layout: str = "writers",
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Every run in turn on one log; then the audit of what was acknowledged."""
    nc = await nats.connect(nats_url, name="gavel-bench-keyedlog", max_reconnect_attempts=0)
    try:
        await ensure_log_streams(nc.jetstream(), LAYOUT)
        store = (
            WriterLogStore(nc, LAYOUT, writer="bench")
            if layout == "writers"
            else JetStreamLogStore(nc, LAYOUT, atomic_from=atomic_from)
        )
        log: Log = KeyedLog(
            BidBookEngine(),
            store,
            partitions=partitions,
            writer="bench",
            clock=lambda: time.time_ns() // 1_000_000,
            config=LogConfig(max_pending=1_000_000, checkpoint_every_entries=checkpoint_every or 2**62),
        )
        log.start()
        for partition in range(partitions):
            await log.open(partition)
        rows, runs = [], []
        plan = [(f"spread-{int(rate)}", rate, keys) for rate in rates] + [
            (f"hot-{int(rate)}", rate, 1) for rate in hot_rates
        ]
        for name, rate, run_keys in plan:
            row, run = await _measure_run(log, store, name, rate, run_keys, seconds, tracked, say, warmup_s)
            rows.append(row)
            runs.append(run)
        await log.stop()
        audit = await _audit(store, partitions, runs)
        say(f"• audit: {audit['acknowledged']:,} accepted decisions answered, {audit['lost']} not in the log")
        return rows, audit
    finally:
        await nc.close()


async def _audit(store: JetStreamLogStore | WriterLogStore, partitions: int, runs: Sequence[Run]) -> dict[str, int]:
    logged: set[str] = set()
    for partition in range(partitions):
        logged.update(e.command_id for e in await partition_entries(store, partition) if e.accepted)
    acknowledged = [cid for run in runs for cid in run.acknowledged]
    return {"acknowledged": len(acknowledged), "lost": sum(1 for cid in acknowledged if cid not in logged)}


def run(
    rates: Sequence[float],
    hot_rates: Sequence[float],
    seconds: float,
    keys: int,
    partitions: int,
    atomic_from: int,
    var_root: Path,
    command: str = "",
    say: Callable[[str], None] = print,
    checkpoint_every: int = CHECKPOINT_EVERY,
    layout: str = "writers",
) -> dict[str, Any]:
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    machine = machine_info()
    with own_nats_server(var_root, "bench-keyedlog", say) as (server, _, tracked):
        say(
            f"• keyed log ({layout} layout): {keys:,} keys in {partitions} partitions (all owned here)"
            + (f", atomic batch from {atomic_from} messages" if layout == "partitions" else "")
            + f"; {seconds:g} s per run after {WARMUP_S:g} s of warm-up"
        )
        rows, audit = asyncio.run(
            measure(
                server.url,
                rates,
                hot_rates,
                seconds,
                keys,
                partitions,
                atomic_from,
                tracked,
                say,
                checkpoint_every=checkpoint_every,
                layout=layout,
            )
        )
    return {
        "benchmark": "keyedlog",
        "keys": keys,
        "partitions": partitions,
        "layout": layout,
        "atomic_from": atomic_from,
        "checkpoint_every": checkpoint_every,
        "seconds_per_run": seconds,
        "refused_share": REFUSED_SHARE,
        "sync_interval": "always",
        "runs": rows,
        "audit": audit,
        "machine": machine,
        "code_revision": code_revision(),
        "started_at": started_at,
        "command": command,
    }


def _rates(text: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of decisions/s, e.g. 2000,5000") from None
    if any(rate <= 0 for rate in rates):
        raise argparse.ArgumentTypeError("rates must be positive")
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gavel bench keyedlog", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", type=_rates, default=RATES, help="open-loop rates over many keys")
    parser.add_argument("--hot-rates", type=_rates, default=HOT_RATES, help="open-loop rates on one key ('' for none)")
    parser.add_argument("--seconds", type=float, default=SECONDS, help="measured seconds per run (default 5)")
    parser.add_argument("--keys", type=int, default=KEYS, help="keys of the spread runs (default 1000)")
    parser.add_argument("--partitions", type=int, default=PARTITIONS, help="partitions, all owned here (default 64)")
    parser.add_argument(
        "--atomic-from", type=int, default=2, help="messages from which a group is one atomic batch (default 2)"
    )
    parser.add_argument("--layout", choices=("writers", "partitions"), default="writers", help="see above")
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=CHECKPOINT_EVERY,
        help="entries of a partition between checkpoints (default 10000; 0: none during the runs)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    parser.add_argument("--var-dir", type=Path, default=Path("var"), help="the temporary store goes under it")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.keys <= 0 or args.partitions <= 0:
        parser.error("--seconds, --keys and --partitions must be positive")
    given = list(sys.argv[1:] if argv is None else argv)
    command = shlex.join(["gavel", "bench", "keyedlog", *given])
    try:
        result = run(
            args.rates,
            args.hot_rates,
            args.seconds,
            args.keys,
            args.partitions,
            args.atomic_from,
            args.var_dir,
            command,
            checkpoint_every=args.checkpoint_every,
            layout=args.layout,
        )
    except KeyboardInterrupt:
        print("gavel bench keyedlog: interrupted; the nats-server it started was stopped", file=sys.stderr)
        return 130
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"• wrote {args.json}")
    return 1 if result["audit"]["lost"] else 0
