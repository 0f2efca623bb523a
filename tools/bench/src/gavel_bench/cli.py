"""`gavel bench`: drive a Gavel cluster with rooms, watchers and a bid rate; report what it did.

    gavel bench --rooms 1000 --watchers 5 --rate 1000 --duration 30 --json out.json --plot out.png
    gavel bench --rooms 1000 --watchers 0 --ramp 500,1000,2000,4000 --duration 10
    gavel bench --rooms 1000 --room-replicas 3 --kill-room-replica-every 10 --duration 40
    gavel bench --target --rooms 100 …          (a running cluster: GAVEL_* env, or the options)
    gavel bench matrix --out docs/benchmarks.md (the standard set; see `gavel bench matrix --help`)
    gavel bench appends --json appends.json     (one JetStream stream's durable appends/s on this disk)
    gavel bench keyedlog --json keyedlog.json   (the shared group-committed keyed log alone, open loop)
    gavel bench capacity --one-room A.json --watchers-run B.json [--appends C.json]  (a capacity model)
    gavel bench floor --one-room A.json --appends C.json  (what the bare gRPC call and append allow here)

Without --target it starts its own cluster (`gavel up --no-seed`, free loopback ports, var dir
var/bench-<ts>/) and stops it at the end. Lots are created through the catalog and opened by a
crier; W watchers per room are Watch streams of 10 lots each; bids are open-loop at the target
rate, latency measured from each bid's scheduled send time. Prints a line per second. See
docs/benchmarks.md for what each figure means.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from gavel_bench.runner import RunOptions, run

GATEWAY_UNAVAILABLE = 2


def _rates(text: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of bids/s, e.g. 500,1000,2000") from None
    if not rates or any(rate <= 0 for rate in rates):
        raise argparse.ArgumentTypeError("rates must be positive")
    return rates


def _positive(kind: Callable[[str], int | float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError("must be positive")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gavel bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    load = p.add_argument_group("load")
    load.add_argument("--rooms", type=_positive(int), default=100, help="lots (one room each) to create and bid on")
    load.add_argument("--watchers", type=int, default=5, help="watchers per room (each stream follows 10 lots)")
    load.add_argument("--rate", type=_positive(float), default=500.0, help="target bids/s, all clients together")
    load.add_argument(
        "--duration", type=_positive(float), default=30.0, help="seconds of the measured window (per ramp step)"
    )
    load.add_argument(
        "--ramp", type=_rates, default=(), help="several target rates, one after the other (e.g. 1000,2000,4000)"
    )
    load.add_argument("--via", choices=("grpc", "gateway"), default="grpc", help="how clients reach the room")
    load.add_argument("--client-procs", type=_positive(int), default=2, help="client processes (default 2)")
    load.add_argument(
        "--concurrency", type=_positive(int), default=128, help="bids in flight per client process (and echo callers)"
    )
    load.add_argument("--seed", type=int, default=1)
    failover = p.add_argument_group("room replicas and failover")
    failover.add_argument(
        "--room-replicas", type=_positive(int), default=1, help="room replicas in total (extra ones are started)"
    )
    failover.add_argument(
        "--kill-room-replica-every",
        type=_positive(float),
        default=None,
        metavar="S",
        help="SIGKILL (and restart) an extra room replica every S seconds",
    )
    failover.add_argument(
        "--kill-nats-every",
        type=_positive(float),
        default=None,
        metavar="S",
        help="SIGKILL the started cluster's embedded nats-server every S seconds (gavel up restarts it)",
    )
    target = p.add_argument_group("a running cluster (default: start one)")
    target.add_argument("--target", action="store_true", help="drive a running cluster instead of starting one")
    target.add_argument("--catalog-addr", default=None, help="default: GAVEL_CATALOG_ADDR or the default port")
    target.add_argument("--room-addr", action="append", default=None, help="a room replica (repeat for several)")
    target.add_argument("--nats-url", default=None, help="default: GAVEL_NATS_URL")
    target.add_argument(
        "--keys-dir", default=None, help="the cluster's signing keys (default: GAVEL_KEYS_DIR or <GAVEL_VAR_DIR>/keys)"
    )
    target.add_argument("--room-database-url", default=None, help="the room's database, for extra replicas on a target")
    out = p.add_argument_group("output")
    out.add_argument("--json", type=Path, default=None, help="write the summary here")
    out.add_argument(
        "--plot", type=Path, default=None, help="write a PNG here (latency distribution, throughput over time)"
    )
    out.add_argument(
        "--var-dir", type=Path, default=Path("var"), help="where var/bench-<ts>/ of a started cluster goes"
    )
    out.add_argument(
        "--echo-duration", type=_positive(float), default=5.0, help="seconds of the echo-ceiling measurement"
    )
    out.add_argument(
        "--profile-room",
        type=_positive(float),
        default=None,
        metavar="S",
        help="py-spy the started cluster's room replica for S seconds of the window (needs py-spy installed)",
    )
    return p


def command_line(argv: list[str]) -> str:
    return shlex.join(["gavel", "bench", *argv])


def main(argv: list[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "matrix":
        from gavel_bench.matrix import main as matrix_main

        return matrix_main(args_list[1:])
    if args_list and args_list[0] == "appends":
        from gavel_bench.appends import main as appends_main

        return appends_main(args_list[1:])
    if args_list and args_list[0] == "keyedlog":
        from gavel_bench.keyedlog import main as keyedlog_main

        return keyedlog_main(args_list[1:])
    if args_list and args_list[0] == "capacity":
        from gavel_bench.capacity import main as capacity_main

        return capacity_main(args_list[1:])
    if args_list and args_list[0] == "floor":
        from gavel_bench.floor import main as floor_main

        return floor_main(args_list[1:])
    args = parser().parse_args(args_list)
    if args.via == "gateway":
        print("gavel bench: --via gateway is not available until the gateway WebSocket exists", file=sys.stderr)
        return GATEWAY_UNAVAILABLE
    if args.watchers < 0:
        print("gavel bench: --watchers must be 0 or more", file=sys.stderr)
        return 2
    if args.kill_nats_every and args.target:
        print("gavel bench: --kill-nats-every needs a cluster it starts (not --target)", file=sys.stderr)
        return 2
    if args.kill_room_replica_every and args.room_replicas < 2:
        print("gavel bench: --kill-room-replica-every needs --room-replicas 2 or more", file=sys.stderr)
        return 2
    options = RunOptions(
        rooms=args.rooms,
        watchers=args.watchers,
        rate=args.rate,
        duration_s=args.duration,
        ramp=args.ramp,
        room_replicas=args.room_replicas,
        kill_every_s=args.kill_room_replica_every,
        kill_nats_every_s=args.kill_nats_every,
        target=args.target,
        catalog=args.catalog_addr,
        room_addresses=args.room_addr,
        nats_url=args.nats_url,
        keys_dir=args.keys_dir,
        room_database_url=args.room_database_url,
        client_processes=args.client_procs,
        concurrency=args.concurrency,
        echo_duration_s=args.echo_duration,
        json_path=args.json,
        plot_path=args.plot,
        var_root=args.var_dir,
        seed=args.seed,
        profile_room_s=args.profile_room,
        command=command_line(args_list),
    )
    try:
        result = run(options)
    except KeyboardInterrupt:
        print("gavel bench: interrupted; everything it started was stopped", file=sys.stderr)
        return 130
    print(
        f"\n{result['bids_per_s']:,.0f} bids/s acknowledged (target {result['target_rate']:,.0f}); "
        f"PlaceBid p50 {result['bid_rpc_ms']['p50']} ms p99 {result['bid_rpc_ms']['p99']} ms; "
        f"fan-out p50 {result['fanout_ms']['p50']} ms p99 {result['fanout_ms']['p99']} ms; "
        f"lost {result['bids_lost']}, duplicated {result['bids_duplicated']}; "
        f"echo ceiling {result['echo_ceiling_rps']:,.0f}/s"
        + (f"; failover max {result['failover_s']['max']} s" if result["failover_s"] else "")
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
