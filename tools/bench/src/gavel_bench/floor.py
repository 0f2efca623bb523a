"""`gavel bench floor`: what the bare parts allow on this machine, before any Gavel code runs.

    gavel bench floor --one-room docs/benchmarks/one-room-process.json --appends docs/benchmarks/appends.json

A durable bid needs at least one gRPC call answered and one fsync'd JetStream append. Both were
measured bare in the same matrix, with the CPU of every process involved:

- the echo ceiling (in every room run's JSON, `echo`): a grpc.aio server that returns the request
  bytes, and the client processes calling it — CPU seconds per call on each side;
- `gavel bench appends`: one nats-py client appending to one file stream, and the nats-server
  storing each append — CPU seconds per append on each side, and the stream's best appends/s.

From these unit costs, three upper bounds on durable bids/s, whatever the room does besides:

- one room process: a Python process runs on one core at a time, and it must at least answer the
  call and make the append: 1 / (server CPU per call + client CPU per append);
- one stream: its best fsync'd appends/s on this disk;
- the machine: the bid clients, the room, the nats client inside it and the nats-server share
  its cores: cores / (the four unit costs together).

The 10,000-room run asks more than bids: with W watchers per room every bid is also W deliveries.
What the machine's cores leave for those, after the bids at their bare cost, is the budget per
delivery (server write and client read together) that the target would need.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gavel_bench.capacity import nats_cpu

ONE_ROOM_TARGET = 5_000  # durable bids/s of one room process (the benchmark issue; matrix.targets too)
ECHO_SHARE_TARGET = 0.7  # of the echo ceiling, for that same process
MANY_ROOMS_RATE = 2_000  # bids/s of the 10,000-room run
MANY_ROOMS_WATCHERS = 5  # watchers per room in that run


class FloorError(ValueError):
    """A result file without the figures the floor needs."""


@dataclass(frozen=True)
class BareCosts:
    """CPU seconds per unit, from the bare measurements."""

    echo_rps: float
    server_per_call: float
    clients_per_call: float
    client_per_append: float
    nats_per_append: float
    stream_appends_per_s: float
    cores: int

    @property
    def room_floor(self) -> float:
        """The least CPU a room process spends per durable bid: answer the call, make the append."""
        return self.server_per_call + self.client_per_append

    @property
    def machine_floor(self) -> float:
        """The least CPU the whole machine spends per durable bid."""
        return self.room_floor + self.clients_per_call + self.nats_per_append


def _share(cpu_percent: Mapping[str, float], match: str) -> float:
    return sum(value for name, value in cpu_percent.items() if name.startswith(match)) / 100


def bare_costs(one_room: Mapping[str, Any], appends: Mapping[str, Any]) -> BareCosts:
    echo = one_room.get("echo") or {}
    echo_cpu = echo.get("cpu_percent") or {}
    if not echo.get("rps") or "echo-server" not in echo_cpu:
        raise FloorError("the room run has no echo ceiling with its CPU (`echo.rps`, `echo.cpu_percent`)")
    best = appends.get("best_appends_per_s")
    level = next((lv for lv in appends.get("levels", []) if lv.get("appends_per_s") == best), None)
    if not best or level is None or "nats-server" not in level.get("cpu_percent", {}):
        raise FloorError("the appends result has no best level with its CPU (`gavel bench appends --json`)")
    rps = float(echo["rps"])
    cores = int((one_room.get("machine") or {}).get("logical_cpus") or 0)
    if cores <= 0:
        raise FloorError("the room run does not say how many CPUs the machine has (`machine.logical_cpus`)")
    return BareCosts(
        echo_rps=rps,
        server_per_call=_share(echo_cpu, "echo-server") / rps,
        clients_per_call=_share(echo_cpu, "echo-client") / rps,
        client_per_append=_share(level["cpu_percent"], "bench") / float(best),
        nats_per_append=nats_cpu(level["cpu_percent"]) / 100 / float(best),
        stream_appends_per_s=float(best),
        cores=cores,
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def floor_lines(costs: BareCosts) -> list[str]:
    """Markdown bullets: the unit costs, the three bounds and what the targets would need."""
    c = costs
    per_room = 1 / c.room_floor
    per_machine = c.cores / c.machine_floor
    bound = min(per_room, c.stream_appends_per_s, per_machine)
    bids_cores = MANY_ROOMS_RATE * c.machine_floor
    deliveries = MANY_ROOMS_RATE * MANY_ROOMS_WATCHERS
    left = c.cores - bids_cores
    lines = [
        f"- Bare unit costs: gRPC call {_ms(c.server_per_call)} server + {_ms(c.clients_per_call)} clients "
        f"(echo, {c.echo_rps:,.0f} calls/s); JetStream append {_ms(c.client_per_append)} client + "
        f"{_ms(c.nats_per_append)} nats-server ({c.stream_appends_per_s:,.0f} appends/s best).",
        f"- One room process can answer at most 1 / ({_ms(c.room_floor)}) = **{per_room:,.0f} durable bids/s** "
        f"({per_room / c.echo_rps:.2f} x the echo ceiling) if it did nothing but the call and the append; one "
        f"stream stores at most **{c.stream_appends_per_s:,.0f}/s**; the {c.cores} cores carry at most "
        f"{c.cores} / {_ms(c.machine_floor)} = **{per_machine:,.0f} bids/s** with clients and nats-server on them.",
        f"- So on this machine no room process can reach {ONE_ROOM_TARGET:,} durable bids/s (bound "
        f"{bound:,.0f}/s), and {ECHO_SHARE_TARGET:g} x the echo ceiling ({ECHO_SHARE_TARGET * c.echo_rps:,.0f}/s) "
        + (
            f"leaves the room {_ms(1 / (ECHO_SHARE_TARGET * c.echo_rps) - c.room_floor)} per bid for everything "
            "but the call and the append"
            if ECHO_SHARE_TARGET * c.echo_rps < bound
            else "is above the bound too"
        )
        + ".",
    ]
    if left > 0:
        lines.append(
            f"- {MANY_ROOMS_RATE:,} bids/s at the bare floor take {bids_cores:.2f} of the {c.cores} cores; the "
            f"{deliveries:,} watcher deliveries/s of the 10,000-room run ({MANY_ROOMS_WATCHERS} watchers per room) "
            f"would have to cost at most {_ms(left / deliveries)} each, server write and client read together, "
            "with no room code at all."
        )
    else:
        lines.append(
            f"- {MANY_ROOMS_RATE:,} bids/s at the bare floor alone need {bids_cores:.2f} cores: more than the "
            f"{c.cores} this machine has, before any watcher delivery."
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gavel bench floor", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--one-room", type=Path, required=True, help="a room run's JSON (its echo ceiling)")
    parser.add_argument("--appends", type=Path, required=True, help="`gavel bench appends --json` output")
    args = parser.parse_args(argv)
    try:
        costs = bare_costs(json.loads(args.one_room.read_text()), json.loads(args.appends.read_text()))
    except (OSError, json.JSONDecodeError, FloorError) as exc:
        print(f"gavel bench floor: {exc}", file=sys.stderr)
        return 2
    print("\n".join(floor_lines(costs)))
    return 0
