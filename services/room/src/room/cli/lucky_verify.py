"""`gavel lucky-verify`: check that a lucky lot's winning option was fixed before anyone picked.

    gavel lucky-verify --lot LOT --draw N --option K --nonce HEX --commitment HEX
    gavel lucky-verify --events FILE

The first form checks one reveal against the commitment you saw when the window opened (on
Watch: `LuckyWindowOpened.commitment`; the reveal is the `LuckyDrawRevealed` at the close). The
second checks every reveal in a lot event log as `gavel replay --record` writes it, against the
commitments its windows opened with. Either prints one JSON line per draw and exits 0 when every
draw verifies, 1 when one does not, 2 on malformed input. The same check by hand:

    printf '%s' "gavel-lucky-v1:$LOT:$DRAW:$OPTION:$NONCE" | sha256sum   # must print the commitment

(docs/auction-formats.md "Verifying a lucky draw").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any

from gavel_core.errors import InvalidArgument
from room.domain import event_from_dict
from room.domain.draws import verify
from room.domain.events import LuckyDrawRevealed, LuckyWindowOpened

PROG = "gavel lucky-verify"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Verify a lucky lot's revealed draw against its commitment."
    )
    parser.add_argument("--lot", help="the lot id")
    parser.add_argument("--draw", type=int, help="the draw number (LuckyDrawRevealed.draw)")
    parser.add_argument("--option", type=int, help="the revealed winning option (LuckyDrawRevealed.option)")
    parser.add_argument("--nonce", help="the revealed nonce (LuckyDrawRevealed.nonce)")
    parser.add_argument("--commitment", help="the commitment published when the window opened")
    parser.add_argument("--events", metavar="FILE", help="check every reveal in an event log instead")
    return parser


def verify_log(lines: Iterable[str]) -> list[dict[str, Any]]:
    """One result per reveal: its commitment must have been published by an earlier window of the
    same lot, and must hide the revealed option and nonce. ValueError names a malformed line."""
    published: dict[str, set[str]] = {}
    results: list[dict[str, Any]] = []
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"line {number}: not a JSON object")
        if data.get("type") == "lot":
            continue
        try:
            event = event_from_dict(data)
        except InvalidArgument as exc:
            raise ValueError(f"line {number}: not an event ({exc.violations[0].description})") from None
        if isinstance(event, LuckyWindowOpened) and event.commitment:
            published.setdefault(event.lot_id, set()).add(event.commitment)
        elif isinstance(event, LuckyDrawRevealed):
            seen = event.commitment in published.get(event.lot_id, set())
            matches = verify(event.lot_id, event.draw, event.option, event.nonce, event.commitment)
            results.append(
                {
                    "lot_id": event.lot_id,
                    "draw": event.draw,
                    "option": event.option,
                    "commitment": event.commitment,
                    "published_before": seen,
                    "verified": seen and matches,
                }
            )
    return results


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    single = (args.lot, args.draw, args.option, args.nonce, args.commitment)
    if args.events:
        if any(value is not None for value in single):
            parser.error("give either --events or the five values of one draw")
        try:
            with open(args.events, encoding="utf-8") as handle:
                results = verify_log(handle)
        except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
            print(f"{PROG}: {args.events}: {exc}", file=sys.stderr)
            return 2
    elif any(value is None for value in single):
        parser.error("give --lot, --draw, --option, --nonce and --commitment (or --events FILE)")
    else:
        ok = verify(args.lot, args.draw, args.option, args.nonce.lower(), args.commitment.lower())
        results = [{"lot_id": args.lot, "draw": args.draw, "option": args.option, "verified": ok}]
    for result in results:
        sys.stdout.write(json.dumps(result, separators=(",", ":")) + "\n")
    return 0 if all(result["verified"] for result in results) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
