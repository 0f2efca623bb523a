"""`gavel bench capacity`: what a target load needs, from the unit costs measured on this machine.

    gavel bench capacity --one-room docs/benchmarks/one-room-process.json \\
        --watchers-run docs/benchmarks/rooms-100.json --appends docs/benchmarks/appends.json
    gavel bench capacity ... --rooms 100000 --watchers 1000000 --markdown   (a table for docs/scaling.md)

Unit costs, each printed with the file and step it came from:

- room / nats-server CPU seconds per bid: from --one-room (a ramp without watchers), the highest
  step that acknowledged >= 95 % of its target: step cpu_percent / 100 / the step's bids/s. A
  result recorded before ramps measured per-step CPU falls back to the whole-window cpu_percent
  over the window's mean acknowledged rate (the output says so).
- room CPU seconds per watcher delivery: from --watchers-run, (room CPU - bids/s x CPU per bid) /
  deliveries per second, at least 0.
- nats-server CPU seconds per fan-out message: likewise, over the run's fan-out messages (a room
  replica subscribes once per watched lot, so NATS delivers each announcement once per replica
  with a watcher of the lot: bids/s x min(watchers per room, replicas) in the run).
- one stream's append ceiling: from --appends (`gavel bench appends`), the best appends/s; every
  append is fsynced, so it is per stream and per disk.

Both CPU costs are upper bounds: a process's background work (leases, heartbeats, idle loops) is
charged to the bids of the run it was measured in. The model then scales linearly: no batching
gains, no contention.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

KEEPS_UP = 0.95  # as the runner: a ramp step keeps up when it acknowledges this share of its target
NOISY_SHARE = 0.5  # a fan-out cost from less than this share of a process's CPU is flagged as fragile
BALANCE_FACTOR = 4  # partitions per replica for an even spread (fair share ceil(P / n) stays close to P / n)


class CapacityError(ValueError):
    """A result file that cannot give the unit cost asked of it."""


@dataclass(frozen=True)
class Cost:
    """A measured unit cost (or ceiling): its value, how it was computed, and from what."""

    value: float
    formula: str
    source: str


@dataclass(frozen=True)
class Measured:
    room_per_bid: Cost  # CPU seconds
    nats_per_bid: Cost
    room_per_delivery: Cost
    nats_per_fanout_message: Cost
    append_ceiling: Cost | None  # appends/s of one stream
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Targets:
    rooms: int = 100_000
    watchers: int = 1_000_000  # watcher connections in total
    lots_per_watcher: int = 10
    bids_per_room_per_s: float = 0.1
    peak_factor: float = 3.0
    cpu_headroom: float = 0.5  # plan each core (and each stream's fsync rate) at this utilisation
    partitions: int = 64
    cores_per_replica: float = 1.0  # a room replica is one asyncio process: one core at most
    cores_per_nats_server: float = 8.0


@dataclass(frozen=True)
class Line:
    key: str
    section: str
    label: str
    value: float | int | str | None
    unit: str
    formula: str
    extra: Mapping[str, Any] = field(default_factory=dict)


# -- reading the results ----------------------------------------------------------------------------------


def room_cpu(cpu_percent: Mapping[str, float]) -> float:
    """% of one CPU used by the room tier: the replicas `room`, `room-2`, …, the extra replicas
    `extra-…` and the `room-projector` (its reports are part of what each bid costs)."""
    return sum(v for k, v in cpu_percent.items() if k == "room" or k.startswith(("room-", "extra-")))


def nats_cpu(cpu_percent: Mapping[str, float]) -> float:
    return sum(v for k, v in cpu_percent.items() if k == "nats-server" or k.startswith("nats-server-"))


def kept_up_step(result: Mapping[str, Any]) -> tuple[int, Mapping[str, Any]] | None:
    """The ramp step with the highest target that acknowledged >= 95 % of it (None: no such step)."""
    steps = result.get("ramp") or []
    found = [
        (index, step)
        for index, step in enumerate(steps)
        if not step.get("skipped") and step["bids_per_s"] >= KEEPS_UP * step["target_rate"]
    ]
    return max(found, key=lambda item: item[1]["target_rate"]) if found else None


@dataclass(frozen=True)
class Window:
    """What a result says about one measured interval: rates and CPU."""

    bids_per_s: float
    deliveries_per_s: float
    cpu_percent: Mapping[str, float]
    describe: str  # "ramp step 2 (target 200/s …)", for the sources
    bids_formula: str
    note: str | None = None


def measured_window(result: Mapping[str, Any], name: str, *, for_bids: bool) -> Window:
    """The interval whose CPU is known: a ramp's kept-up step (if it has its own CPU), else the
    whole measured window."""
    rows = result.get("per_second") or []
    if result.get("ramp"):
        chosen = kept_up_step(result) if for_bids else None
        if chosen is not None and chosen[1].get("cpu_percent"):
            index, step = chosen
            return Window(
                bids_per_s=float(step["bids_per_s"]),
                deliveries_per_s=0.0,
                cpu_percent=step["cpu_percent"],
                describe=(
                    f"{name}, ramp step {index + 1} (target {step['target_rate']:,.0f}/s, "
                    f"{step['bids_per_s']:,.1f} bids/s acknowledged: the highest step with >= 95 % of its target)"
                ),
                bids_formula=f"{step['bids_per_s']:,.1f} bids/s",
            )
        if not result.get("cpu_percent"):
            raise CapacityError(f"{name} has no cpu_percent")
        if not rows:
            raise CapacityError(f"{name} is a ramp without per-step CPU or a per-second series")
        acked = sum(row["acked"] for row in rows)
        deliveries = sum(row.get("deliveries", 0) for row in rows)
        seconds = len(rows)
        if not for_bids:
            why = "is a ramp (its deliveries are not split by step)"
        elif chosen is None:
            why = "has no ramp step that kept up"
        else:
            why = "has no per-step CPU (recorded before ramps measured it)"
        return Window(
            bids_per_s=acked / seconds,
            deliveries_per_s=deliveries / seconds,
            cpu_percent=result["cpu_percent"],
            describe=f"{name}, whole window ({seconds} s, all ramp steps and the pauses between them)",
            bids_formula=f"({acked:,} bids / {seconds} s)",
            note=(
                f"{name} {why}: the whole-window cpu_percent is used, over the window's mean acknowledged "
                f"rate ({acked:,} bids acknowledged in the {seconds} s of its per-second series)."
            ),
        )
    if not result.get("cpu_percent"):
        raise CapacityError(f"{name} has no cpu_percent")
    duration = float(result["duration_s"])
    in_window = [row for row in rows if row["second"] < duration]
    if in_window:
        deliveries_per_s = sum(row.get("deliveries", 0) for row in in_window) / duration
    else:
        deliveries_per_s = result.get("watcher_deliveries", 0) / duration
    return Window(
        bids_per_s=float(result["bids_per_s"]),
        deliveries_per_s=deliveries_per_s,
        cpu_percent=result["cpu_percent"],
        describe=f"{name}, the measured window ({duration:g} s)",
        bids_formula=f"{result['bids_per_s']:,.1f} bids/s",
    )


def bid_costs(result: Mapping[str, Any], name: str) -> tuple[Cost, Cost, list[str]]:
    """(room, nats-server) CPU seconds per bid from a run without watchers."""
    notes = []
    if result.get("watchers_per_room"):
        notes.append(f"{name} has {result['watchers_per_room']} watchers per room: its CPU per bid includes fan-out.")
    window = measured_window(result, name, for_bids=True)
    if window.note:
        notes.append(window.note)
    if window.bids_per_s <= 0:
        raise CapacityError(f"{name}: no bids acknowledged in the measured interval")
    room, nats = room_cpu(window.cpu_percent), nats_cpu(window.cpu_percent)
    return (
        Cost(room / 100 / window.bids_per_s, f"room {room:g} % / 100 / {window.bids_formula}", window.describe),
        Cost(nats / 100 / window.bids_per_s, f"nats-server {nats:g} % / 100 / {window.bids_formula}", window.describe),
        notes,
    )


def fanout_costs(
    result: Mapping[str, Any], name: str, room_per_bid: Cost, nats_per_bid: Cost
) -> tuple[Cost, Cost, list[str]]:
    """(room CPU s per watcher delivery, nats-server CPU s per fan-out message) from a run with watchers."""
    window = measured_window(result, name, for_bids=False)
    notes = [window.note] if window.note else []
    if window.deliveries_per_s <= 0:
        raise CapacityError(f"{name}: no watcher deliveries in the measured interval")
    bids = window.bids_per_s
    room, nats = room_cpu(window.cpu_percent), nats_cpu(window.cpu_percent)
    nodes = min(int(result.get("watchers_per_room") or 0), int(result.get("room_replicas") or 1))
    messages = bids * max(1, nodes)
    room_extra = room / 100 - bids * room_per_bid.value
    nats_extra = nats / 100 - bids * nats_per_bid.value
    for who, total, extra in (("room", room, room_extra), ("nats-server", nats, nats_extra)):
        if extra <= 0:
            notes.append(f"{name}: {who} used no more CPU than its bids alone explain; its fan-out cost is taken as 0.")
        elif extra * 100 < NOISY_SHARE * total:
            notes.append(
                f"{name}: only {extra * 100:.1f} of {who}'s {total:g} % is left for fan-out once its bids are "
                "charged: that unit cost is sensitive to run-to-run variation and background work."
            )
    ms = 1000
    return (
        Cost(
            max(0.0, room_extra) / window.deliveries_per_s,
            f"max(0, room {room:g} % / 100 - {bids:,.1f} bids/s x {room_per_bid.value * ms:.3g} ms) "
            f"/ {window.deliveries_per_s:,.1f} deliveries/s",
            window.describe,
        ),
        Cost(
            max(0.0, nats_extra) / messages,
            f"max(0, nats-server {nats:g} % / 100 - {bids:,.1f} bids/s x {nats_per_bid.value * ms:.3g} ms) "
            f"/ ({bids:,.1f} bids/s x {max(1, nodes)} node(s) with a watcher of the lot)",
            window.describe,
        ),
        notes,
    )


def append_ceiling(result: Mapping[str, Any], name: str) -> Cost:
    best = result.get("best_appends_per_s")
    if not best:
        raise CapacityError(f"{name} has no best_appends_per_s (write it with `gavel bench appends --json`)")
    level = next((lv for lv in result.get("levels", []) if lv.get("appends_per_s") == best), None)
    latency = f", p99 {level['latency_ms']['p99']} ms" if level else ""
    return Cost(
        float(best),
        f"best of in-flight levels {', '.join(str(lv['in_flight']) for lv in result.get('levels', []))}",
        f"{name}, in flight {result.get('best_in_flight')}{latency}",
    )


def measured_from(
    one_room: Mapping[str, Any],
    one_room_name: str,
    watchers_run: Mapping[str, Any],
    watchers_name: str,
    appends: Mapping[str, Any] | None = None,
    appends_name: str = "",
) -> Measured:
    room_bid, nats_bid, notes = bid_costs(one_room, one_room_name)
    room_delivery, nats_message, more = fanout_costs(watchers_run, watchers_name, room_bid, nats_bid)
    ceiling = append_ceiling(appends, appends_name) if appends is not None else None
    return Measured(room_bid, nats_bid, room_delivery, nats_message, ceiling, tuple(notes + more))


# -- the model --------------------------------------------------------------------------------------------


def _ceil(value: float) -> int:
    return math.ceil(value - 1e-9)


def next_power_of_two(value: int) -> int:
    return 1 << max(0, value - 1).bit_length()


def fmt(value: float | int | str | None) -> str:
    """Counts with thousands separators; other figures to a sensible precision."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1):
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:.3g}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms"


