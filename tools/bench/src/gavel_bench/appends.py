"""`gavel bench appends`: how many durable appends per second one JetStream stream takes on this machine.

    gavel bench appends --json docs/benchmarks/appends.json
    gavel bench appends --in-flight 1,16,64,256 --seconds 3

The room's event log is one stream (ROOM_EVENTS) whose every append is fsynced before it is
acknowledged (`sync_interval: always`), so the disk's fsync rate bounds the bids/s of the whole
deployment however many room replicas there are. This measures that ceiling without the room:
its own nats-server (gavel_kit.natsserver, the same config the cluster uses) with its store in a
temporary directory under --var-dir (the disk the cluster's var dir is on), a file stream like
ROOM_EVENTS (subjects `bench.lot.>`, direct gets allowed, 120 s dedupe window), and ~300-byte
messages to 1,000 subjects, each append carrying `Nats-Msg-Id` and
`Nats-Expected-Last-Subject-Sequence` = the subject's last sequence, as the room appends a lot's
batch. As in the room, a subject has at most one append in flight. Each in-flight level runs for
--seconds (after a short unreported warm-up) and reports appends/s, p50/p99 latency from publish
to acknowledgement, and the CPU of nats-server and of this process (100 = one CPU): when this
process is near 100 %, the client, not the disk, set the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.errors
from nats.js.errors import APIError

from gavel_bench.cpu import CpuMeter, Tracked
from gavel_bench.histograms import Latency
from gavel_bench.machine import code_revision, machine_info
from gavel_bench.ownserver import own_nats_server
from gavel_kit.nats import StreamSpec

STREAM = "BENCH_APPENDS"
SUBJECT_PREFIX = "bench.lot."
SUBJECTS = 1_000
PAYLOAD_BYTES = 300
LEVELS = (1, 16, 64, 256)
SECONDS = 3.0
WARMUP_S = 1.0
ACK_WAIT_S = 10.0
EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
MSG_ID = "Nats-Msg-Id"

STREAM_SPEC = StreamSpec(
    name=STREAM,
    subjects=[SUBJECT_PREFIX + ">"],
    description="gavel bench appends: a stand-in for ROOM_EVENTS",
    duplicate_window_s=120,
    extra={"allow_direct": True},
)


@dataclass
class Subjects:
    """The subjects, each one's last stream sequence, and which are free (no append in flight)."""

    count: int
    last: list[int] = field(default_factory=list)
    free: collections.deque[int] = field(default_factory=collections.deque)

    def __post_init__(self) -> None:
        self.last = [0] * self.count
        self.free = collections.deque(range(self.count))


@dataclass
class Interval:
    """What completed since the last progress line."""

    appends: int = 0
    errors: int = 0
    latency: Latency = field(default_factory=Latency)


async def _appender(
    js: Any,
    subjects: Subjects,
    payload: bytes,
    until: float,
    run_id: str,
    counter: list[int],
    totals: Latency,
    interval: Interval,
    error_kinds: dict[str, int],
) -> None:
    """Append one message after another until `until` (monotonic), each to the next free subject."""
    while time.monotonic() < until and subjects.free:
        index = subjects.free.popleft()
        counter[0] += 1
        headers = {
            MSG_ID: f"{run_id}-{counter[0]}",
            EXPECTED_LAST_SUBJECT_SEQUENCE: str(subjects.last[index]),
        }
        started = time.perf_counter()
        try:
            ack = await js.publish(f"{SUBJECT_PREFIX}{index}", payload, timeout=ACK_WAIT_S, headers=headers)
        except (APIError, nats.errors.Error, TimeoutError) as exc:
            interval.errors += 1
            kind = type(exc).__name__
            error_kinds[kind] = error_kinds.get(kind, 0) + 1
            continue  # the subject's last sequence is unknown now: it is not used again
        elapsed = time.perf_counter() - started
        subjects.last[index] = int(ack.seq)
        subjects.free.append(index)
        totals.record_s(elapsed)
        interval.latency.record_s(elapsed)
        interval.appends += 1


async def _level(
    js: Any,
    subjects: Subjects,
    in_flight: int,
    seconds: float,
    tracked: Sequence[Tracked],
    run_id: str,
    say: Callable[[str], None] | None,
) -> dict[str, Any]:
    """`in_flight` appenders for `seconds`; the appends still in flight then finish and count."""
    payload = os.urandom(PAYLOAD_BYTES)
    totals = Latency()
    interval = Interval()
    errors: dict[str, int] = {}
    counter = [0]
    meter = CpuMeter(tracked)
    began = time.monotonic()
    meter.start()
    until = began + seconds
    tasks = [
        asyncio.create_task(_appender(js, subjects, payload, until, run_id, counter, totals, interval, errors))
        for _ in range(in_flight)
    ]
    second = 0
    pending = set(tasks)
    while pending:
        next_line = began + second + 1
        _, pending = await asyncio.wait(pending, timeout=max(0.0, next_line - time.monotonic()))
        if time.monotonic() >= next_line and say is not None:
            second += 1
            done, interval_errors = interval.appends, interval.errors
            p50, p99 = interval.latency.percentile_ms(50), interval.latency.percentile_ms(99)
            say(
                f"  in flight {in_flight:>4}  {second:>3}s  {done:>7,} appends"
                f"  p50 {_ms(p50)}  p99 {_ms(p99)}" + (f"  errors {interval_errors}" if interval_errors else "")
            )
            interval.appends, interval.errors, interval.latency = 0, 0, Latency()
    elapsed = time.monotonic() - began
    cpu = meter.stop()
    for task in tasks:
        task.result()
    return {
        "in_flight": in_flight,
        "appends": totals.count,
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "duration_s": round(elapsed, 3),
        "appends_per_s": round(totals.count / elapsed, 1),
        "latency_ms": totals.summary(),
        "cpu_percent": cpu,
    }


