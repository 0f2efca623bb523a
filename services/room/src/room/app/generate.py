"""Random replay input (`gavel replay --generate N --seed S`): a mix of every live format, for tests.

The same (lots, seed) always gives the same file. Lot lines come first; the command lines follow
shuffled across lots and out of time order, so a replay also exercises the t_ms ordering.
"""

from __future__ import annotations

import json
import random
from typing import Any

KINDS = ("english", "english_soft", "rounds", "crier", "dutch", "lucky")
BIDDERS = ("alice", "bob", "carol", "dave", "erin", "frank")


def _bids(rng: random.Random, lot_id: str, start: int, end: int, low: int, high: int, n: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "bid",
            "lot_id": lot_id,
            "t_ms": rng.randint(start, end),
            "bidder": rng.choice(BIDDERS),
            "max_amount": rng.randint(low, high),
        }
        for _ in range(n)
    ]


def _steps_adding_up_to(rng: random.Random, total: int) -> list[int]:
    """A seller's Dutch step list: a few distinct step sizes, some used several times, adding up to `total`."""
    sizes = sorted({max(1, total // rng.randint(10, 60)) for _ in range(rng.randint(1, 3))})
    steps: list[int] = []
    while sum(steps) + sizes[0] <= total:
        steps.append(rng.choice([size for size in sizes if sum(steps) + size <= total]))
    if sum(steps) < total:
        steps.append(total - sum(steps))
    return steps


def _confirmations(rng: random.Random, lot: dict[str, Any], after: int) -> list[dict[str, Any]]:
    if not rng.random() < 0.5:
        return []
    lot["confirmation_timeout_ms"] = rng.choice((5_000, 60_000))
    return [
        {
            "type": rng.choice(("confirm", "decline")),
            "lot_id": lot["lot_id"],
            "t_ms": after + rng.randint(0, 90_000),
            "bidder": rng.choice(BIDDERS),
        }
        for _ in range(rng.randint(1, 4))
    ]


def _lot(rng: random.Random, index: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    kind = rng.choice(KINDS)
    lot_id = f"lot-{index:04d}"
    opens = rng.randint(0, 10_000)
    lot: dict[str, Any] = {
        "type": "lot",
        "lot_id": lot_id,
        "currency": "USD",
        "opens_at_ms": opens,
        "seed": rng.randint(0, 2**62),
    }
    actions: list[dict[str, Any]] = []
    if kind in ("english", "english_soft", "rounds", "crier"):
        opening = rng.choice((100, 500, 9_900, 25_000))
        lot.update(format="english", opening_bid=opening, increments=rng.choice(([[0, 5], [100, 25]], "ebay_usd")))
        if rng.random() < 0.3:
            lot["reserve"] = opening * rng.randint(1, 4)
        if kind in ("english", "english_soft") and rng.random() < 0.2:
            lot["buy_now"] = opening * 5
            actions.append(
                {"type": "buy_now", "lot_id": lot_id, "t_ms": opens + rng.randint(0, 5_000), "bidder": "zoe"}
            )
        if kind == "rounds":
            lot.update(close="rounds", rounds=rng.randint(1, 4), round_duration_ms=20_000)
            end = opens + lot["rounds"] * 20_000
        else:
            end = opens + rng.randint(30_000, 120_000)
            lot["closes_at_ms"] = end
        if kind == "english_soft":
            lot.update(
                close="soft",
                soft_close_window_ms=10_000,
                soft_close_mode=rng.choice(("reset", "extend")),
                soft_close_max_extension_ms=rng.choice((0, 30_000)),
            )
        if kind == "crier":
            lot.update(close="crier", reopen_grace_ms=rng.choice((0, 3_000)))
            lot.pop("closes_at_ms")
            for _ in range(rng.randint(0, 8)):
                actions.append(
                    {
                        "type": "bid",
                        "lot_id": lot_id,
                        "t_ms": rng.randint(opens, end),
                        "bidder": rng.choice(BIDDERS),
                        "paddle": f"P{rng.randint(1, 99)}",
                        "force": rng.randint(0, 1000),
                        "press_ms": rng.randint(50, 2_500),
                    }
                )
            for action in ("going_once", "going_twice", "undo", "asking", "reopen"):
                if rng.random() < 0.3:
                    entry = {"type": "crier", "lot_id": lot_id, "t_ms": rng.randint(opens, end), "action": action}
                    if action == "asking":
                        entry["amount"] = opening * rng.randint(1, 6)
                    actions.append(entry)
            actions.append({"type": "crier", "lot_id": lot_id, "t_ms": end, "action": rng.choice(("hammer", "pass"))})
        actions += _bids(rng, lot_id, opens - 1_000, end + 1_000, opening // 2, opening * 6, rng.randint(0, 25))
    elif kind == "dutch":
        start = rng.choice((10_000, 50_000, 100_000))
        floor = start // rng.choice((2, 4, 10))
        lot.update(format="dutch", start_price=start, floor_price=floor, tick_ms=1_000)
        mode = rng.random()
        if mode < 0.4:
            lot.update(step_mode="fixed", step=(start - floor) // rng.randint(5, 40) or 1)
        elif mode < 0.7:
            lot.update(step_mode="random", random_steps=rng.randint(2, 40))
        else:
            lot.update(step_mode="random", steps=_steps_adding_up_to(rng, start))
        end = opens + 45_000
        actions += _bids(rng, lot_id, opens, end, floor, start, rng.randint(0, 3))
    else:
        options = [f"option {n}" for n in range(rng.randint(2, 6))]
        lot.update(
            format="lucky",
            options=options,
            price=rng.choice((500, 2_000)),
            window_ms=10_000,
            winning_rule=rng.choice(("drawn", "drawn_per_window")),
            draw_secret=rng.randbytes(32).hex(),
        )
        end = opens + 30_000
        for _ in range(rng.randint(0, 8)):
            actions.append(
                {
                    "type": "pick",
                    "lot_id": lot_id,
                    "t_ms": rng.randint(opens, end),
                    "bidder": rng.choice(BIDDERS),
                    "option": rng.randrange(len(options)),
                }
            )
    actions += _confirmations(rng, lot, end)
    return lot, actions


def generate(lots: int, seed: int) -> list[str]:
    """`lots` random lots and their commands as replay input lines."""
    rng = random.Random(seed)
    lot_lines: list[str] = []
    actions: list[dict[str, Any]] = []
    for index in range(lots):
        lot, lot_actions = _lot(rng, index)
        lot_lines.append(json.dumps(lot, separators=(",", ":")))
        actions.extend(lot_actions)
    rng.shuffle(actions)
    return lot_lines + [json.dumps(action, separators=(",", ":")) for action in actions]
