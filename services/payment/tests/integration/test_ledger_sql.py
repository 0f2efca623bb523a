"""The ledger on a real database under concurrency: any interleaving of operations, each retried
and duplicated, leaves every transaction balanced, no account past its floor, each transaction
posted once, and every stored balance equal to the sum of its entries."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from gavel_core.errors import Aborted, FailedPrecondition
from gavel_kit.db import Database
from payment.adapters import orm
from payment.adapters.sql import SqlPaymentUnitOfWork
from payment.domain import accounts
from payment.domain.ledger import Transaction, transfer

pytestmark = pytest.mark.integration

OPS = st.lists(
    st.tuples(
        st.sampled_from(["deposit", "refund", "invoice", "pay", "apply", "penalty"]),
        st.sampled_from(["b1", "b2"]),
        st.integers(1, 5_000),
        st.integers(0, 2),  # duplicates sent at the same time
    ),
    min_size=1,
    max_size=25,
)


def txn_for(space: str, number: int, kind: str, bidder: str, amount: int) -> Transaction:
    b = f"{space}-{bidder}"
    invoice = accounts.invoice_due(f"{space}-inv-{bidder}", "EUR")
    deposit = accounts.deposit(b, "s", "EUR")
    moves = {
        "deposit": [(accounts.provider("EUR"), deposit, amount)],
        "refund": [(deposit, accounts.provider("EUR"), amount)],
        "invoice": [(invoice, accounts.seller_pending(f"{space}-seller", "EUR"), amount)],
        "pay": [(accounts.provider("EUR"), invoice, amount)],
        "apply": [(deposit, invoice, amount)],
        "penalty": [(deposit, accounts.house("penalties", "EUR"), amount)],
    }[kind]
    return transfer(f"{space}:{number}", kind, f"test:{number}", moves)


async def post(db: Database, txn: Transaction) -> str:
    for attempt in range(20):
        try:
            async with SqlPaymentUnitOfWork(db) as uow:
                posted = await uow.ledger.post(txn, datetime.now(UTC))
                await uow.commit()
                return "posted" if posted else "duplicate"
        except FailedPrecondition:
            return "refused"
        except Aborted:
            await asyncio.sleep(0.005 * attempt)
    return "gave up"


@pytest.fixture
async def database(database_url):
    db = Database(database_url)
    await db.migrate("payment.adapters:migrations", "payment_alembic_version")
    yield db
    await db.dispose()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
async def test_concurrent_duplicated_postings_keep_the_books_exact(database, ops):
    space = uuid.uuid4().hex[:8]
    txns = [txn_for(space, number, kind, bidder, amount) for number, (kind, bidder, amount, _) in enumerate(ops)]
    sends = [post(database, txn) for txn, (_, _, _, dupes) in zip(txns, ops, strict=True) for _ in range(1 + dupes)]
    outcomes = await asyncio.gather(*sends)
    assert "gave up" not in outcomes
    async with SqlPaymentUnitOfWork(database) as uow:
        _, _, mismatched, unbalanced, past_floor = await uow.ledger.verify()
        counts = dict(
            (
                await uow.session.execute(
                    select(orm.entries.c.transaction_id, func.count())
                    .where(orm.entries.c.transaction_id.startswith(space))
                    .group_by(orm.entries.c.transaction_id)
                )
            ).all()
        )
    assert (mismatched, unbalanced, past_floor) == ([], [], [])
    for txn in txns:  # posted once (its postings once), or refused as a whole
        assert counts.get(txn.id, 0) in (0, len(txn.postings))
