"""The payment unit of work over SQLAlchemy: the ledger, the store, and the outbox.

Locking (docs/payment.md "Concurrency"): on SQLite every unit of work takes the write lock when
it begins (BEGIN IMMEDIATE), so units of work run one at a time; on PostgreSQL every posting reads its accounts with
`SELECT ... FOR UPDATE` in account-id order, then checks floors against the locked balances and
writes entries and balances; rows whose state moves are read FOR UPDATE by the `for_update`
loaders. Transactions run at READ COMMITTED, so nothing is retried for serialization; a lock
wait is the cost. SQLite has one writer at a time (the database lock); a "database is locked"
on a write upgrade, like a PostgreSQL deadlock, surfaces as `Aborted` and the caller retries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError

from gavel_core.errors import Aborted, FailedPrecondition
from gavel_kit.db import Database, OutboxRelay, SqlUnitOfWork, emit_message
from payment.adapters import orm
from payment.adapters.events import event_message
from payment.domain.discipline import Penalty, PenaltyReason
from payment.domain.events import PaymentEvent
from payment.domain.invoices import Invoice, InvoiceAmounts, InvoiceStatus
from payment.domain.ledger import AccountId, Balances, Transaction, allows
from payment.domain.payments import (
    Ban,
    Charge,
    ChargeStatus,
    DepositRecord,
    LotInfo,
    Purpose,
    Refund,
    RefundStatus,
)
from payment.domain.terms import Band, CreditScope, SaleTerms, TaxBase
from payment.domain.tickets import TicketBatch, TicketPack, TicketSpend


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _utc(value: datetime) -> datetime:
    result = utc(value)
    assert result is not None
    return result


def retryable(error: BaseException) -> bool:
    """A lock conflict the transaction can be retried after (not a bug, not bad input)."""
    if isinstance(error, IntegrityError):
        return True  # a concurrent twin inserted the same key first
    if not isinstance(error, DBAPIError):
        return False
    text = str(error.orig or error).lower()
    code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return code in ("40001", "40P01") or "database is locked" in text or "deadlock" in text


class SqlLedger:
    def __init__(self, uow: SqlPaymentUnitOfWork) -> None:
        self._uow = uow

    @property
    def _session(self) -> Any:
        return self._uow.session

    async def post(self, txn: Transaction, now: datetime) -> bool:
        session = self._session
        t = orm.transactions
        if (await session.execute(select(t.c.id).where(t.c.id == txn.id))).first() is not None:
            return False
        accounts = txn.accounts
        ids = [str(a) for a in accounts]
        rows = {
            row.id: row.balance
            for row in (
                await session.execute(
                    select(orm.accounts.c.id, orm.accounts.c.balance)
                    .where(orm.accounts.c.id.in_(ids))
                    .order_by(orm.accounts.c.id)
                    .with_for_update()
                )
            ).all()
        }
        missing = [a for a in accounts if str(a) not in rows]
        if missing:
            insert = pg_insert if not self._uow.is_sqlite else sqlite_insert
            await session.execute(
                insert(orm.accounts)
                .values(
                    [
                        {
                            "id": str(a),
                            "owner_kind": a.owner_kind,
                            "owner_id": a.owner_id,
                            "kind": a.kind,
                            "scope": a.scope,
                            "currency": a.currency,
                            "balance": 0,
                            "updated_at": now,
                        }
                        for a in missing
                    ]
                )
                .on_conflict_do_nothing()
            )
            for row in (
                await session.execute(
                    select(orm.accounts.c.id, orm.accounts.c.balance)
                    .where(orm.accounts.c.id.in_([str(a) for a in missing]))
                    .order_by(orm.accounts.c.id)
                    .with_for_update()
                )
            ).all():
                rows[row.id] = row.balance
        books = Balances({a: int(rows[str(a)]) for a in accounts})
        after = books.after(txn)  # FailedPrecondition INSUFFICIENT_FUNDS: nothing written
        await session.execute(
            orm.transactions.insert().values(id=txn.id, kind=txn.kind, cause=txn.cause, memo=txn.memo, created_at=now)
        )
        await session.execute(
            orm.entries.insert(),
            [
                {
                    "transaction_id": txn.id,
                    "account_id": str(p.account),
                    "amount": p.amount,
                    "currency": p.currency,
                    "created_at": now,
                }
                for p in txn.postings
            ],
        )
        for account, balance in after.items():
            await session.execute(
                update(orm.accounts).where(orm.accounts.c.id == str(account)).values(balance=balance, updated_at=now)
            )
        return True

    async def balance(self, account: AccountId) -> int:
        value = (
            await self._session.execute(select(orm.accounts.c.balance).where(orm.accounts.c.id == str(account)))
        ).scalar()
        return int(value or 0)

    async def balances_of(self, owner_kind: str, owner_id: str) -> dict[AccountId, int]:
        a = orm.accounts
        rows = (
            await self._session.execute(
                select(a.c.id, a.c.balance).where(a.c.owner_kind == owner_kind, a.c.owner_id == owner_id)
            )
        ).all()
        return {AccountId.parse(row.id): int(row.balance) for row in rows}

    async def balances_with_prefix(self, prefix: str) -> dict[AccountId, int]:
        a = orm.accounts
        rows = (
            await self._session.execute(select(a.c.id, a.c.balance).where(a.c.id.startswith(prefix, autoescape=True)))
        ).all()
        return {AccountId.parse(row.id): int(row.balance) for row in rows}

    async def verify(self) -> tuple[int, int, list[str], list[str], list[str]]:
        """(accounts, transactions, mismatched accounts, unbalanced transactions, accounts past floor)."""
        a, e = orm.accounts, orm.entries
        sums = {
            row.account_id: int(row.total)
            for row in (
                await self._session.execute(
                    select(e.c.account_id, func.sum(e.c.amount).label("total")).group_by(e.c.account_id)
                )
            ).all()
        }
        accounts = (await self._session.execute(select(a.c.id, a.c.balance))).all()
        mismatched = [row.id for row in accounts if int(row.balance) != sums.get(row.id, 0)]
        past_floor = [row.id for row in accounts if not allows(AccountId.parse(row.id).floor, int(row.balance))]
        unbalanced = [
            row.transaction_id
            for row in (
                await self._session.execute(
                    select(e.c.transaction_id, e.c.currency)
                    .group_by(e.c.transaction_id, e.c.currency)
                    .having(func.sum(e.c.amount) != 0)
                )
            ).all()
        ]
        count = (await self._session.execute(select(func.count()).select_from(orm.transactions))).scalar_one()
        return len(accounts), int(count), mismatched, unbalanced, past_floor

    async def entries(self, prefix: str, after: int, limit: int) -> tuple[list[Any], int]:
        e, t = orm.entries, orm.transactions
        where = e.c.account_id.startswith(prefix, autoescape=True)
        rows = (
            await self._session.execute(
                select(e, t.c.kind, t.c.cause)
                .join(t, t.c.id == e.c.transaction_id)
                .where(where, e.c.id > after)
                .order_by(e.c.id)
                .limit(limit)
            )
        ).all()
        total = (await self._session.execute(select(func.count()).select_from(e).where(where))).scalar_one()
        return list(rows), int(total)


class SqlStore:
    def __init__(self, uow: SqlPaymentUnitOfWork) -> None:
        self._uow = uow

    @property
    def _s(self) -> Any:
        return self._uow.session

    async def _one(self, statement: Any, for_update: bool = False) -> Any:
        if for_update:
            statement = statement.with_for_update()
        return (await self._s.execute(statement)).first()

    async def _upsert(self, table: Any, values: dict[str, Any], keys: Sequence[str]) -> None:
        insert = pg_insert if not self._uow.is_sqlite else sqlite_insert
        statement = insert(table).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=list(keys), set_={k: v for k, v in values.items() if k not in keys}
        )
        await self._s.execute(statement)

    # -- terms and lots -----------------------------------------------------------------------
    async def terms(self, sale_id: str) -> SaleTerms | None:
        row = await self._one(select(orm.sale_terms).where(orm.sale_terms.c.sale_id == sale_id))
        if row is None:
            return None
        return SaleTerms(
            sale_id=row.sale_id,
            currency=row.currency,
            premium_bands=tuple(Band(int(f), int(b)) for f, b in json.loads(row.premium_bands)),
            tax_bp=row.tax_bp,
            tax_base=TaxBase(row.tax_base),
            commission_bp=row.commission_bp,
            deposit_minor=row.deposit_minor,
            buying_power_bp=row.buying_power_bp,
            penalty_fee_minor=row.penalty_fee_minor,
            penalty_fee_bp=row.penalty_fee_bp,
            payment_due_days=row.payment_due_days,
            credit_scope=CreditScope(row.credit_scope),
            frozen=row.frozen,
            version=row.version,
        )

    async def save_terms(self, terms: SaleTerms) -> None:
        values = {
            "sale_id": terms.sale_id,
            "currency": terms.currency,
            "premium_bands": json.dumps([[b.from_minor, b.bp] for b in terms.premium_bands]),
            "tax_bp": terms.tax_bp,
            "tax_base": terms.tax_base.value,
            "commission_bp": terms.commission_bp,
            "deposit_minor": terms.deposit_minor,
            "buying_power_bp": terms.buying_power_bp,
            "penalty_fee_minor": terms.penalty_fee_minor,
            "penalty_fee_bp": terms.penalty_fee_bp,
            "payment_due_days": terms.payment_due_days,
            "credit_scope": terms.credit_scope.value,
            "frozen": terms.frozen,
            "version": terms.version,
        }
        await self._upsert(orm.sale_terms, values, ["sale_id"])

    async def freeze_terms(self, sale_id: str) -> None:
        await self._s.execute(update(orm.sale_terms).where(orm.sale_terms.c.sale_id == sale_id).values(frozen=True))

    @staticmethod
    def _lot(row: Any) -> LotInfo:
        return LotInfo(
            row.lot_id,
            row.sale_id,
            row.seller_id,
            row.product_id,
            row.currency,
            row.buyer_premium_bp,
            row.tax_bp,
            row.title,
            row.winner_id,
        )

    async def lot(self, lot_id: str) -> LotInfo | None:
        row = await self._one(select(orm.lots).where(orm.lots.c.lot_id == lot_id))
        return None if row is None else self._lot(row)

    async def save_lot(self, lot: LotInfo) -> None:
        existing = await self.lot(lot.lot_id)
        values = {
            "lot_id": lot.lot_id,
            "sale_id": lot.sale_id,
            "seller_id": lot.seller_id,
            "product_id": lot.product_id,
            "currency": lot.currency,
            "buyer_premium_bp": lot.buyer_premium_bp,
            "tax_bp": lot.tax_bp,
            "title": lot.title[:200],
            "winner_id": lot.winner_id or (existing.winner_id if existing else ""),
        }
        await self._upsert(orm.lots, values, ["lot_id"])

    async def set_lot_winner(self, lot_id: str, sale_id: str, winner_id: str) -> None:
        existing = await self.lot(lot_id)
        if existing is None:
            await self.save_lot(LotInfo(lot_id, sale_id, "", "", "", 0, 0, "", winner_id))
        else:
            await self._s.execute(update(orm.lots).where(orm.lots.c.lot_id == lot_id).values(winner_id=winner_id))

    async def lots_of_sale(self, sale_id: str) -> list[LotInfo]:
        rows = (
            await self._s.execute(select(orm.lots).where(orm.lots.c.sale_id == sale_id).order_by(orm.lots.c.lot_id))
        ).all()
        return [self._lot(r) for r in rows]

    async def close_sale(self, sale_id: str, now: datetime) -> bool:
        if await self.sale_closed(sale_id):
            return False
        await self._s.execute(orm.closed_sales.insert().values(sale_id=sale_id, closed_at=now))
        return True

    async def sale_closed(self, sale_id: str) -> bool:
        return (
            await self._one(select(orm.closed_sales.c.sale_id).where(orm.closed_sales.c.sale_id == sale_id)) is not None
        )

    # -- invoices -----------------------------------------------------------------------------
    @staticmethod
    def _invoice(row: Any) -> Invoice:
        return Invoice(
            id=row.id,
            number=row.number,
            bidder_id=row.bidder_id,
            seller_id=row.seller_id,
            sale_id=row.sale_id,
            lot_id=row.lot_id,
            product_id=row.product_id,
            currency=row.currency,
            amounts=InvoiceAmounts(
                row.hammer, row.discount, row.premium, row.tax, row.deposit_applied, row.credit_applied
            ),
            status=InvoiceStatus(row.status),
            issued_at=_utc(row.issued_at),
            due_at=_utc(row.due_at),
            cause=row.cause,
            paid_at=utc(row.paid_at),
            paid_by=row.paid_by,
            terms_version=row.terms_version,
        )

    async def add_invoice(self, invoice: Invoice, commission: int) -> None:
        a = invoice.amounts
        await self._s.execute(
            orm.invoices.insert().values(
                id=invoice.id,
                number=invoice.number,
                bidder_id=invoice.bidder_id,
                seller_id=invoice.seller_id,
                sale_id=invoice.sale_id,
                lot_id=invoice.lot_id,
                product_id=invoice.product_id,
                currency=invoice.currency,
                hammer=a.hammer,
                discount=a.discount,
                premium=a.premium,
                tax=a.tax,
                deposit_applied=a.deposit_applied,
                credit_applied=a.credit_applied,
                commission=commission,
                status=invoice.status.value,
                issued_at=invoice.issued_at,
                due_at=invoice.due_at,
                paid_at=invoice.paid_at,
                paid_by=invoice.paid_by,
                cause=invoice.cause,
                terms_version=invoice.terms_version,
            )
        )

    async def invoice(self, invoice_id: str, *, for_update: bool = False) -> Invoice | None:
        row = await self._one(select(orm.invoices).where(orm.invoices.c.id == invoice_id), for_update)
        return None if row is None else self._invoice(row)

    async def invoice_for_lot(self, lot_id: str) -> Invoice | None:
        row = await self._one(select(orm.invoices).where(orm.invoices.c.lot_id == lot_id))
        return None if row is None else self._invoice(row)

    async def save_invoice(self, invoice: Invoice) -> None:
        await self._s.execute(
            update(orm.invoices)
            .where(orm.invoices.c.id == invoice.id)
            .values(status=invoice.status.value, paid_at=invoice.paid_at, paid_by=invoice.paid_by)
        )

    async def invoices(
        self, *, bidder_id: str, seller_id: str, sale_id: str, statuses: Sequence[str], after: str, limit: int
    ) -> tuple[list[Invoice], int]:
        i = orm.invoices
        conditions = []
        if bidder_id:
            conditions.append(i.c.bidder_id == bidder_id)
        if seller_id:
            conditions.append(i.c.seller_id == seller_id)
        if sale_id:
            conditions.append(i.c.sale_id == sale_id)
        if statuses:
            conditions.append(i.c.status.in_(list(statuses)))
        where = and_(*conditions) if conditions else and_(True)
        rows = (await self._s.execute(select(i).where(where, i.c.id > after).order_by(i.c.id).limit(limit))).all()
        total = (await self._s.execute(select(func.count()).select_from(i).where(where))).scalar_one()
        return [self._invoice(r) for r in rows], int(total)

    async def due_invoices(self, now: datetime, limit: int) -> list[Invoice]:
        i = orm.invoices
        rows = (
            await self._s.execute(
                select(i)
                .where(i.c.status == InvoiceStatus.ISSUED.value, i.c.due_at <= now)
                .order_by(i.c.due_at)
                .limit(limit)
            )
        ).all()
        return [self._invoice(r) for r in rows]

    async def commission_of(self, invoice_id: str) -> int:
        return int(
            (
                await self._s.execute(select(orm.invoices.c.commission).where(orm.invoices.c.id == invoice_id))
            ).scalar_one()
        )

    # -- charges and refunds ------------------------------------------------------------------
    @staticmethod
    def _charge(row: Any) -> Charge:
        return Charge(
            id=row.id,
            purpose=Purpose(row.purpose),
            target_id=row.target_id,
            bidder_id=row.bidder_id,
            currency=row.currency,
            amount=row.amount,
            status=ChargeStatus(row.status),
            created_at=_utc(row.created_at),
            updated_at=_utc(row.updated_at),
            payment_method=row.payment_method,
            return_url=row.return_url,
            provider_ref=row.provider_ref,
            provider_version=row.provider_version,
            action_url=row.action_url,
            failure_reason=row.failure_reason,
            refunded=row.refunded,
            detail=json.loads(row.detail),
        )

    def _charge_values(self, c: Charge) -> dict[str, Any]:
        return {
            "id": c.id,
            "purpose": c.purpose.value,
            "target_id": c.target_id,
            "bidder_id": c.bidder_id,
            "currency": c.currency,
            "amount": c.amount,
            "status": c.status.value,
            "provider_ref": c.provider_ref,
            "provider_version": c.provider_version,
            "action_url": c.action_url,
            "failure_reason": c.failure_reason,
            "payment_method": c.payment_method,
            "return_url": c.return_url,
            "refunded": c.refunded,
            "detail": json.dumps(c.detail, sort_keys=True),
            "created_at": c.created_at,
            "updated_at": c.updated_at,
        }

    async def add_charge(self, charge: Charge) -> None:
        await self._s.execute(orm.charges.insert().values(**self._charge_values(charge)))

    async def charge(self, charge_id: str, *, for_update: bool = False) -> Charge | None:
        row = await self._one(select(orm.charges).where(orm.charges.c.id == charge_id), for_update)
        return None if row is None else self._charge(row)

    async def charge_by_provider_ref(self, ref: str) -> Charge | None:
        row = await self._one(select(orm.charges).where(orm.charges.c.provider_ref == ref))
        return None if row is None else self._charge(row)

    async def save_charge(self, charge: Charge) -> None:
        values = self._charge_values(charge)
        values.pop("id")
        await self._s.execute(update(orm.charges).where(orm.charges.c.id == charge.id).values(**values))

    async def active_charges(self, target_id: str) -> list[Charge]:
        c = orm.charges
        final = [s.value for s in ChargeStatus if s.final]
        rows = (await self._s.execute(select(c).where(c.c.target_id == target_id, c.c.status.not_in(final)))).all()
        return [self._charge(r) for r in rows]

    async def charges(self, *, bidder_id: str, target_id: str, after: str, limit: int) -> tuple[list[Charge], int]:
        c = orm.charges
        conditions = []
        if bidder_id:
            conditions.append(c.c.bidder_id == bidder_id)
        if target_id:
            conditions.append(c.c.target_id == target_id)
        where = and_(*conditions) if conditions else and_(True)
        rows = (await self._s.execute(select(c).where(where, c.c.id > after).order_by(c.c.id).limit(limit))).all()
        total = (await self._s.execute(select(func.count()).select_from(c).where(where))).scalar_one()
        return [self._charge(r) for r in rows], int(total)

    async def charges_to_reconcile(self, older_than: datetime, limit: int) -> list[Charge]:
        c = orm.charges
        final = [s.value for s in ChargeStatus if s.final]
        rows = (
            await self._s.execute(
                select(c)
                .where(c.c.status.not_in(final), c.c.updated_at <= older_than)
                .order_by(c.c.updated_at)
                .limit(limit)
            )
        ).all()
        return [self._charge(r) for r in rows]

    async def captured_charges(self, purpose: str, bidder_id: str, target_id: str) -> list[Charge]:
        c = orm.charges
        rows = (
            await self._s.execute(
                select(c)
                .where(
                    c.c.purpose == purpose,
                    c.c.bidder_id == bidder_id,
                    c.c.status == ChargeStatus.CAPTURED.value,
                    or_(c.c.target_id == target_id, c.c.target_id == f"{target_id}:{bidder_id}"),
                )
                .order_by(c.c.created_at, c.c.id)
            )
        ).all()
        return [self._charge(r) for r in rows]

    @staticmethod
    def _refund(row: Any) -> Refund:
        return Refund(
            row.id,
            row.charge_id,
            row.bidder_id,
            row.currency,
            row.amount,
            row.purpose,
            row.target_id,
            RefundStatus(row.status),
            _utc(row.created_at),
            _utc(row.updated_at),
            row.provider_ref,
            row.failure_reason,
        )

    async def add_refund(self, refund: Refund) -> None:
        await self._s.execute(
            orm.refunds.insert().values(
                id=refund.id,
                charge_id=refund.charge_id,
                bidder_id=refund.bidder_id,
                currency=refund.currency,
                amount=refund.amount,
                purpose=refund.purpose,
                target_id=refund.target_id,
                status=refund.status.value,
                provider_ref=refund.provider_ref,
                failure_reason=refund.failure_reason,
                created_at=refund.created_at,
                updated_at=refund.updated_at,
            )
        )
        self._uow.new_refunds.append(refund.id)

    async def refund(self, refund_id: str, *, for_update: bool = False) -> Refund | None:
        row = await self._one(select(orm.refunds).where(orm.refunds.c.id == refund_id), for_update)
        return None if row is None else self._refund(row)

    async def save_refund(self, refund: Refund) -> None:
        await self._s.execute(
            update(orm.refunds)
            .where(orm.refunds.c.id == refund.id)
            .values(
                status=refund.status.value,
                provider_ref=refund.provider_ref,
                failure_reason=refund.failure_reason,
                updated_at=refund.updated_at,
            )
        )

    async def refunds_to_reconcile(self, older_than: datetime, limit: int) -> list[Refund]:
        r = orm.refunds
        rows = (
            await self._s.execute(
                select(r)
                .where(r.c.status == RefundStatus.PENDING.value, r.c.updated_at <= older_than)
                .order_by(r.c.updated_at)
                .limit(limit)
            )
        ).all()
        return [self._refund(row) for row in rows]

    # -- deposits -----------------------------------------------------------------------------
    async def deposit(self, bidder_id: str, sale_id: str) -> DepositRecord | None:
        d = orm.deposits
        row = await self._one(select(d).where(d.c.bidder_id == bidder_id, d.c.sale_id == sale_id))
        return (
            None
            if row is None
            else DepositRecord(
                row.bidder_id, row.sale_id, row.currency, row.applied, row.forfeited, row.refunded, row.released
            )
        )

    async def save_deposit(self, record: DepositRecord) -> None:
        values = {
            "bidder_id": record.bidder_id,
            "sale_id": record.sale_id,
            "currency": record.currency,
            "applied": record.applied,
            "forfeited": record.forfeited,
            "refunded": record.refunded,
            "released": record.released,
        }
        await self._upsert(orm.deposits, values, ["bidder_id", "sale_id"])

    async def deposits(self, *, bidder_id: str, sale_id: str) -> list[DepositRecord]:
        d = orm.deposits
        conditions = []
        if bidder_id:
            conditions.append(d.c.bidder_id == bidder_id)
        if sale_id:
            conditions.append(d.c.sale_id == sale_id)
        rows = (
            await self._s.execute(
                select(d).where(and_(*conditions) if conditions else and_(True)).order_by(d.c.sale_id, d.c.bidder_id)
            )
        ).all()
        return [
            DepositRecord(r.bidder_id, r.sale_id, r.currency, r.applied, r.forfeited, r.refunded, r.released)
            for r in rows
        ]

    # -- discipline ---------------------------------------------------------------------------
    @staticmethod
    def _penalty(row: Any) -> Penalty:
        return Penalty(
            row.id,
            row.bidder_id,
            row.sale_id,
            row.lot_id,
            row.currency,
            row.amount,
            row.from_deposit,
            PenaltyReason(row.reason),
            row.cause,
            _utc(row.created_at),
            utc(row.reversed_at),
            row.reversed_by,
            row.reversal_reason,
        )

    async def add_penalty(self, penalty: Penalty) -> bool:
        p = orm.penalties
        if await self._one(select(p.c.id).where(p.c.cause == penalty.cause)) is not None:
            return False
        await self._s.execute(
            p.insert().values(
                id=penalty.id,
                bidder_id=penalty.bidder_id,
                sale_id=penalty.sale_id,
                lot_id=penalty.lot_id,
                currency=penalty.currency,
                amount=penalty.amount,
                from_deposit=penalty.from_deposit,
                reason=penalty.reason.value,
                cause=penalty.cause,
                created_at=penalty.created_at,
                reversed_at=None,
                reversed_by="",
                reversal_reason="",
            )
        )
        return True

    async def penalty(self, penalty_id: str, *, for_update: bool = False) -> Penalty | None:
        row = await self._one(select(orm.penalties).where(orm.penalties.c.id == penalty_id), for_update)
        return None if row is None else self._penalty(row)

    async def save_penalty(self, penalty: Penalty) -> None:
        await self._s.execute(
            update(orm.penalties)
            .where(orm.penalties.c.id == penalty.id)
            .values(
                reversed_at=penalty.reversed_at,
                reversed_by=penalty.reversed_by,
                reversal_reason=penalty.reversal_reason,
            )
        )

    async def penalties(self, *, bidder_id: str, after: str, limit: int) -> tuple[list[Penalty], int]:
        p = orm.penalties
        where = p.c.bidder_id == bidder_id if bidder_id else and_(True)
        rows = (await self._s.execute(select(p).where(where, p.c.id > after).order_by(p.c.id).limit(limit))).all()
        total = (await self._s.execute(select(func.count()).select_from(p).where(where))).scalar_one()
        return [self._penalty(r) for r in rows], int(total)

    async def penalties_of(self, bidder_id: str) -> list[Penalty]:
        return (await self.penalties(bidder_id=bidder_id, after="", limit=10_000))[0]

    @staticmethod
    def _ban(row: Any) -> Ban:
        return Ban(
            row.bidder_id,
            row.sale_id,
            row.reason,
            row.source,
            row.active,
            _utc(row.banned_at),
            row.banned_by,
            utc(row.lifted_at),
            row.lifted_by,
            row.lift_reason,
        )

    async def ban(self, bidder_id: str, sale_id: str) -> Ban | None:
        b = orm.bans
        row = await self._one(select(b).where(b.c.bidder_id == bidder_id, b.c.sale_id == sale_id))
        return None if row is None else self._ban(row)

    async def save_ban(self, ban: Ban) -> None:
        values = {
            "bidder_id": ban.bidder_id,
            "sale_id": ban.sale_id,
            "reason": ban.reason,
            "source": ban.source,
            "active": ban.active,
            "banned_at": ban.banned_at,
            "banned_by": ban.banned_by,
            "lifted_at": ban.lifted_at,
            "lifted_by": ban.lifted_by,
            "lift_reason": ban.lift_reason,
        }
        await self._upsert(orm.bans, values, ["bidder_id", "sale_id"])

    async def bans(self, *, bidder_id: str, active_only: bool) -> list[Ban]:
        b = orm.bans
        conditions = []
        if bidder_id:
            conditions.append(b.c.bidder_id == bidder_id)
        if active_only:
            conditions.append(b.c.active.is_(True))
        rows = (
            await self._s.execute(
                select(b).where(and_(*conditions) if conditions else and_(True)).order_by(b.c.banned_at)
            )
        ).all()
        return [self._ban(r) for r in rows]

    # -- tickets ------------------------------------------------------------------------------
    async def pack(self, pack_id: str) -> TicketPack | None:
        row = await self._one(select(orm.ticket_packs).where(orm.ticket_packs.c.id == pack_id))
        return None if row is None else TicketPack(row.id, row.currency, row.tickets, row.unit_minor, row.active)

    async def save_pack(self, pack: TicketPack) -> None:
        values = {
            "id": pack.id,
            "currency": pack.currency,
            "tickets": pack.tickets,
            "unit_minor": pack.unit_minor,
            "active": pack.active,
        }
        await self._upsert(orm.ticket_packs, values, ["id"])

    async def packs(self) -> list[TicketPack]:
        rows = (await self._s.execute(select(orm.ticket_packs).order_by(orm.ticket_packs.c.id))).all()
        return [TicketPack(r.id, r.currency, r.tickets, r.unit_minor, r.active) for r in rows]

    async def add_batch(self, batch: TicketBatch) -> None:
        await self._s.execute(
            orm.ticket_batches.insert().values(
                id=batch.id,
                bidder_id=batch.bidder_id,
                pack_id=batch.pack_id,
                currency=batch.currency,
                unit_minor=batch.unit_minor,
                bought=batch.bought,
                remaining=batch.remaining,
                refunded=batch.refunded,
                bought_at=batch.bought_at,
                charge_id=batch.charge_id,
            )
        )

    async def batches(self, bidder_id: str, *, for_update: bool = False) -> list[TicketBatch]:
        b = orm.ticket_batches
        statement = select(b).where(b.c.bidder_id == bidder_id).order_by(b.c.bought_at, b.c.id)
        if for_update:
            statement = statement.with_for_update()
        rows = (await self._s.execute(statement)).all()
        return [
            TicketBatch(
                r.id,
                r.bidder_id,
                r.pack_id,
                r.currency,
                r.unit_minor,
                r.bought,
                r.remaining,
                r.refunded,
                _utc(r.bought_at),
                r.charge_id,
            )
            for r in rows
        ]

    async def save_batch(self, batch: TicketBatch) -> None:
        await self._s.execute(
            update(orm.ticket_batches)
            .where(orm.ticket_batches.c.id == batch.id)
            .values(remaining=batch.remaining, refunded=batch.refunded)
        )

    async def add_spend(self, spend: TicketSpend) -> None:
        s = orm.ticket_spends
        row = await self._one(select(s).where(s.c.bidder_id == spend.bidder_id, s.c.lot_id == spend.lot_id))
        if row is None:
            await self._s.execute(
                s.insert().values(
                    bidder_id=spend.bidder_id,
                    lot_id=spend.lot_id,
                    product_id=spend.product_id,
                    sale_id="",
                    currency=spend.currency,
                    tickets=spend.tickets,
                    value_minor=spend.value_minor,
                    settled=False,
                )
            )
            return
        await self._s.execute(
            update(s)
            .where(s.c.bidder_id == spend.bidder_id, s.c.lot_id == spend.lot_id)
            .values(tickets=s.c.tickets + spend.tickets, value_minor=s.c.value_minor + spend.value_minor)
        )

    async def spends_of_lot(self, lot_id: str) -> list[tuple[TicketSpend, bool]]:
        s = orm.ticket_spends
        rows = (await self._s.execute(select(s).where(s.c.lot_id == lot_id).order_by(s.c.bidder_id))).all()
        return [
            (TicketSpend(r.bidder_id, r.lot_id, r.product_id, r.currency, r.tickets, r.value_minor), r.settled)
            for r in rows
        ]

    async def mark_spend_settled(self, bidder_id: str, lot_id: str) -> None:
        s = orm.ticket_spends
        await self._s.execute(update(s).where(s.c.bidder_id == bidder_id, s.c.lot_id == lot_id).values(settled=True))

    async def first_time(self, event_id: str, now: datetime) -> bool:
        p = orm.processed
        if await self._one(select(p.c.event_id).where(p.c.event_id == event_id)) is not None:
            return False
        await self._s.execute(p.insert().values(event_id=event_id, processed_at=now))
        return True


class SqlPaymentUnitOfWork(SqlUnitOfWork):
    """`payment.app.ports.PaymentUnitOfWork` over SQLAlchemy with the kit's idempotency store and outbox."""

    def __init__(self, db: Database, relay: OutboxRelay | None = None) -> None:
        super().__init__(db, orm.tables, relay)
        self.is_sqlite = db.is_sqlite
        self.ledger = SqlLedger(self)
        self.store = SqlStore(self)
        self.new_refunds: list[str] = []  # refunds this unit of work created: sent to the provider after commit

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await super().__aexit__(exc_type, exc, tb)
        if exc is not None and not isinstance(exc, FailedPrecondition) and retryable(exc):
            raise Aborted("a concurrent change won; retry with the same request id") from exc

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.new_refunds = []
        if self.is_sqlite:
            # pysqlite starts a transaction only at the first write, so what a unit of work read
            # before it would not be protected; taking the write lock up front makes every unit of
            # work serializable on SQLite (one writer at a time is SQLite's model anyway).
            await self.session.execute(text("BEGIN IMMEDIATE"))
        return self

    async def commit(self) -> None:
        try:
            await super().commit()
        except DBAPIError as exc:
            if retryable(exc):
                raise Aborted("a concurrent change won; retry with the same request id") from exc
            raise

    async def collect(self, event: PaymentEvent) -> None:
        await emit_message(self, event.subject, event_message(event), event.event_id)