def model(targets: Targets, measured: Measured) -> list[Line]:
    t, m = targets, measured
    h = t.cpu_headroom
    lines: list[Line] = []

    def add(key: str, section: str, label: str, value: Any, unit: str, formula: str, **extra: Any) -> Any:
        lines.append(Line(key, section, label, value, unit, formula, extra))
        return value

    s = "unit costs (measured)"
    for key, label, cost in (
        ("room_cpu_s_per_bid", "room CPU per bid", m.room_per_bid),
        ("nats_cpu_s_per_bid", "nats-server CPU per bid", m.nats_per_bid),
        ("room_cpu_s_per_delivery", "room CPU per watcher delivery", m.room_per_delivery),
        ("nats_cpu_s_per_fanout_message", "nats-server CPU per fan-out message", m.nats_per_fanout_message),
    ):
        add(key, s, label, cost.value, "CPU s", cost.formula, source=cost.source)
    if m.append_ceiling is not None:
        add(
            "stream_appends_per_s_ceiling",
            s,
            "one stream's durable appends/s",
            m.append_ceiling.value,
            "appends/s",
            m.append_ceiling.formula,
            source=m.append_ceiling.source,
        )

    s = "load"
    mean = add(
        "bids_per_s_mean",
        s,
        "bids/s, mean",
        t.rooms * t.bids_per_room_per_s,
        "bids/s",
        f"{t.rooms:,} rooms x {t.bids_per_room_per_s:g} bids/room/s",
    )
    peak = add("bids_per_s_peak", s, "bids/s, peak", mean * t.peak_factor, "bids/s", f"{fmt(mean)} x {t.peak_factor:g}")
    per_lot = add(
        "watchers_per_lot",
        s,
        "watchers per lot (average)",
        t.watchers * t.lots_per_watcher / t.rooms,
        "watchers",
        f"{t.watchers:,} watchers x {t.lots_per_watcher} lots / {t.rooms:,} rooms",
    )
    add(
        "deliveries_per_s_mean",
        s,
        "watcher deliveries/s, mean",
        mean * per_lot,
        "deliveries/s",
        f"{fmt(mean)} bids/s x {fmt(per_lot)}",
    )
    deliveries = add(
        "deliveries_per_s_peak",
        s,
        "watcher deliveries/s, peak",
        peak * per_lot,
        "deliveries/s",
        f"{fmt(peak)} bids/s x {fmt(per_lot)}",
    )

    s = "room service"
    bid_cores = add(
        "room_cores_for_bids",
        s,
        "room cores for bids",
        peak * m.room_per_bid.value / h,
        "cores",
        f"{fmt(peak)} bids/s x {_ms(m.room_per_bid.value)} / {h:g} headroom",
    )
    fan_cores = add(
        "room_cores_for_fanout",
        s,
        "room cores for fan-out",
        deliveries * m.room_per_delivery.value / h,
        "cores",
        f"{fmt(deliveries)} deliveries/s x {_ms(m.room_per_delivery.value)} / {h:g} headroom",
    )
    cores = add(
        "room_cores", s, "room cores in all", bid_cores + fan_cores, "cores", f"{fmt(bid_cores)} + {fmt(fan_cores)}"
    )
    replicas = add(
        "room_replicas",
        s,
        f"room replicas at {t.cores_per_replica:g} core(s) each",
        max(1, _ceil(cores / t.cores_per_replica)),
        "replicas",
        f"ceil({fmt(cores)} / {t.cores_per_replica:g})",
    )
    needed = add(
        "partitions_needed",
        s,
        "partitions needed for balance",
        BALANCE_FACTOR * replicas,
        "partitions",
        f"{BALANCE_FACTOR} x {fmt(replicas)} replicas",
    )
    enough = add(
        "partitions_enough",
        s,
        f"are {t.partitions:,} partitions enough?",
        t.partitions >= needed,
        "",
        f"{t.partitions:,} >= {fmt(needed)}" + ("" if t.partitions >= needed else ": no"),
    )
    partitions = add(
        "partitions_recommended",
        s,
        "partitions, recommended",
        t.partitions if enough else next_power_of_two(needed),
        "partitions",
        f"{t.partitions:,} (enough)" if enough else f"the next power of two >= {fmt(needed)}",
    )

    s = "event log (JetStream)"
    appends = add(
        "appends_per_s_peak",
        s,
        "appends/s, peak",
        peak,
        "appends/s",
        f"{fmt(peak)} bids/s x 1 append per bid (one bid per lot at a time: batches of one)",
    )
    streams: int | None = None
    if m.append_ceiling is not None:
        streams = add(
            "streams_needed",
            s,
            "event-log streams",
            max(1, _ceil(appends / (m.append_ceiling.value * h))),
            "streams",
            f"ceil({fmt(appends)} / ({fmt(m.append_ceiling.value)} appends/s per stream x {h:g} headroom))",
        )
        add(
            "partitions_per_stream",
            s,
            "partitions per stream",
            _ceil(partitions / streams),
            "partitions",
            f"ceil({fmt(partitions)} / {streams:,}): stream k holds the lots of a contiguous partition range",
        )
    else:
        add(
            "streams_needed",
            s,
            "event-log streams",
            None,
            "streams",
            "not computed: give --appends FILE (from `gavel bench appends --json FILE`)",
        )

    s = "NATS"
    nodes = add(
        "fanout_nodes_per_bid",
        s,
        "nodes each announcement goes to",
        min(per_lot, replicas),
        "nodes",
        f"min({fmt(per_lot)} watchers of the lot, {fmt(replicas)} replicas)",
    )
    messages = add(
        "nats_fanout_messages_per_s_peak",
        s,
        "fan-out messages/s, peak",
        peak * nodes,
        "messages/s",
        f"{fmt(peak)} bids/s x {fmt(nodes)}",
    )
    nats_cores = add(
        "nats_cores",
        s,
        "nats-server cores",
        (peak * m.nats_per_bid.value + messages * m.nats_per_fanout_message.value) / h,
        "cores",
        f"({fmt(peak)} x {_ms(m.nats_per_bid.value)} + {fmt(messages)} x {_ms(m.nats_per_fanout_message.value)})"
        f" / {h:g} headroom",
    )
    by_cpu = max(1, _ceil(nats_cores / t.cores_per_nats_server))
    add(
        "nats_servers",
        s,
        f"NATS servers at {t.cores_per_nats_server:g} cores each",
        max(by_cpu, streams or 1),
        "servers",
        f"max(ceil({fmt(nats_cores)} / {t.cores_per_nats_server:g}), {streams if streams else '-'} streams: "
        "one stream leader per server, each on its own disk)",
    )
    return lines


