"""`gavel bench-engine`: how many English bids per second the pure engine decides and applies.

Runs K proxy-English lots (hard close, far-off deadline, eBay increment table) in one process and
feeds them a random bid stream: each batch bids once on each of up to `--batch` different lots,
from a random one of the lot's bidders, at a maximum 0-6 increments over the minimum bid the
bidder was shown; one bid in twenty is stale (below that minimum). About 90 % are accepted; the
rest are refused as too low or as not above the leader's own maximum (a refusal raises, so it
costs more than an acceptance). Batches are generated outside the timed section; only
`engine.decide` + `engine.apply` of every event are timed. Prints progress while it runs, then the
result; `--json` writes a summary, `--plot` a PNG of the throughput over each second of engine time.

    gavel bench-engine --lots 1000 --bids 3000000 --json var/bench-engine.json --plot var/bench-engine.png
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gavel_core.errors import GavelError
from gavel_core.formats import EnglishClose, EnglishParams, Format, LotTerms
from gavel_core.increments import IncrementTable
from room.domain import AnyEngine, LotState, OpenLot, PlaceBid, engine_for

TARGET_BIDS_PER_SECOND = 200_000
DAY_MS = 24 * 3600 * 1000
TABLE = IncrementTable.preset("ebay_usd")


@dataclass(slots=True)
class Lot:
    engine: AnyEngine
    state: LotState
    opening: int
    bidders: tuple[str, ...]


@dataclass(slots=True)
class Totals:
    bids: int = 0
    accepted: int = 0
    engine_seconds: float = 0.0
    per_batch: list[tuple[float, int]] = field(default_factory=list)  # (engine seconds so far, bids so far)


def _lots(count: int, bidders: int, rng: random.Random) -> list[Lot]:
    lots = []
    for index in range(count):
        opening = rng.choice((100, 990, 5_000, 25_000))
        params = EnglishParams(opening_bid=opening, increments=TABLE, close=EnglishClose.HARD, duration_ms=7 * DAY_MS)
        engine = engine_for(LotTerms(currency="USD", format=Format.ENGLISH, params=params))
        state = engine.initial_state(f"lot-{index:06d}")
        for event in engine.decide(state, OpenLot(), 0):
            engine.apply(state, event)
        names = tuple(f"bidder-{index}-{n}" for n in range(bidders))
        lots.append(Lot(engine, state, opening, names))
    return lots


Work = list[tuple[AnyEngine, LotState, PlaceBid, int]]


def _batch(lots: list[Lot], size: int, first: int, rng: random.Random) -> Work:
    """Bids for `size` different lots (each lot at most once, so its bidder saw the current price):
    a random bidder, a maximum 0-6 increments over the minimum shown, one bid in twenty stale (below it)."""
    batch = []
    for n, index in enumerate(rng.sample(range(len(lots)), size), start=first):
        lot = lots[index]
        state = lot.state
        shown = state.price + TABLE.step_at(state.price) if state.leader is not None else lot.opening
        step = TABLE.step_at(shown)
        amount = shown + step * (rng.randint(0, 6) if rng.random() >= 0.05 else -1)
        command = PlaceBid(f"b{n}", lot.bidders[rng.randrange(len(lot.bidders))], amount)
        batch.append((lot.engine, state, command, 1_000 + n))
    return batch


def run(
    lots: int, bids: int, bidders: int, batch_size: int, seed: int, gc_mode: str, progress_s: float
) -> dict[str, Any]:
    rng = random.Random(seed)
    book = _lots(lots, bidders, rng)
    if gc_mode == "tuned":  # what a room process does after start-up: no rescans of long-lived objects
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 50)
    elif gc_mode == "off":
        gc.disable()
    totals = Totals()
    wall_start = time.perf_counter()
    next_report = progress_s
    while totals.bids < bids:
        batch = _batch(book, min(batch_size, lots, bids - totals.bids), totals.bids, rng)
        accepted = 0
        started = time.perf_counter()
        for engine, state, command, now in batch:
            try:
                events = engine.decide(state, command, now)
            except GavelError:
                continue
            accepted += 1
            for event in events:
                engine.apply(state, event)
        totals.engine_seconds += time.perf_counter() - started
        totals.bids += len(batch)
        totals.accepted += accepted
        totals.per_batch.append((totals.engine_seconds, totals.bids))
        if totals.engine_seconds >= next_report:
            next_report += progress_s
            rate = totals.bids / totals.engine_seconds
            print(
                f"[{time.perf_counter() - wall_start:6.1f}s] {totals.bids:>10,} bids  engine {rate:>9,.0f} bids/s"
                f"  accepted {totals.accepted / totals.bids:5.1%}",
                flush=True,
            )
    wall = time.perf_counter() - wall_start
    gc.enable()
    gc.unfreeze()
    return {
        "benchmark": "engine-alone",
        "format": "english proxy, hard close",
        "lots": lots,
        "bidders_per_lot": bidders,
        "bids": totals.bids,
        "accepted": totals.accepted,
        "rejected": totals.bids - totals.accepted,
        "engine_seconds": round(totals.engine_seconds, 4),
        "wall_seconds": round(wall, 4),
        "bids_per_second": round(totals.bids / totals.engine_seconds),
        "accepted_per_second": round(totals.accepted / totals.engine_seconds),
        "target_bids_per_second": TARGET_BIDS_PER_SECOND,
        "per_second": _per_second(totals.per_batch),
        "seed": seed,
        "batch_size": batch_size,
        "gc": gc_mode,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
    }


def _per_second(points: list[tuple[float, int]]) -> list[int]:
    """Bids decided in each whole second of engine time (the last, partial second scaled up)."""
    rates: list[int] = []
    done_before = 0
    for second in range(1, int(points[-1][0]) + 2 if points else 0):
        inside = [bids for seconds, bids in points if seconds <= second]
        if not inside:
            rates.append(0)
            continue
        upto = inside[-1]
        elapsed = min(float(second), points[-1][0]) - (second - 1)
        if elapsed <= 0:
            break
        rates.append(round((upto - done_before) / elapsed))
        done_before = upto
    return rates


def _plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = summary["per_second"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(range(1, len(rates) + 1), rates, marker="o", label="bids decided + applied, per second")
    ax.axhline(summary["bids_per_second"], color="tab:green", linestyle="--", label="run average")
    ax.axhline(summary["target_bids_per_second"], color="tab:red", linestyle=":", label="target")
    ax.set_xlabel("second of engine time")
    ax.set_ylabel("bids / s")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Gavel English engine alone: {summary['lots']} lots, {summary['bids']:,} bids, gc={summary['gc']}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gavel bench-engine", description=__doc__.splitlines()[0])
    parser.add_argument("--lots", type=int, default=1_000, help="English lots bid on at once (default 1000)")
    parser.add_argument("--bids", type=int, default=2_000_000, help="bids to decide in all (default 2,000,000)")
    parser.add_argument("--bidders", type=int, default=20, help="bidders per lot (default 20)")
    parser.add_argument(
        "--batch", type=int, default=1_000, help="bids generated per untimed batch, at most one per lot (default 1,000)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--gc",
        choices=("default", "tuned", "off"),
        default="default",
        help="default, tuned (freeze + high threshold) or off",
    )
    parser.add_argument("--progress", type=float, default=1.0, help="seconds of engine time between progress lines")
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument("--plot", type=Path, help="write a PNG of the throughput per second here")
    args = parser.parse_args(argv)
    if args.lots < 1 or args.bids < 1 or args.bidders < 1 or args.batch < 1:
        parser.error("--lots, --bids, --bidders and --batch must be positive")
    summary = run(args.lots, args.bids, args.bidders, args.batch, args.seed, args.gc, args.progress)
    print(
        f"engine alone: {summary['bids_per_second']:,} bids/s ({summary['accepted_per_second']:,} accepted/s) over "
        f"{summary['bids']:,} bids on {summary['lots']:,} lots in {summary['engine_seconds']:.2f} s of engine time "
        f"({summary['wall_seconds']:.2f} s wall), gc={summary['gc']}, Python {summary['python']}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if args.plot:
        _plot(summary, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