def _ms(value: float | None) -> str:
    return "     -   " if value is None else f"{value:6.2f} ms"


async def measure(
    nats_url: str,
    levels: Sequence[int],
    seconds: float,
    tracked: Sequence[Tracked],
    subjects: int = SUBJECTS,
    warmup_s: float = WARMUP_S,
    say: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Create the stream on the server at `nats_url` and measure each in-flight level in turn."""
    client = await nats.connect(nats_url, name="gavel-bench-appends", max_reconnect_attempts=0)
    try:
        js = client.jetstream()
        await js.add_stream(STREAM_SPEC.config())
        run_id = f"appends-{os.getpid()}-{time.time_ns()}"
        state = Subjects(subjects)
        if warmup_s > 0:
            warm = await _level(js, state, min(16, subjects), warmup_s, tracked, run_id + "-warm", None)
            say(f"  warm-up: {warm['appends']:,} appends in {warm['duration_s']:.1f} s (not reported)")
        found = []
        for in_flight in levels:
            if in_flight > len(state.free):
                say(f"  in flight {in_flight}: skipped, only {len(state.free)} subjects are usable")
                continue
            level = await _level(js, state, in_flight, seconds, tracked, f"{run_id}-{in_flight}", say)
            latency = level["latency_ms"]
            say(
                f"• in flight {in_flight}: {level['appends_per_s']:,.0f} appends/s ({level['appends']:,} in "
                f"{level['duration_s']:.1f} s), p50 {latency['p50']} ms, p99 {latency['p99']} ms, "
                f"errors {level['errors']}; CPU "
                + ", ".join(f"{name} {percent:.0f} %" for name, percent in level["cpu_percent"].items())
            )
            found.append(level)
        return found
    finally:
        await client.close()


def best_level(levels: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The level with the most appends/s (ties: the fewest in flight, the lower latency)."""
    if not levels:
        return None
    return max(levels, key=lambda level: (level["appends_per_s"], -level["in_flight"]))


def run(
    levels: Sequence[int],
    seconds: float,
    var_root: Path,
    subjects: int = SUBJECTS,
    command: str = "",
    keep: bool = False,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    machine = machine_info()
    with own_nats_server(var_root, "bench-appends", say, keep=keep) as (server, data_dir, tracked):
        say(
            f"• stream {STREAM} (file, {SUBJECT_PREFIX}>, allow_direct), {subjects:,} subjects, "
            f"{PAYLOAD_BYTES}-byte messages, expected-last-subject-sequence on every append; "
            f"in flight {', '.join(str(level) for level in levels)}, {seconds:g} s each"
        )
        found = asyncio.run(measure(server.url, levels, seconds, tracked, subjects, say=say))
    best = best_level(found)
    return {
        "benchmark": "appends",
        "stream": STREAM,
        "subjects": subjects,
        "payload_bytes": PAYLOAD_BYTES,
        "seconds_per_level": seconds,
        "sync_interval": "always",
        "store_dir": str(data_dir),
        "levels": found,
        "best_appends_per_s": best["appends_per_s"] if best else None,
        "best_in_flight": best["in_flight"] if best else None,
        "machine": machine,
        "code_revision": code_revision(),
        "started_at": started_at,
        "command": command,
    }


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of counts, e.g. 1,16,64,256") from None
    if not levels or any(level <= 0 for level in levels):
        raise argparse.ArgumentTypeError("in-flight counts must be positive")
    return levels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gavel bench appends", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--in-flight", type=_levels, default=LEVELS, help="appends in flight, one level after the other"
    )
    parser.add_argument("--seconds", type=float, default=SECONDS, help="measured seconds per level (default 3)")
    parser.add_argument("--subjects", type=int, default=SUBJECTS, help="subjects (lots) appended to (default 1000)")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    parser.add_argument(
        "--var-dir", type=Path, default=Path("var"), help="the temporary store goes under it (default var/)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary store (default: removed)")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    if max(args.in_flight) > args.subjects:
        parser.error("each append in flight needs its own subject: --subjects must be >= the largest --in-flight")
    given = list(sys.argv[1:] if argv is None else argv)
    command = shlex.join(["gavel", "bench", "appends", *given])
    try:
        result = run(args.in_flight, args.seconds, args.var_dir, args.subjects, command, args.keep)
    except KeyboardInterrupt:
        print("gavel bench appends: interrupted; the nats-server it started was stopped", file=sys.stderr)
        return 130
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"• wrote {args.json}")
    if result["best_appends_per_s"] is None:
        print("gavel bench appends: no level was measured", file=sys.stderr)
        return 1
    print(
        f"\nbest: {result['best_appends_per_s']:,.0f} durable appends/s with {result['best_in_flight']} in flight "
        "(one stream, fsync on every append)"
    )
    return 0