def by_key(lines: Sequence[Line]) -> dict[str, Line]:
    return {line.key: line for line in lines}


def proposal(lines: Sequence[Line]) -> str:
    found = by_key(lines)
    streams = found["streams_needed"].value
    if not isinstance(streams, int):
        return "Event log: the number of streams needs a measured append ceiling (--appends)."
    per = found["partitions_per_stream"].value
    if streams == 1:
        return "Event log: one stream (ROOM_EVENTS) is enough for the peak appends."
    return (
        f"Proposal: split the event log into {streams:,} streams by partition range (ROOM_EVENTS_<k> holds the "
        f"lots of partitions [k x {per}, (k+1) x {per})), each led by its own NATS server on its own disk, so "
        "each stream's fsyncs stay under its ceiling. A stream selects its lots by subject, so the lot subject "
        "must carry the partition (gavel.room.lot.<partition>.<lot_id>); the expected-sequence guard per lot "
        "subject is unchanged."
    )


# -- output -----------------------------------------------------------------------------------------------


def _heading(targets: Targets) -> str:
    t = targets
    return (
        f"targets: {t.rooms:,} rooms, {t.watchers:,} watchers x {t.lots_per_watcher} lots, "
        f"{t.bids_per_room_per_s:g} bids/room/s, peak x {t.peak_factor:g}, cores planned at "
        f"{t.cpu_headroom:.0%}, {t.partitions:,} partitions"
    )


