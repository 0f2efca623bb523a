"""`gavel lucky-verify`: any bidder checks after the close that the draw was fixed before the first pick."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from room_support import DRAW_SECRET, Lot, lucky

from room.cli import lucky_verify
from room.cli.replay import main as replay
from room.domain import PickOption, event_to_dict
from room.domain.events import LuckyDrawRevealed, LuckyWindowOpened

EXAMPLE = Path(__file__).parent / "data" / "replay_example.jsonl"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, object]], str]:
    code = lucky_verify.main(list(argv))
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def sold_lot() -> Lot:
    lot = Lot(lucky(), draw_secret=DRAW_SECRET)
    lot.open(0)
    lot.do(PickOption("p1", "bob", lot.state.winning_option), 5)  # type: ignore[attr-defined]
    return lot


def test_a_revealed_draw_verifies_against_the_commitment_seen_at_the_open(capsys: pytest.CaptureFixture[str]) -> None:
    lot = sold_lot()
    [window] = lot.of_type(LuckyWindowOpened)
    [revealed] = lot.of_type(LuckyDrawRevealed)
    args = ["--lot", "lot-1", "--draw", str(revealed.draw), "--option", str(revealed.option)]
    code, rows, _ = run(capsys, *args, "--nonce", revealed.nonce, "--commitment", window.commitment)
    assert (code, rows) == (0, [{"lot_id": "lot-1", "draw": 1, "option": revealed.option, "verified": True}])
    other = str((revealed.option + 1) % 3)
    code, rows, _ = run(capsys, *args[:-1], other, "--nonce", revealed.nonce, "--commitment", window.commitment)
    assert (code, rows[0]["verified"]) == (1, False)


def test_every_draw_of_a_recorded_log_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "events.jsonl"
    assert replay([str(EXAMPLE), "--record", str(log)]) == 0
    capsys.readouterr()
    code, rows, err = run(capsys, "--events", str(log))
    assert (code, err) == (0, "")
    assert [(row["lot_id"], row["draw"], row["option"], row["verified"]) for row in rows] == [("box", 1, 2, True)]


def test_a_reveal_that_does_not_open_a_published_commitment_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lot = sold_lot()
    lines = [event_to_dict(event) for event in lot.events]
    reveal = lines[-1]
    assert reveal["type"] == "LuckyDrawRevealed"
    forged = dict(reveal, option=(int(reveal["option"]) + 1) % 3)
    unpublished = dict(reveal)
    for name, last in (("forged", forged), ("unpublished", unpublished)):
        body = [*lines[:-1], last]
        if name == "unpublished":
            body = [line for line in body if line["type"] != "LuckyWindowOpened"]
        path = tmp_path / f"{name}.jsonl"
        path.write_text("\n".join(json.dumps(line) for line in body) + "\n")
        code, rows, _ = run(capsys, "--events", str(path))
        assert (code, rows[0]["verified"]) == (1, False), name
    assert rows[0]["published_before"] is False


def test_bad_input_is_an_error_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"type":"Nope"}\n')
    code, _, err = run(capsys, "--events", str(path))
    assert code == 2
    assert "line 1" in err
    with pytest.raises(SystemExit):
        lucky_verify.main(["--lot", "x"])
