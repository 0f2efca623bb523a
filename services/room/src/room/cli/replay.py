"""`gavel replay`: run lots offline through the room's engines, or rebuild them from an event log.

    gavel replay FILE [--detail] [--record EVENTS]   replay JSON Lines input; one result line per lot
    gavel replay --events FILE                       rebuild lots from a recorded event log
    gavel replay --generate N [--seed S] [--out F]   write random replay input

Input format (see docs/replay.md and `room.app.replay`):

    {"type":"lot","lot_id":"L1","format":"english","currency":"USD","opening_bid":9900,"reserve":null,
     "increments":[[0,5],[100,25]],"opens_at_ms":0,"closes_at_ms":259200000}
    {"type":"bid","lot_id":"L1","t_ms":1200,"bidder":"alice","max_amount":17500}

Other formats and parameters are extra keys on the lot line, named as in `gavel_core.formats`
(`close`, `buy_now`, `soft_close_window_ms`, `rounds`, `start_price`, `options`, ...,
`confirmation_timeout_ms`, `seed`, `extra`). Output, one line per lot in input order:

    {"lot_id":"L1","outcome":"sold","winner":"alice","price":17750,"bids_accepted":3,"bids_rejected":1}

`outcome` is "sold" or "unsold" (or the phase a lot was left in, e.g. "open" for a crier lot that
was never hammered); `--detail` adds the unsold reason, event count, state hash and every
rejection. Malformed input: a message naming the line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from room.app.generate import generate
from room.app.replay import ReplayInputError, event_log_lines, parse, replay_events, run_lot

PROG = "gavel replay"


@contextmanager
def _open(path: str, mode: str) -> Iterator[IO[str]]:
    if path == "-":
        yield sys.stdin if "r" in mode else sys.stdout
        return
    with open(path, mode, encoding="utf-8") as handle:
        yield handle


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Replay lots through the room's auction engines.")
    parser.add_argument("file", nargs="?", help="replay input (JSON Lines; '-' for stdin)")
    parser.add_argument("--events", metavar="FILE", help="rebuild lots from a recorded event log instead")
    parser.add_argument("--detail", action="store_true", help="add reason, event count, state hash and rejections")
    parser.add_argument("--record", metavar="FILE", help="also write the lots' event log (replayable with --events)")
    parser.add_argument("--generate", metavar="N", type=int, help="write N random lots of replay input and stop")
    parser.add_argument("--seed", type=int, default=0, help="seed for --generate (default 0)")
    parser.add_argument("--out", metavar="FILE", default="-", help="where --generate writes (default stdout)")
    return parser


def _emit(rows: list[dict[str, object]]) -> None:
    for row in rows:
        sys.stdout.write(json.dumps(row, separators=(",", ":")) + "\n")


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    source = args.events or args.file
    try:
        if args.generate is not None:
            if args.generate < 0:
                parser.error("--generate needs a non-negative number of lots")
            with _open(args.out, "w") as out:
                out.writelines(line + "\n" for line in generate(args.generate, args.seed))
            return 0
        if source is None or (args.events and args.file):
            parser.error("give exactly one of FILE or --events FILE")
        with _open(source, "r") as handle:
            if args.events:
                _emit(replay_events(handle))
                return 0
            runs = [run_lot(spec) for spec in parse(handle)]
        _emit([run.result(detail=args.detail) for run in runs])
        if args.record:
            with _open(args.record, "w") as out:
                out.writelines(line + "\n" for line in event_log_lines(runs))
    except ReplayInputError as exc:
        print(f"{PROG}: {source}:{exc.line}: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