def _value(line: Line) -> str:
    if line.unit == "CPU s" and isinstance(line.value, float):
        return _ms(line.value)
    text = fmt(line.value)
    return f"{text} {line.unit}" if line.unit and line.value is not None else text


def text_table(targets: Targets, lines: Sequence[Line], notes: Sequence[str]) -> str:
    width_label = max(len(line.label) for line in lines)
    width_value = max(len(_value(line)) for line in lines)
    out = [f"Capacity model — {_heading(targets)}"]
    section = ""
    for line in lines:
        if line.section != section:
            section = line.section
            out += ["", section]
        out.append(f"  {line.label:<{width_label}}  {_value(line):>{width_value}}  = {line.formula}")
        if "source" in line.extra:
            out.append(f"  {'':<{width_label}}  {'':>{width_value}}    from {line.extra['source']}")
    out += ["", proposal(lines)]
    if notes:
        out += ["", "notes:", *(f"  - {note}" for note in notes)]
    return "\n".join(out)


def markdown_table(targets: Targets, lines: Sequence[Line], notes: Sequence[str]) -> str:
    out = [f"Capacity model — {_heading(targets)}.", "", "| | value | how |", "|---|---:|---|"]
    section = ""
    for line in lines:
        if line.section != section:
            section = line.section
            out.append(f"| **{section}** | | |")
        how = line.formula.replace("|", "\\|")
        if "source" in line.extra:
            how += f" (from {line.extra['source']})"
        out.append(f"| {line.label} | {_value(line)} | {how} |")
    out += ["", proposal(lines)]
    if notes:
        out += ["", *(f"- {note}" for note in notes)]
    return "\n".join(out)


