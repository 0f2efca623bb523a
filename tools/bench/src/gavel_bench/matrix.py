"""`gavel bench matrix`: the standard benchmark set, and docs/benchmarks.md rewritten from it.

    gavel bench matrix --out docs/benchmarks.md                 (what `make bench` runs)
    gavel bench matrix --out docs/benchmarks.md --only rooms-100,failover --duration 20
    gavel bench matrix --out docs/benchmarks.md --render-only   (the page again from the JSON files)

Runs, one after the other, each in its own process with its own cluster:

- engine alone: `gavel bench-engine` as it is;
- appends alone: `gavel bench appends`, one JetStream stream's durable appends/s on this disk;
- 100, 1,000 and 10,000 rooms with 5 watchers per room (100, 200 and 2,000 bids/s), and 10,000
  rooms again at 250 bids/s, below saturation on a small machine;
- one room process at full rate: 1,000 rooms, no watchers, a ramp of rates, to find the most
  durable bids/s one room replica acknowledges while keeping up;
- failover: 3 room replicas, one SIGKILLed (and restarted) every 10 s under load;
- soak: 20 rooms, 3 watchers each, 100 bids/s for 10 minutes while an extra room replica is
  SIGKILLed every 60 s and the embedded nats-server every 120 s (`gavel up` restarts it): the
  processes' memory must stay flat (second-half growth per bid) and no acknowledged bid be lost.

Each writes its JSON and PNG to docs/benchmarks/<name>.{json,png}. The page keeps its "Engine
alone" prose and every section it does not generate (e.g. a profile written by hand), and
replaces the generated section: the results table, the targets, the machine and the commands.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gavel_bench import floor

GENERATED_HEADING = "## The cluster under load (`gavel bench`)"
# Any section whose heading starts so is the generated one (an older run may have dated it).
GENERATED_PREFIX = "## The cluster under load"
RUN_TIMEOUT_S = 3 * 3600  # a 10,000-room run on a small machine takes minutes, never hours


@dataclass(frozen=True)
class MatrixRun:
    name: str  # file stem under docs/benchmarks/
    title: str
    args: tuple[str, ...]


def standard_runs(duration_s: float) -> list[MatrixRun]:
    """The room runs. The 10,000-room case is the design target and keeps its rate whatever this
    machine does; the smaller cases and a second 10,000-room case use rates a small machine
    sustains, so their latencies show the service below saturation; the ramp finds where one room
    process saturates."""
    d = f"{duration_s:g}"
    return [
        MatrixRun("rooms-100", "100 rooms", ("--rooms", "100", "--watchers", "5", "--rate", "100", "--duration", d)),
        MatrixRun(
            "rooms-1000", "1,000 rooms", ("--rooms", "1000", "--watchers", "5", "--rate", "200", "--duration", d)
        ),
        MatrixRun(
            "rooms-10000",
            "10,000 rooms",
            ("--rooms", "10000", "--watchers", "5", "--rate", "2000", "--duration", d, "--profile-room", "20"),
        ),
        MatrixRun(
            "rooms-10000-sustained",
            "10,000 rooms, below saturation",
            ("--rooms", "10000", "--watchers", "5", "--rate", "250", "--duration", d),
        ),
        MatrixRun(
            "one-room-process",
            "one room process, full rate (ramp)",
            (
                "--rooms",
                "1000",
                "--watchers",
                "0",
                "--ramp",
                "100,200,400,600,800,1000,1200,1500,2000,3000,5000",
                "--duration",
                "10",
                "--profile-room",
                "60",
            ),
        ),
        MatrixRun(
            "failover",
            "failover: 3 room replicas, SIGKILL one every 10 s",
            (
                "--rooms",
                "1000",
                "--watchers",
                "5",
                "--rate",
                "100",
                "--room-replicas",
                "3",
                "--kill-room-replica-every",
                "10",
                "--duration",
                "40",
            ),
        ),
        MatrixRun(
            "soak",
            "soak: 10 minutes, room replica and nats-server SIGKILLed now and then",
            (
                "--rooms",
                "20",
                "--watchers",
                "3",
                "--rate",
                "100",
                "--room-replicas",
                "2",
                "--kill-room-replica-every",
                "60",
                "--kill-nats-every",
                "120",
                "--duration",
                "600",
            ),
        ),
    ]


ENGINE = MatrixRun("engine-alone", "engine alone (no gRPC, NATS, DB)", ())
APPENDS = MatrixRun("appends", "JetStream appends alone (one stream, fsync each)", ())


def _gavel(*args: str) -> list[str]:
    return [sys.executable, "-m", "gavel_kit.cli", *args]


def _command_of(run: MatrixRun, result: dict[str, Any], directory: Path) -> str:
    """The command line that produced `result`, as a reader would type it from the repository root."""
    if run is ENGINE:
        return shlex.join(_engine_args(directory, venv=True))
    if run is APPENDS:
        return shlex.join([".venv/bin/gavel", "bench", "appends", "--json", str(directory / "appends.json")])
    return ".venv/bin/" + str(result.get("command", ""))


def _engine_args(directory: Path, *, venv: bool = False) -> list[str]:
    json_path, plot_path = directory / "engine-alone.json", directory / "engine-alone.png"
    args = ["bench-engine", "--json", str(json_path), "--plot", str(plot_path)]
    return [".venv/bin/gavel", *args] if venv else args


def run_engine(directory: Path) -> tuple[str, dict[str, Any] | None, str | None]:
    command = shlex.join(_engine_args(directory, venv=True))
    print(f"\n=== engine alone: {command}", flush=True)
    try:
        completed = subprocess.run(_gavel(*_engine_args(directory)), check=False, timeout=RUN_TIMEOUT_S)  # noqa: S603
    except subprocess.TimeoutExpired:
        return command, None, f"no result within {RUN_TIMEOUT_S} s"
    if completed.returncode != 0:
        return command, None, f"exit code {completed.returncode}"
    return command, json.loads((directory / "engine-alone.json").read_text()), None


def run_appends(directory: Path) -> tuple[str, dict[str, Any] | None, str | None]:
    json_path = directory / "appends.json"
    args = ("bench", "appends", "--json", str(json_path))
    command = shlex.join([".venv/bin/gavel", *args])
    print(f"\n=== {APPENDS.title}: {command}", flush=True)
    try:
        completed = subprocess.run(_gavel(*args), check=False, timeout=RUN_TIMEOUT_S)  # noqa: S603
    except subprocess.TimeoutExpired:
        return command, None, f"no result within {RUN_TIMEOUT_S} s"
    if completed.returncode != 0 or not json_path.exists():
        return command, None, f"exit code {completed.returncode}"
    return command, json.loads(json_path.read_text()), None


def run_one(run: MatrixRun, directory: Path) -> tuple[str, dict[str, Any] | None, str | None]:
    json_path, plot_path = directory / f"{run.name}.json", directory / f"{run.name}.png"
    args = ("bench", *run.args, "--json", str(json_path), "--plot", str(plot_path))
    command = shlex.join([".venv/bin/gavel", *args])
    print(f"\n=== {run.title}: {command}", flush=True)
    started = time.monotonic()
    try:
        completed = subprocess.run(_gavel(*args), check=False, timeout=RUN_TIMEOUT_S)  # noqa: S603
    except subprocess.TimeoutExpired:
        return command, None, f"no result within {RUN_TIMEOUT_S} s"
    print(f"=== {run.title}: {time.monotonic() - started:.0f} s", flush=True)
    if completed.returncode != 0 or not json_path.exists():
        return command, None, f"exit code {completed.returncode}"
    return command, json.loads(json_path.read_text()), None


# -- the page ------------------------------------------------------------------------------------------


def split_sections(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(the text before the first `## ` heading, [(heading line, body)])."""
    preamble: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("## "):
            sections.append((line, []))
        elif sections:
            sections[-1][1].append(line)
        else:
            preamble.append(line)
    return "\n".join(preamble), [(heading, "\n".join(body).strip("\n")) for heading, body in sections]


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.{digits}f}" if isinstance(value, float) and digits else f"{value:,.0f}"
    return str(value)


