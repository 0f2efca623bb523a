"""The double-entry ledger: accounts, postings, transactions, floors. Pure.

Every amount is an integer number of minor units of one "currency" — an ISO 4217 code for money,
`TICKETS:<ISO>` for bid tickets (counted, not priced: a ticket's money value lives in the money
accounts beside it). An account's balance is the sum of its postings; every transaction's postings
sum to zero per currency, so money is never created or lost, only moved and attributed.

Account ids are structured strings, `<owner kind>:<owner id>:<kind>[:<scope>]:<currency>`, so the
floor of an account (what its balance may never go below or above) follows from its kind:

* money the platform holds for someone (a bidder's deposit, ticket funds, credit; a seller's
  settlement) can never be negative;
* money someone owes (an invoice, penalties owed) can never be positive: it starts negative and
  payments bring it up to zero, never past it (no overpayment);
* the outside world (the card provider, the bank) and the house's income have no floor.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from gavel_core.errors import FailedPrecondition
from gavel_core.money import MAX_AMOUNT_MINOR


class Floor(StrEnum):
    NON_NEGATIVE = "non_negative"  # held for someone: never below zero
    NON_POSITIVE = "non_positive"  # owed by someone: never above zero
    NONE = "none"  # the outside world and the house's income


# Kinds of account by owner kind, with their floors.
_FLOORS: dict[tuple[str, str], Floor] = {
    ("bidder", "cash"): Floor.NON_NEGATIVE,
    ("bidder", "deposit"): Floor.NON_NEGATIVE,
    ("bidder", "ticket_funds"): Floor.NON_NEGATIVE,
    ("bidder", "tickets"): Floor.NON_NEGATIVE,
    ("bidder", "ticket_spend"): Floor.NON_NEGATIVE,
    ("bidder", "credit"): Floor.NON_NEGATIVE,
    ("bidder", "penalties_owed"): Floor.NON_POSITIVE,
    ("invoice", "due"): Floor.NON_POSITIVE,
    ("seller", "pending"): Floor.NON_NEGATIVE,
    ("seller", "settlement"): Floor.NON_NEGATIVE,
    ("house", "premium"): Floor.NONE,
    ("house", "commission"): Floor.NONE,
    ("house", "tax"): Floor.NONE,
    ("house", "penalties"): Floor.NONE,
    ("house", "ticket_revenue"): Floor.NONE,
    ("house", "tickets_issued"): Floor.NONE,
    ("house", "tickets_spent"): Floor.NON_NEGATIVE,
    ("house", "tickets_refunded"): Floor.NON_NEGATIVE,
    ("external", "provider"): Floor.NONE,
    ("external", "bank"): Floor.NONE,
}


def tickets_unit(currency: str) -> str:
    """The ledger "currency" of bid tickets bought with `currency`."""
    return f"TICKETS:{currency}"


@dataclass(frozen=True, slots=True, order=True)
class AccountId:
    owner_kind: str
    owner_id: str
    kind: str
    currency: str
    scope: str = ""

    def __post_init__(self) -> None:
        if (self.owner_kind, self.kind) not in _FLOORS:
            raise ValueError(f"unknown account kind {self.owner_kind}:{self.kind}")
        for part in (self.owner_kind, self.owner_id, self.kind, self.currency, self.scope):
            if "|" in part:
                raise ValueError("account id parts may not contain '|'")

    @property
    def floor(self) -> Floor:
        return _FLOORS[(self.owner_kind, self.kind)]

    def __str__(self) -> str:
        parts = [self.owner_kind, self.owner_id, self.kind] + ([self.scope] if self.scope else []) + [self.currency]
        return "|".join(parts)

    @classmethod
    def parse(cls, text: str) -> AccountId:
        parts = text.split("|")
        if len(parts) == 4:
            return cls(parts[0], parts[1], parts[2], parts[3])
        if len(parts) == 5:
            return cls(parts[0], parts[1], parts[2], parts[4], parts[3])
        raise ValueError(f"not an account id: {text!r}")


def allows(floor: Floor, balance: int) -> bool:
    if floor is Floor.NON_NEGATIVE:
        return balance >= 0
    if floor is Floor.NON_POSITIVE:
        return balance <= 0
    return True


@dataclass(frozen=True, slots=True)
class Posting:
    account: AccountId
    amount: int  # signed minor units of account.currency

    @property
    def currency(self) -> str:
        return self.account.currency


@dataclass(frozen=True, slots=True)
class Transaction:
    """Postings that happen together. `id` is derived from the cause (`invoice:<id>:issue`), so the
    same cause can never be posted twice; `cause` names what it is for (lot, invoice, charge,
    webhook, penalty, admin action) so every entry is traceable."""

    id: str
    kind: str
    cause: str
    postings: tuple[Posting, ...]
    memo: str = ""

    def __post_init__(self) -> None:
        check_balanced(self.postings)

    @property
    def accounts(self) -> list[AccountId]:
        return sorted({p.account for p in self.postings})


def check_balanced(postings: Iterable[Posting]) -> None:
    """Raise ValueError unless the postings are ≥ 2, non-zero, bounded and sum to zero per currency."""
    postings = list(postings)
    if len(postings) < 2:
        raise ValueError("a transaction needs at least two postings")
    totals: dict[str, int] = defaultdict(int)
    for posting in postings:
        if isinstance(posting.amount, bool) or not isinstance(posting.amount, int):
            raise ValueError("posting amounts are integers")
        if posting.amount == 0 or abs(posting.amount) > MAX_AMOUNT_MINOR:
            raise ValueError(f"posting amount out of range: {posting.amount}")
        totals[posting.currency] += posting.amount
    unbalanced = {currency: total for currency, total in totals.items() if total != 0}
    if unbalanced:
        raise ValueError(f"transaction does not balance: {unbalanced}")


def transfer(
    txn_id: str, kind: str, cause: str, moves: Iterable[tuple[AccountId, AccountId, int]], memo: str = ""
) -> Transaction:
    """A transaction of simple moves `(from, to, amount)`; zero moves are dropped, same accounts merged."""
    net: dict[AccountId, int] = defaultdict(int)
    for source, destination, amount in moves:
        if amount < 0:
            raise ValueError("a move's amount is never negative")
        if amount == 0:
            continue
        net[source] -= amount
        net[destination] += amount
    postings = tuple(Posting(account, amount) for account, amount in sorted(net.items()) if amount != 0)
    return Transaction(txn_id, kind, cause, postings, memo)


@dataclass(slots=True)
class Balances:
    """Balances after applying transactions; refuses any that would break a floor."""

    values: dict[AccountId, int] = field(default_factory=dict)

    def of(self, account: AccountId) -> int:
        return self.values.get(account, 0)

    def after(self, txn: Transaction) -> dict[AccountId, int]:
        """The touched accounts' balances after `txn`, or FailedPrecondition INSUFFICIENT_FUNDS."""
        result = {account: self.of(account) for account in txn.accounts}
        for posting in txn.postings:
            result[posting.account] += posting.amount
        for account, balance in result.items():
            if not allows(account.floor, balance):
                raise FailedPrecondition(
                    "INSUFFICIENT_FUNDS",
                    f"{account.kind} account of {account.owner_kind} {account.owner_id} would go "
                    f"{'below' if account.floor is Floor.NON_NEGATIVE else 'above'} zero",
                    {"account": str(account), "balance_minor": str(self.of(account))},
                )
        return result

    def apply(self, txn: Transaction) -> None:
        self.values.update(self.after(txn))


def sum_postings(postings: Iterable[Posting]) -> Mapping[AccountId, int]:
    totals: dict[AccountId, int] = defaultdict(int)
    for posting in postings:
        totals[posting.account] += posting.amount
    return totals