def as_json(targets: Targets, lines: Sequence[Line], notes: Sequence[str], inputs: Mapping[str, str]) -> dict[str, Any]:
    return {
        "benchmark": "capacity",
        "inputs": dict(inputs),
        "targets": asdict(targets),
        "model": {
            line.key: {
                "value": line.value,
                "unit": line.unit,
                "label": line.label,
                "formula": line.formula,
                **dict(line.extra),
            }
            for line in lines
        },
        "proposal": proposal(lines),
        "notes": list(notes),
    }


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gavel bench capacity", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    given = parser.add_argument_group("measured results")
    given.add_argument("--one-room", type=Path, required=True, help="a ramp run without watchers (CPU per bid)")
    given.add_argument("--watchers-run", type=Path, required=True, help="a run with watchers (CPU per delivery)")
    given.add_argument("--appends", type=Path, default=None, help="`gavel bench appends --json` output (optional)")
    d = Targets()
    target = parser.add_argument_group("the target")
    target.add_argument("--rooms", type=_positive_int, default=d.rooms, help="live rooms (lots)")
    target.add_argument("--watchers", type=int, default=d.watchers, help="watcher connections in total")
    target.add_argument("--lots-per-watcher", type=_positive_int, default=d.lots_per_watcher)
    target.add_argument("--bids-per-room-per-s", type=_positive_float, default=d.bids_per_room_per_s)
    target.add_argument("--peak-factor", type=_positive_float, default=d.peak_factor, help="peak / mean bid rate")
    target.add_argument(
        "--cpu-headroom", type=_positive_float, default=d.cpu_headroom, help="plan each core at this share (0.5)"
    )
    target.add_argument("--partitions", type=_positive_int, default=d.partitions, help="room partitions (64)")
    target.add_argument("--cores-per-replica", type=_positive_float, default=d.cores_per_replica)
    target.add_argument("--cores-per-nats-server", type=_positive_float, default=d.cores_per_nats_server)
    out = parser.add_argument_group("output")
    out.add_argument("--json", type=Path, default=None, help="write the model here")
    out.add_argument("--markdown", action="store_true", help="print a Markdown table (for docs/scaling.md)")
    args = parser.parse_args(argv)
    if args.cpu_headroom > 1:
        parser.error("--cpu-headroom is a share of a core: at most 1")
    if args.watchers < 0:
        parser.error("--watchers must be 0 or more")
    targets = Targets(
        rooms=args.rooms,
        watchers=args.watchers,
        lots_per_watcher=args.lots_per_watcher,
        bids_per_room_per_s=args.bids_per_room_per_s,
        peak_factor=args.peak_factor,
        cpu_headroom=args.cpu_headroom,
        partitions=args.partitions,
        cores_per_replica=args.cores_per_replica,
        cores_per_nats_server=args.cores_per_nats_server,
    )
    try:
        appends = json.loads(args.appends.read_text()) if args.appends else None
        measured = measured_from(
            json.loads(args.one_room.read_text()),
            str(args.one_room),
            json.loads(args.watchers_run.read_text()),
            str(args.watchers_run),
            appends,
            str(args.appends or ""),
        )
    except (OSError, json.JSONDecodeError, KeyError, CapacityError) as exc:
        print(f"gavel bench capacity: {exc}", file=sys.stderr)
        return 2
    lines = model(targets, measured)
    notes = list(measured.notes)
    if measured.append_ceiling is None:
        notes.append("No --appends file: the event log's streams are not sized.")
    print(markdown_table(targets, lines, notes) if args.markdown else text_table(targets, lines, notes))
    if args.json is not None:
        inputs = {"one_room": str(args.one_room), "watchers_run": str(args.watchers_run)}
        if args.appends:
            inputs["appends"] = str(args.appends)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(as_json(targets, lines, notes, inputs), indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0