def _pair(summary: dict[str, Any] | None) -> str:
    if not summary or summary.get("p50") is None:
        return "-"
    return f"{summary['p50']:.1f} / {summary['p99']:.1f}"


def results_table(rows: Sequence[tuple[MatrixRun, str, dict[str, Any] | None, str | None]], directory: str) -> str:
    header = (
        "| run | rooms | watchers/room | target bids/s | acked bids/s | acknowledged | lost | duplicated "
        "| PlaceBid p50 / p99 ms | fan-out p50 / p99 ms | failover s (max) | echo ceiling calls/s | files |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    lines = [header]
    for run, _, result, failure in rows:
        files = f"[json]({directory}/{run.name}.json), [png]({directory}/{run.name}.png)"
        if result is None:
            lines.append(f"| {run.title} | failed: {failure} | | | | | | | | | | | |")
        elif run is APPENDS:
            best = next((lv for lv in result["levels"] if lv["in_flight"] == result["best_in_flight"]), None)
            lines.append(
                f"| {run.title} | {_fmt(result['subjects'])} subjects | - | - "
                f"| {_fmt(result['best_appends_per_s'])} appends/s ({result['best_in_flight']} in flight) "
                f"| - | - | - | {_pair(best['latency_ms'] if best else None)} (append) | - | - | - "
                f"| [json]({directory}/{run.name}.json) |"
            )
        elif run is ENGINE:
            lines.append(
                f"| {run.title} | {_fmt(result.get('lots'))} lots | - | {_fmt(result.get('target_bids_per_second'))} "
                f"| {_fmt(result.get('bids_per_second'))} (decided) | - | - | - | - | - | - | - | {files} |"
            )
        else:
            failover = result.get("failover_s")
            lines.append(
                f"| {run.title} | {_fmt(result['rooms'])} | {result['watchers_per_room']} "
                f"| {_fmt(result['target_rate'], 0)} "
                f"| {_fmt(result['bids_per_s'])} | {_fmt(result['bids_acknowledged'])} | {result['bids_lost']} "
                f"| {result['bids_duplicated']} | {_pair(result['bid_rpc_ms'])} | {_pair(result['fanout_ms'])} "
                f"| {_fmt(failover['max'], 2) if failover else '-'} | {_fmt(result['echo_ceiling_rps'], 0)} | {files} |"
            )
    return "\n".join(lines)


def ramp_table(result: dict[str, Any] | None) -> str:
    if not result or not result.get("ramp"):
        return ""
    lines = [
        "| target bids/s | acked bids/s | refused | errors | not sent | PlaceBid p50 / p99 ms |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for step in result["ramp"]:
        if step.get("skipped"):
            lines.append(
                f"| {_fmt(step['target_rate'], 0)} | not run: the previous step fell below half its target | | | | |"
            )
            continue
        lines.append(
            f"| {_fmt(step['target_rate'], 0)} | {_fmt(step['bids_per_s'])} | {_fmt(step['bids_refused'])} "
            f"| {_fmt(step['bid_errors'])} | {_fmt(step['bids_not_sent'])} | {_pair(step['bid_rpc_ms'])} |"
        )
    return "\n".join(lines)


# Frames every sample passes through (the event loop, the interpreter's start-up): no information.
PLUMBING = (
    "(asyncio/base_events.py:",
    "(asyncio/runners.py:",
    "(asyncio/events.py:80)",
    "(<frozen runpy>:",
    "(threading.py:",
    "(room/main.py:",
    "(gavel_kit/service.py:",
)


def profile_section(rows: Sequence[tuple[MatrixRun, str, dict[str, Any] | None, str | None]], directory: str) -> str:
    """The py-spy summaries of the runs that recorded one (top frames, plumbing left out)."""
    parts = []
    for run, _, result, _ in rows:
        profile = (result or {}).get("room_profile")
        if not profile or not profile.get("samples"):
            continue
        inclusive = [item for item in profile["inclusive_percent"] if not any(p in item[1] for p in PLUMBING)][:15]
        own = profile["self_percent"][:10]
        parts += [
            f"**{run.title}** — {profile['samples']:,} samples of the room replica's busy threads "
            f"(raw stacks, collapsed: [`{Path(profile['raw']).name}`]({directory}/{Path(profile['raw']).name})):",
            "",
            "| inclusive % | frame |",
            "|---:|---|",
            *(f"| {share} | `{frame}` |" for share, frame in inclusive),
            "",
            "| self % | frame |",
            "|---:|---|",
            *(f"| {share} | `{frame}` |" for share, frame in own),
            "",
        ]
    return "\n".join(parts).strip()


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("**reached**" if ok else "**not reached**")


def targets(results: dict[str, dict[str, Any] | None]) -> str:
    engine = results.get("engine-alone")
    big = results.get("rooms-10000")
    full = results.get("one-room-process")
    lines = []
    engine_ok = None if engine is None else engine["bids_per_second"] >= 200_000
    lines.append(
        f"- Engine alone ≥ 200,000 bids/s: {_verdict(engine_ok)}"
        + (f" ({engine['bids_per_second']:,} bids/s)." if engine else ".")
    )
    if big is None:
        lines.append("- 10,000 rooms x 5 watchers at 2,000 bids/s: not measured.")
    else:
        bid_p99, fan_p99 = big["bid_rpc_ms"]["p99"], big["fanout_ms"]["p99"]
        rate_ok = big["bids_per_s"] >= 0.95 * big["target_rate"]
        checks = [
            (f"{big['bids_per_s']:,.0f} bids/s acknowledged of {big['target_rate']:,.0f}", rate_ok),
            (f"p99 PlaceBid {_fmt(bid_p99)} ms (< 30)", bid_p99 is not None and bid_p99 < 30),
            (f"p99 fan-out {_fmt(fan_p99)} ms (< 50)", fan_p99 is not None and fan_p99 < 50),
            (f"{big['bids_lost']} lost (0)", big["bids_lost"] == 0),
        ]
        lines.append(
            f"- 10,000 rooms x 5 watchers at 2,000 bids/s, p99 PlaceBid < 30 ms, p99 fan-out < 50 ms, 0 lost: "
            f"{_verdict(all(ok for _, ok in checks))} — "
            + "; ".join(f"{text} {'✓' if ok else '✗'}" for text, ok in checks)
            + "."
        )
    calm = results.get("rooms-10000-sustained")
    if calm is not None:
        lines.append(
            f"- The same 10,000 rooms x 5 watchers below saturation ({calm['target_rate']:,.0f} bids/s asked, "
            f"{calm['bids_per_s']:,.0f} acknowledged): p99 PlaceBid {_fmt(calm['bid_rpc_ms']['p99'])} ms, "
            f"p99 fan-out {_fmt(calm['fanout_ms']['p99'])} ms, {calm['bids_lost']} lost — what this machine "
            "sustains with the design's room count."
        )
    if full is None:
        lines.append("- One room process ≥ 5,000 durable bids/s and ≥ 0.7 x the echo ceiling: not measured.")
    else:
        ratio = full["bids_per_s"] / full["echo_ceiling_rps"] if full["echo_ceiling_rps"] else 0.0
        ok = full["bids_per_s"] >= floor.ONE_ROOM_TARGET and ratio >= floor.ECHO_SHARE_TARGET and full["bids_lost"] == 0
        lines.append(
            f"- One room process ≥ 5,000 durable bids/s and ≥ 0.7 x the echo ceiling: {_verdict(ok)} — "
            f"{full['bids_per_s']:,.0f} bids/s acknowledged at the fastest ramp step that kept up "
            f"(target {full['target_rate']:,.0f}/s), {ratio:.2f} x the echo ceiling of "
            f"{full['echo_ceiling_rps']:,.0f} calls/s, {full['bids_lost']} lost."
        )
    return "\n".join(lines)


def floor_section(results: dict[str, dict[str, Any] | None]) -> str:
    """`gavel bench floor` over this matrix's one-room run (its echo ceiling) and appends run."""
    one_room, appends = results.get("one-room-process"), results.get("appends")
    if one_room is None or appends is None:
        return ""
    try:
        costs = floor.bare_costs(one_room, appends)
    except floor.FloorError as exc:
        return f"Not computed: {exc}."
    return "\n".join(floor.floor_lines(costs))


def machine_lines(results: Sequence[dict[str, Any] | None]) -> str:
    # The engine benchmark's "machine" is only the architecture; the cluster runs describe the host.
    machine = next((r["machine"] for r in results if r and isinstance(r.get("machine"), dict)), None)
    if machine is None:
        return "(no run reported its machine)"
    revisions = sorted({str(r.get("code_revision")) for r in results if r and r.get("code_revision")})
    measured = f"Code measured: Gavel {', '.join(revisions)}. " if revisions else ""
    return measured + (
        f"{machine['cpu']}, {machine['logical_cpus']} logical CPUs, {machine['memory_gib']} GiB RAM, "
        f"{machine['os']}, {machine['python']}, grpcio {machine['grpcio']}, nats-py {machine['nats_py']}, "
        f"{machine['nats_server']}. The whole cluster (nats-server with `sync_interval: always`, the five "
        "services, the gateway), the extra room replicas and the benchmark's client processes all ran on "
        f"this one machine. Load average when the first run started: {machine['load_average_at_start']}."
    )


WHAT_IS_MEASURED = """\
Each run starts its own cluster (`gavel up --no-seed` on free loopback ports, var dir
`var/bench-<ts>/`) and stops it at the end. Set-up is timed separately (`setup_s` in the JSON) and
is not part of the measured window: the lots are created as a seller through the catalog's gRPC
API (one quantity-1 product and one lot per room, English hard close, at most 144 lots per
live-session sale, sales filled in parallel), published (the room learns them from the catalog's
LotScheduled events), and opened by a crier with RoomService.OpenLot; then the client processes
open their watch streams and each stream's first message per lot proves it is live.

- **acked bids/s**: PlaceBid calls answered OK per second of the measured window. The room answers
  only after the bid's batch is appended to the lot's JetStream subject and fsynced
  (`sync_interval: always`), so every acknowledged bid is durable.
- **bids lost / duplicated**: after the window every lot's subject of stream `ROOM_EVENTS` is read
  back with direct gets (what a new owner replays); lost = acknowledged bid ids absent from every
  BidAccepted of the lot's log, duplicated = a bid id in more than one BidAccepted.
- **PlaceBid p50 / p99**: of acknowledged bids, from the bid's *scheduled* send time (open loop: bid
  n is due at n / rate whatever happened before) to its answer, so a stall shows as latency rather
  than as a lower rate (no coordinated omission); waits for a free in-flight slot (128 per client
  process) and retries (UNAVAILABLE or deadline, same request id, until 20 s) are included.
  Refusals (BID_TOO_LOW, BID_NOT_ABOVE_OWN_MAX: another bid got there first) are counted apart.
- **fan-out p50 / p99**: for each Watch message holding a BidAccepted, the watcher process's wall
  clock when it arrived minus the message's `occurred_at` (the owner's wall clock when it decided
  the bid, whole milliseconds; same machine, same clock). It therefore includes the durable append
  as well as the announcement, the feed and the stream to the watcher; the millisecond truncation
  adds 0-1 ms.
- **failover s**: before each SIGKILL the partition owners (KV `ROOM_OWNERS`) say which
  partitions the victim holds; failover is the longest gap between consecutive acknowledged bids on
  the lots of those partitions, from the last acknowledgement before the kill to the next kill.
- **echo ceiling**: a raw grpc.aio unary echo (one server process, a generic handler returning the
  request bytes; no interceptors, auth or work) called by the same number of client processes with
  the same number of calls in flight, with a real PlaceBidRequest and bearer token, closed loop,
  measured in the same run right after the window (its clients stopped, the cluster idle), so its
  saturating load cannot spill into the window.
- **JetStream appends alone**: `gavel bench appends`, no room: its own nats-server (the cluster's
  config) and a file stream like ROOM_EVENTS; ~300-byte appends to 1,000 subjects, each with the
  subject's expected last sequence as the room appends, at 1, 16, 64 and 256 in flight for 3 s each.
  The row shows the best level: one stream's fsync-bound ceiling on this disk, whatever the room does.
- **the ramp** (one room process): steps of 10 s at rising target rates, the bids still in flight
  finishing between steps; the row reports the fastest step that acknowledged at least 95 % of
  its target, and a step below 50 % of its target ends the ramp.
- **cpu_percent** (JSON): CPU each process of the cluster and each client process used during the
  window, 100 = one whole CPU (from /proc), to tell a slow server from a slow client.
  **room_profile** (JSON, with `--profile-room`): py-spy samples of the room replica, `--nonblocking`.
- Bids are realistic: each lot has 3 bidders (none is the seller); a bid is the lot's minimum
  acceptable amount as the client last knew it (PlaceBid answers and the watchers' batches) plus
  0-3 increments, from a bidder who is not leading. Watchers are Watch streams of 10 lots each (a
  watchlist); W watchers per room means rooms x W / 10 streams. The clients are 2 processes (the
  machine has 2 CPUs); each owns a share of the lots, bids on them and runs their watchers."""


def soak_section(result: dict[str, Any] | None) -> str:
    """Each process's memory over the soak run (flat means: no growth per bid in its second half)."""
    if not result or not result.get("memory"):
        return ""
    lines = [
        f"{result['bids_acknowledged']:,} bids acknowledged, lost {result['bids_lost']}, duplicated "
        f"{result['bids_duplicated']}; nats-server SIGKILLed at {result.get('nats_kills_at_s') or '-'} s.",
        "",
        "| process | start MB | end MB | peak MB | growth, second half (MB/min) | bytes per bid, second half |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, memory in sorted(result["memory"].items()):
        lines.append(
            f"| {name} | {memory['start_mb']} | {memory['end_mb']} | {memory['max_mb']} "
            f"| {memory['growth_mb_per_min_second_half']} | {memory['growth_bytes_per_bid_second_half']} |"
        )
    return "\n".join(lines)


def render(
    existing: str,
    rows: Sequence[tuple[MatrixRun, str, dict[str, Any] | None, str | None]],
    directory: str,
    matrix_command: str,
) -> str:
    preamble, sections = split_sections(existing)
    results = {run.name: result for run, _, result, _ in rows}
    kept = [(heading, body) for heading, body in sections if not heading.startswith(GENERATED_PREFIX)]
    engine = [section for section in kept if section[0].strip() == "## Engine alone"]
    others = [section for section in kept if section[0].strip() != "## Engine alone"]
    full = results.get("one-room-process")
    ramp = ramp_table(full)
    generated = [
        "The figures below come from `gavel bench matrix` (`make bench`), which runs each case in its own "
        f"process with its own cluster and writes its JSON and PNG under [`{directory}/`]({directory}/). "
        "Last invocation:",
        "",
        "```",
        matrix_command,
        "```",
        "",
        "### Results",
        "",
        results_table(rows, directory),
        "",
        "### Targets",
        "",
        targets(results),
    ]
    bare = floor_section(results)
    if bare:
        generated += ["", "### The floor: what the bare call and append allow on this machine", "", bare]
    if ramp:
        generated += ["", "### One room process: the ramp", "", ramp]
    soak = soak_section(results.get("soak"))
    if soak:
        generated += ["", "### Soak: memory under faults", "", soak]
    profiles = profile_section(rows, directory)
    if profiles:
        generated += ["", "### Where the room's time goes (py-spy, recorded by the runs)", "", profiles]
    generated += [
        "",
        "### Machine",
        "",
        machine_lines([result for _, _, result, _ in rows]),
        "",
        "### What is measured",
        "",
        WHAT_IS_MEASURED,
        "",
        "### Commands (each run alone)",
        "",
        "```",
        *(command for _, command, _, _ in rows),
        "```",
    ]
    parts = [preamble.strip() or "# Benchmarks"]
    for heading, body in engine:
        parts.append(f"{heading}\n\n{body}")
    parts.append(GENERATED_HEADING + "\n\n" + "\n".join(generated))
    for heading, body in others:
        parts.append(f"{heading}\n\n{body}")
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gavel bench matrix", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="the page to rewrite, e.g. docs/benchmarks.md")
    parser.add_argument("--dir", type=Path, default=None, help="JSON and PNG files (default: <out dir>/benchmarks)")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds of the room runs")
    parser.add_argument("--only", default="", help="comma-separated run names (engine-alone, appends, rooms-100, …)")
    parser.add_argument(
        "--render-only", action="store_true", help="run nothing: rewrite the page from the JSON files already there"
    )
    args = parser.parse_args(argv)
    directory = args.dir or args.out.parent / "benchmarks"
    directory.mkdir(parents=True, exist_ok=True)
    wanted = {name for name in args.only.split(",") if name}
    runs = [ENGINE, APPENDS, *standard_runs(args.duration)]
    unknown = wanted - {run.name for run in runs}
    if unknown:
        parser.error(f"unknown runs: {', '.join(sorted(unknown))}")
    rows: list[tuple[MatrixRun, str, dict[str, Any] | None, str | None]] = []
    for run in runs:
        if args.render_only or (wanted and run.name not in wanted):
            previous = directory / f"{run.name}.json"  # keep the last figures of runs not redone
            if previous.exists():
                result = json.loads(previous.read_text())
                rows.append((run, _command_of(run, result, directory), result, None))
            continue
        if run is ENGINE:
            command, result, failure = run_engine(directory)
        elif run is APPENDS:
            command, result, failure = run_appends(directory)
        else:
            command, result, failure = run_one(run, directory)
        rows.append((run, _command_of(run, result, directory) if result else command, result, failure))
    existing = args.out.read_text() if args.out.exists() else "# Benchmarks\n"
    given = argv if argv is not None else sys.argv[1:]
    # --render-only reproduces nothing: show the command that measures what the page shows.
    matrix_command = shlex.join([".venv/bin/gavel", "bench", "matrix", *(a for a in given if a != "--render-only")])
    try:
        relative = directory.relative_to(args.out.parent)
    except ValueError:
        relative = directory
    args.out.write_text(render(existing, rows, str(relative), matrix_command))
    print(f"\nwrote {args.out}")
    return 1 if any(result is None for _, _, result, _ in rows) else 0
