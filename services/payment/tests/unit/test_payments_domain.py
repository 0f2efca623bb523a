"""A charge only moves forward, whatever order the provider's answers arrive in; penalties split
between the deposit and what is owed; strikes count within the window and reach a ban."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from payment.domain.discipline import Penalty, PenaltyReason, Policy, reaches_ban, split_fee, strikes
from payment.domain.payments import ChargeStatus, moves_forward

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@given(st.lists(st.sampled_from(list(ChargeStatus)), max_size=12))
def test_a_charge_reaches_a_final_status_at_most_once_and_never_leaves_it(answers):
    status = ChargeStatus.PENDING
    finals = 0
    for answer in answers:
        if moves_forward(status, answer):
            assert not status.final
            status = answer
            finals += status.final
    assert finals <= 1


def test_a_late_requires_action_after_authorization_is_ignored():
    assert not moves_forward(ChargeStatus.AUTHORIZED, ChargeStatus.REQUIRES_ACTION)
    assert not moves_forward(ChargeStatus.CAPTURED, ChargeStatus.FAILED)
    assert moves_forward(ChargeStatus.REQUIRES_ACTION, ChargeStatus.FAILED)


def test_a_penalty_takes_what_the_deposit_holds_and_the_rest_is_owed():
    assert split_fee(1_000, 5_000) == (1_000, 0)
    assert split_fee(1_000, 300) == (300, 700)
    assert split_fee(1_000, 0) == (0, 1_000)


def penalty(days_ago: float, reversed_: bool = False) -> Penalty:
    return Penalty(
        id=f"p{days_ago}", bidder_id="b", sale_id="s", lot_id="l", currency="EUR", amount=1, from_deposit=0,
        reason=PenaltyReason.CONFIRMATION_TIMEOUT, cause=f"c{days_ago}", created_at=NOW - timedelta(days=days_ago),
        reversed_at=NOW if reversed_ else None,
    )  # fmt: skip


def test_strikes_count_only_unreversed_penalties_within_the_window():
    policy = Policy(strikes_to_ban=3, window=timedelta(days=30))
    history = [penalty(1), penalty(10), penalty(29, reversed_=True), penalty(40)]
    assert strikes(history, NOW, policy) == 2
    assert not reaches_ban(2, policy)
    assert reaches_ban(3, policy)
    assert not reaches_ban(99, Policy(strikes_to_ban=0))  # 0: never ban automatically
