"""`gavel replay`: a hand-checked file, malformed input, and random input through the event log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from room.cli.replay import main

DATA = Path(__file__).parent / "data"
EXAMPLE = DATA / "replay_example.jsonl"
LOT = (
    '{"type":"lot","lot_id":"L1","format":"english","currency":"USD","opening_bid":9900,"reserve":null,'
    '"increments":[[0,5],[100,25]],"opens_at_ms":0,"closes_at_ms":259200000}'
)

EXPECTED = [
    # alice 17,500 leads at 9,900; bob's 9,000 is under 9,925; bob 17,725 leads at 17,525; carol 20,000 at 17,750
    {"lot_id": "watch", "outcome": "sold", "winner": "carol", "price": 17750, "bids_accepted": 3, "bids_rejected": 1},
    # reserve 5,000 never reached; bob bids at the close, which is too late
    {"lot_id": "vase", "outcome": "unsold", "winner": None, "price": None, "bids_accepted": 1, "bids_rejected": 1},
    # three ticks take the price to 7,000 by 3,500 ms; dan takes it, eve (same ms, later line) is too late
    {"lot_id": "tulips", "outcome": "sold", "winner": "dan", "price": 7000, "bids_accepted": 1, "bids_rejected": 1},
    # round 1: 1,000 then 1,200; round 2: alice 1,300, bob's equal 1,300 is taken but the earlier bid
    # leads; round 3 silent: alice's 1,300 wins
    {"lot_id": "painting", "outcome": "sold", "winner": "alice", "price": 1300, "bids_accepted": 4,
     "bids_rejected": 0},
    # the room's draw (from the lot's draw_secret) is option 2: alice picks wrong at 100, bob right at
    # 200; alice's second pick at 300 finds the lot sold
    {"lot_id": "box", "outcome": "sold", "winner": "bob", "price": 2000, "bids_accepted": 2, "bids_rejected": 1},
    # alice takes the 1,000 asking; bob's hard paddle press bids three increments over the 1,100 asking
    {"lot_id": "chair", "outcome": "sold", "winner": "bob", "price": 1300, "bids_accepted": 2, "bids_rejected": 0},
]  # fmt: skip


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, object]], str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_replay_prints_one_result_per_lot_in_input_order(capsys: pytest.CaptureFixture[str]) -> None:
    code, rows, err = run(capsys, str(EXAMPLE))
    assert (code, err) == (0, "")
    assert rows == EXPECTED


def test_replay_detail_explains_the_refusals(capsys: pytest.CaptureFixture[str]) -> None:
    _, rows, _ = run(capsys, str(EXAMPLE), "--detail")
    watch = rows[0]
    assert watch["rejections"] == [
        {"line": 11, "error": "FailedPrecondition", "message": "the lowest acceptable bid is 9925",
         "reason": "BID_TOO_LOW", "min_amount_minor": "9925"}
    ]  # fmt: skip
    assert rows[1]["reason"] == "RESERVE_NOT_MET"
    assert all(len(str(row["state_hash"])) == 64 for row in rows)


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        ([LOT, '{"type":"bid","lot_id":"L1","t_ms":1,"bidder":"a","max_amount":5', ""], 2, "not valid JSON"),
        ([LOT, "", '{"type":"bid","lot_id":"L2","t_ms":1,"bidder":"a","max_amount":5}'], 3, "'L2' is not declared"),
        ([LOT, '{"type":"bid","lot_id":"L1","t_ms":1,"bidder":"a"}'], 2, "missing 'max_amount'"),
        ([LOT, '{"type":"bid","lot_id":"L1","t_ms":"soon","bidder":"a","max_amount":5}'], 2,
         "'t_ms' must be an integer"),
        ([LOT, '{"type":"sneeze","lot_id":"L1","t_ms":1}'], 2, "unknown line type 'sneeze'"),
        ([LOT, LOT], 2, "declared twice"),
        (['{"type":"lot","lot_id":"X","currency":"USD","opening_bid":0,"increments":[[0,5]],"closes_at_ms":9}'], 1,
         "lot.english.opening_bid"),
        (['{"type":"lot","lot_id":"X","format":"english","currency":"USD","opening_bid":5,"increments":[[0,5]]}'], 1,
         "needs 'closes_at_ms'"),
        (["[1, 2]"], 1, "must be a JSON object"),
    ],
)  # fmt: skip
def test_malformed_input_is_reported_with_its_line_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: list[str], line: int, message: str
) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text("\n".join(lines) + "\n")
    code, rows, err = run(capsys, str(source))
    assert code == 2
    assert rows == []
    assert err.startswith(f"gavel replay: {source}:{line}: ")
    assert message in err


def test_a_bid_before_the_lot_opens_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "early.jsonl"
    early = LOT.replace('"opens_at_ms":0', '"opens_at_ms":1000')
    source.write_text(early + '\n{"type":"bid","lot_id":"L1","t_ms":999,"bidder":"a","max_amount":9900}\n')
    _, rows, _ = run(capsys, str(source), "--detail")
    assert (rows[0]["bids_accepted"], rows[0]["bids_rejected"], rows[0]["outcome"]) == (0, 1, "unsold")
    assert rows[0]["rejections"][0]["reason"] == "LOT_NOT_OPEN"


def test_a_missing_file_is_an_error_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, str(tmp_path / "absent.jsonl"))
    assert code == 2
    assert "absent.jsonl" in err


def test_the_event_log_rebuilds_every_lot_with_the_same_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "events.jsonl"
    _, direct, _ = run(capsys, str(EXAMPLE), "--detail", "--record", str(log))
    code, rebuilt, err = run(capsys, "--events", str(log))
    assert (code, err) == (0, "")
    assert [(r["lot_id"], r["outcome"], r["winner"], r["price"], r["state_hash"]) for r in rebuilt] == [
        (r["lot_id"], r["outcome"], r["winner"], r["price"], r["state_hash"]) for r in direct
    ]


def test_a_corrupt_event_log_is_reported_with_its_line_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "events.jsonl"
    run(capsys, str(EXAMPLE), "--record", str(log))
    lines = log.read_text().splitlines()
    lines[3] = lines[3].replace('"at_ms":', '"when":')
    log.write_text("\n".join(lines) + "\n")
    code, _, err = run(capsys, "--events", str(log))
    assert code == 2
    assert f"{log}:4: bad event" in err


def test_random_input_is_reproducible_and_round_trips_through_the_event_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, log = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "events.jsonl"
    assert main(["--generate", "80", "--seed", "11", "--out", str(first)]) == 0
    assert main(["--generate", "80", "--seed", "11", "--out", str(second)]) == 0
    assert first.read_text() == second.read_text()
    code, direct, err = run(capsys, str(first), "--detail", "--record", str(log))
    assert (code, err) == (0, "")
    assert len(direct) == 80
    assert {row["outcome"] for row in direct} >= {"sold", "unsold"}
    _, rebuilt, _ = run(capsys, "--events", str(log))
    assert [row["state_hash"] for row in rebuilt] == [row["state_hash"] for row in direct]
    _, again, _ = run(capsys, str(first), "--detail")
    assert again == direct


def test_the_module_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "room.cli.replay", str(EXAMPLE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == EXPECTED


@pytest.mark.parametrize(
    ("lot", "message"),
    [
        ('{"type":"lot","lot_id":"X","format":"lucky","currency":"USD","options":["a","b"],"price":5,'
         '"window_ms":9,"winning_rule":"fixed","winning_option":1}', "lot.lucky.winning_rule: fixed is retired"),
        ('{"type":"lot","lot_id":"X","format":"lucky","currency":"USD","options":["a","b"],"price":5,'
         '"window_ms":9,"winning_option":1}', "lot.lucky.winning_option: deprecated"),
        ('{"type":"lot","lot_id":"X","format":"dutch","currency":"USD","start_price":10000,"floor_price":0,'
         '"tick_ms":9,"step_mode":"random","steps":[3000,3000]}',
         "lot.dutch.steps: the steps must add up to the start price 10000; they add up to 6000"),
        ('{"type":"lot","lot_id":"X","format":"lucky","currency":"USD","options":["a","b"],"price":5,'
         '"window_ms":9,"draw_secret":"abc"}', "'draw_secret' must be at least 16 bytes in hex"),
    ],
)  # fmt: skip
def test_lots_the_catalog_would_refuse_are_refused_with_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lot: str, message: str
) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text(lot + "\n")
    code, _, err = run(capsys, str(source))
    assert code == 2
    assert message in err


def test_the_new_lot_parameters_replay_and_round_trip_through_the_event_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, log = tmp_path / "lots.jsonl", tmp_path / "events.jsonl"
    source.write_text(
        "\n".join(
            [
                '{"type":"lot","lot_id":"R","format":"english","close":"rounds","rounds":2,"round_duration_ms":1000,'
                '"currency":"USD","opening_bid":100,"increments":[[0,10]],"rounds_beat_by_increment":true}',
                '{"type":"lot","lot_id":"D","format":"dutch","currency":"USD","start_price":10000,"floor_price":0,'
                '"tick_ms":1000,"step_mode":"random","steps":[2500,2500,5000],"seed":4}',
                '{"type":"lot","lot_id":"L","format":"lucky","currency":"USD","options":["a","b","c"],"price":5,'
                '"window_ms":1000,"winning_rule":"drawn_per_window"}',
                '{"type":"bid","lot_id":"R","t_ms":10,"bidder":"alice","max_amount":100}',
                '{"type":"bid","lot_id":"R","t_ms":1010,"bidder":"bob","max_amount":100}',
            ]
        )
        + "\n"
    )
    code, direct, err = run(capsys, str(source), "--detail", "--record", str(log))
    assert (code, err) == (0, "")
    assert [(row["lot_id"], row["outcome"], row["winner"]) for row in direct] == [
        ("R", "sold", "alice"),  # bob's equal bid in round 2 is refused: the lot asks for an increment more
        ("D", "unsold", None),
        ("L", "unsold", None),
    ]
    recorded = [json.loads(line) for line in log.read_text().splitlines()]
    [lucky_lot] = [line for line in recorded if line.get("lot_id") == "L" and line["type"] == "lot"]
    assert len(bytes.fromhex(lucky_lot["draw_secret"])) == 32  # offline: derived from the lot id and seed
    assert [line["type"] for line in recorded if line.get("lot_id") == "L"][-4:] == [
        "LotUnsold", "LuckyDrawRevealed", "LuckyDrawRevealed", "LuckyDrawRevealed"
    ]  # fmt: skip
    _, rebuilt, _ = run(capsys, "--events", str(log))
    assert [row["state_hash"] for row in rebuilt] == [row["state_hash"] for row in direct]
