"""The ledger's invariants, whatever happens: every transaction sums to zero per currency, no
account passes its floor, and balances are the sum of the entries."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gavel_core.errors import FailedPrecondition
from payment.domain import accounts
from payment.domain.ledger import AccountId, Balances, Floor, Posting, Transaction, allows, sum_postings, transfer

BIDDERS = ["b1", "b2", "b3"]


def test_a_transaction_that_does_not_balance_is_refused():
    with pytest.raises(ValueError, match="does not balance"):
        Transaction("t", "k", "c", (Posting(accounts.cash("b1", "EUR"), 5), Posting(accounts.provider("EUR"), -4)))


def test_currencies_balance_separately():
    with pytest.raises(ValueError, match="does not balance"):
        Transaction("t", "k", "c", (Posting(accounts.cash("b1", "EUR"), 5), Posting(accounts.provider("USD"), -5)))


def test_money_held_for_a_bidder_never_goes_below_zero():
    books = Balances()
    with pytest.raises(FailedPrecondition) as caught:
        books.apply(transfer("t", "refund", "c", [(accounts.deposit("b1", "s", "EUR"), accounts.provider("EUR"), 1)]))
    assert caught.value.reason == "INSUFFICIENT_FUNDS"


def test_an_invoice_is_never_paid_past_zero():
    books = Balances()
    books.apply(
        transfer("t1", "issue", "c", [(accounts.invoice_due("i", "EUR"), accounts.house("premium", "EUR"), 100)])
    )
    books.apply(transfer("t2", "pay", "c", [(accounts.provider("EUR"), accounts.invoice_due("i", "EUR"), 100)]))
    with pytest.raises(FailedPrecondition):
        books.apply(transfer("t3", "pay", "c", [(accounts.provider("EUR"), accounts.invoice_due("i", "EUR"), 1)]))


def test_account_ids_round_trip_through_their_text():
    for account in (accounts.cash("u-1", "EUR"), accounts.deposit("u", "sale-9", "JPY"), accounts.tickets("u", "EUR")):
        assert AccountId.parse(str(account)) == account


# A small economy: any sequence of these operations, each retried any number of times.
def operations():
    bidder = st.sampled_from(BIDDERS)
    amount = st.integers(1, 10_000)
    return st.lists(
        st.one_of(
            st.tuples(st.just("deposit"), bidder, amount),
            st.tuples(st.just("refund"), bidder, amount),
            st.tuples(st.just("invoice"), bidder, amount),
            st.tuples(st.just("pay"), bidder, amount),
            st.tuples(st.just("apply_deposit"), bidder, amount),
            st.tuples(st.just("buy_tickets"), bidder, st.integers(1, 20)),
            st.tuples(st.just("spend_ticket"), bidder, st.just(1)),
        ),
        max_size=60,
    )


def transaction_for(number: int, op: tuple[str, str, int]) -> Transaction:
    kind, bidder, amount = op
    eur = "EUR"
    invoice = accounts.invoice_due(f"inv-{bidder}", eur)
    moves = {
        "deposit": [(accounts.provider(eur), accounts.deposit(bidder, "s", eur), amount)],
        "refund": [(accounts.deposit(bidder, "s", eur), accounts.provider(eur), amount)],
        "invoice": [(invoice, accounts.seller_pending("seller", eur), amount)],
        "pay": [(accounts.provider(eur), invoice, amount)],
        "apply_deposit": [(accounts.deposit(bidder, "s", eur), invoice, amount)],
        "buy_tickets": [
            (accounts.provider(eur), accounts.ticket_funds(bidder, eur), amount * 10),
            (accounts.house_tickets("tickets_issued", eur), accounts.tickets(bidder, eur), amount),
        ],
        "spend_ticket": [
            (accounts.tickets(bidder, eur), accounts.house_tickets("tickets_spent", eur), 1),
            (accounts.ticket_funds(bidder, eur), accounts.ticket_spend(bidder, "lot", eur), 10),
        ],
    }[kind]
    return transfer(f"t{number}", kind, f"op:{number}", moves)


@settings(max_examples=200)
@given(ops=operations(), retries=st.lists(st.integers(0, 3), min_size=60, max_size=60))
def test_balances_equal_the_sum_of_entries_and_respect_floors_after_any_sequence_with_retries(ops, retries):
    books = Balances()
    journal: dict[str, Transaction] = {}
    for number, op in enumerate(ops):
        txn = transaction_for(number, op)
        for _ in range(1 + retries[number]):
            if txn.id in journal:  # a retry of a posted transaction: no second effect
                continue
            try:
                books.apply(txn)
            except FailedPrecondition:
                break  # refused as a whole: nothing of it is applied
            journal[txn.id] = txn
    postings = [p for txn in journal.values() for p in txn.postings]
    assert dict(sum_postings(postings)) == {a: b for a, b in books.values.items() if b or a in sum_postings(postings)}
    for account, balance in books.values.items():
        assert allows(account.floor, balance)
    per_currency: dict[str, int] = {}
    for posting in postings:
        per_currency[posting.currency] = per_currency.get(posting.currency, 0) + posting.amount
    assert all(total == 0 for total in per_currency.values())
    # tickets: bought = spent + remaining (no refunds in this economy)
    bought = -books.of(accounts.house_tickets("tickets_issued", "EUR"))
    spent = books.of(accounts.house_tickets("tickets_spent", "EUR"))
    remaining = sum(books.of(accounts.tickets(b, "EUR")) for b in BIDDERS)
    assert bought == spent + remaining


def test_house_income_has_no_floor_but_what_bidders_own_does():
    assert accounts.house("premium", "EUR").floor is Floor.NONE
    assert accounts.credit("b", "*", "EUR").floor is Floor.NON_NEGATIVE
    assert accounts.penalties_owed("b", "EUR").floor is Floor.NON_POSITIVE
