"""Lucky pick: the room draws the winning option, commits to it before the first pick, reveals it at the close."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest
from room_support import DRAW_SECRET, Lot, lucky, names, reason

from gavel_core.errors import InvalidArgument
from gavel_core.formats import LuckyWinningRule
from room.domain import OpenLot, PickOption, Tick, engine_for
from room.domain.draws import commitment, drawn_option, preimage, verify
from room.domain.events import LotOpened, LotSold, LotUnsold, LuckyDrawRevealed, LuckyWindowOpened, OptionPicked
from room.domain.model import LuckyState

OPTIONS = ("red", "green", "blue")


def open_lucky(secret: bytes = DRAW_SECRET, **kwargs: object) -> Lot:
    lot = Lot(lucky(**kwargs), draw_secret=secret)  # type: ignore[arg-type]
    lot.open(0)
    return lot


def winning(lot: Lot) -> int:
    state = lot.state
    assert isinstance(state, LuckyState)
    return state.winning_option


def wrong(lot: Lot, n: int = 0) -> int:
    return [option for option in range(len(OPTIONS)) if option != winning(lot)][n]


def test_opening_starts_the_first_window_with_a_commitment_to_the_rooms_draw() -> None:
    lot = open_lucky()
    option, nonce = drawn_option(DRAW_SECRET, "lot-1", 1, len(OPTIONS))
    assert lot.events[-1] == LuckyWindowOpened("lot-1", 0, 1, option, 10_000, commitment("lot-1", 1, option, nonce))


def test_the_first_to_pick_the_winning_option_wins_at_the_fixed_price_and_the_draw_is_revealed() -> None:
    lot = open_lucky()
    assert lot.do(PickOption("p1", "alice", wrong(lot)), 10) == [
        OptionPicked("lot-1", 10, "p1", "alice", wrong(lot), False)
    ]
    events = lot.do(PickOption("p2", "bob", winning(lot)), 20)
    assert names(events) == ["OptionPicked", "LotSold", "LuckyDrawRevealed"]
    assert events[1] == LotSold("lot-1", 20, "bob", 2_000, "online", None, 0)
    assert reason(lot.refused(PickOption("p3", "carol", winning(lot)), 30)) == "LOT_CLOSED"


def test_each_bidder_picks_once_per_window() -> None:
    lot = open_lucky()
    lot.do(PickOption("p1", "alice", wrong(lot)), 10)
    assert reason(lot.refused(PickOption("p2", "alice", winning(lot)), 20)) == "ALREADY_PICKED"


def test_a_drawn_lot_keeps_its_option_and_commitment_in_every_window() -> None:
    """The specification sets the winning condition once, before the bidding (S541), and returns to
    the bidding step (S543), not to the draw, when a window passes without a winner."""
    lot = open_lucky(extra={"lucky_max_windows": "5"})
    lot.do(PickOption("p1", "alice", wrong(lot)), 10)
    [first] = lot.of_type(LuckyWindowOpened)
    [second] = lot.tick(10_000)
    assert (second.window, second.winning_option, second.commitment) == (2, first.winning_option, first.commitment)
    assert names(lot.do(PickOption("p2", "alice", winning(lot)), 10_001))[-2:] == ["LotSold", "LuckyDrawRevealed"]
    assert [event.draw for event in lot.of_type(LuckyDrawRevealed)] == [1]


def test_a_lot_drawn_per_window_commits_to_each_window_and_reveals_every_draw() -> None:
    lot = open_lucky(
        rule=LuckyWinningRule.DRAWN_PER_WINDOW,
        options=tuple(f"o{n}" for n in range(10)),
        extra={"lucky_max_windows": "20"},
    )
    events = lot.tick(10**6)
    windows = lot.of_type(LuckyWindowOpened)
    assert len(windows) == 20
    assert len({window.commitment for window in windows}) == 20
    assert len({window.winning_option for window in windows}) > 1
    assert names(events)[-21:] == ["LotUnsold"] + ["LuckyDrawRevealed"] * 20
    reveals = lot.of_type(LuckyDrawRevealed)
    assert [(r.draw, r.option, r.commitment) for r in reveals] == [
        (w.window, w.winning_option, w.commitment) for w in windows
    ]


def test_after_the_last_window_the_lot_is_unsold_and_the_draw_revealed() -> None:
    lot = open_lucky(extra={"lucky_max_windows": "2"})
    events = lot.tick(50_000)
    assert names(events) == ["LuckyWindowOpened", "LotUnsold", "LuckyDrawRevealed"]
    assert events[1] == LotUnsold("lot-1", 20_000, "NO_WINNER")
    assert events[2].at_ms == 20_000


def test_the_option_comes_from_the_rooms_secret_not_from_the_seed_the_seller_can_read() -> None:
    def options(secret: bytes, seed: int) -> list[int]:
        lot = open_lucky(
            secret,
            seed=seed,
            rule=LuckyWinningRule.DRAWN_PER_WINDOW,
            options=tuple(f"o{n}" for n in range(10)),
            extra={"lucky_max_windows": "20"},
        )
        lot.tick(10**6)
        return [event.winning_option for event in lot.of_type(LuckyWindowOpened)]

    assert options(DRAW_SECRET, seed=7) == options(DRAW_SECRET, seed=8)  # the seed plays no part
    assert options(DRAW_SECRET, seed=7) != options(bytes(32), seed=7)


def test_a_lucky_lot_without_the_rooms_secret_cannot_be_set_up() -> None:
    with pytest.raises(InvalidArgument) as caught:
        Lot(lucky(), draw_secret=b"")
    assert caught.value.violations[0].field == "draw_secret"


@pytest.mark.parametrize(
    ("rule", "winning_option", "field"),
    [
        (LuckyWinningRule.FIXED, 2, "lot.lucky.winning_rule"),
        (LuckyWinningRule.SEEDED, 0, "lot.lucky.winning_rule"),
        (LuckyWinningRule.DRAWN, 2, "lot.lucky.winning_option"),
    ],
)
def test_a_seller_chosen_or_seed_derived_option_is_refused(
    rule: LuckyWinningRule, winning_option: int, field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        engine_for(lucky(rule=rule, winning_option=winning_option))
    assert [violation.field for violation in caught.value.violations] == [field]


def test_a_lot_recorded_under_the_retired_fixed_rule_replays_and_finishes_as_recorded() -> None:
    terms = lucky(rule=LuckyWinningRule.FIXED, winning_option=2)
    engine = engine_for(terms, recorded=True)
    recorded = [LotOpened("lot-1", 0, "system", "lucky", 2_000, 10_000), LuckyWindowOpened("lot-1", 0, 1, 2, 10_000)]
    state = engine.replay("lot-1", recorded)
    assert engine.decide(state, Tick(), 10_000) == [LuckyWindowOpened("lot-1", 10_000, 2, 2, 20_000, "")]
    events = engine.decide(state, PickOption("p1", "bob", 2), 5)
    assert names(events) == ["OptionPicked", "LotSold"]  # nothing was committed, nothing is revealed


def test_a_lot_configured_under_a_retired_rule_that_has_not_opened_never_opens() -> None:
    lot = Lot(lucky(rule=LuckyWinningRule.SEEDED), draw_secret=b"", recorded=True)
    error = lot.refused(OpenLot(), 0)
    assert reason(error) == "WINNING_RULE_RETIRED"


def test_an_option_out_of_range_is_an_invalid_argument() -> None:
    lot = open_lucky()
    assert isinstance(lot.refused(PickOption("p1", "alice", 3), 10), InvalidArgument)


def test_the_window_bound_must_be_at_least_one() -> None:
    with pytest.raises(InvalidArgument) as caught:
        engine_for(lucky(extra={"lucky_max_windows": "0"}))
    assert caught.value.violations[0].field == "lot.extra.lucky_max_windows"


# -- verifying the draw after the close --------------------------------------------------------------


def closed_lot() -> tuple[Lot, LuckyWindowOpened, LuckyDrawRevealed]:
    lot = open_lucky()
    lot.do(PickOption("p1", "alice", wrong(lot)), 10)
    lot.do(PickOption("p2", "bob", winning(lot)), 20)
    [window] = lot.of_type(LuckyWindowOpened)
    [revealed] = lot.of_type(LuckyDrawRevealed)
    return lot, window, revealed


def test_the_commitment_is_published_before_the_first_pick_and_the_reveal_only_at_the_close() -> None:
    lot, window, revealed = closed_lot()
    order = names(lot.events)
    assert order.index("LuckyWindowOpened") < order.index("OptionPicked")
    assert order.index("LotSold") < order.index("LuckyDrawRevealed") == len(order) - 1
    assert revealed.commitment == window.commitment


def test_a_bidder_verifies_the_revealed_draw_against_the_commitment_seen_at_the_open() -> None:
    _, window, revealed = closed_lot()
    assert verify("lot-1", revealed.draw, revealed.option, revealed.nonce, window.commitment)
    assert revealed.option == window.winning_option


@pytest.mark.parametrize(
    "tampered",
    [
        {"option": "other"},
        {"nonce": "0" * 64},
        {"lot_id": "lot-2"},
        {"draw": 2},
        {"nonce": "short"},
    ],
)
def test_any_other_opening_of_the_commitment_fails_verification(tampered: dict[str, object]) -> None:
    _, window, revealed = closed_lot()
    claim: dict[str, object] = {
        "lot_id": "lot-1",
        "draw": revealed.draw,
        "option": (revealed.option + 1) % len(OPTIONS) if tampered.get("option") == "other" else revealed.option,
        "nonce": revealed.nonce,
    }
    claim.update({key: value for key, value in tampered.items() if key != "option"})
    assert not verify(claim["lot_id"], claim["draw"], claim["option"], claim["nonce"], window.commitment)  # type: ignore[arg-type]


def test_the_documented_sha256_recipe_gives_the_commitment() -> None:
    _, window, revealed = closed_lot()
    text = f"gavel-lucky-v1:lot-1:{revealed.draw}:{revealed.option}:{revealed.nonce}"
    assert text == preimage("lot-1", revealed.draw, revealed.option, revealed.nonce)
    assert hashlib.sha256(text.encode()).hexdigest() == window.commitment
    if shutil.which("sha256sum") is None:
        pytest.skip("no sha256sum on this machine")
    script = "printf '%s' \"gavel-lucky-v1:$LOT:$DRAW:$OPTION:$NONCE\" | sha256sum"
    env = {"LOT": "lot-1", "DRAW": str(revealed.draw), "OPTION": str(revealed.option), "NONCE": revealed.nonce}
    out = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == window.commitment
