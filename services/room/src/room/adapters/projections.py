"""SQL projections of the lots' logs, and reporting lot outcomes to the catalog.

`Projector.project` turns a run of batches (as the durable consumer room-projections delivers
them) into rows, in one transaction, keyed so a redelivered batch inserts nothing twice: bid
history (room_bids), outcomes (room_lot_results), penalties, the crier's audit log (crier, vendor,
pause, open and withdraw actions), and a room_catalog_closes row per lot the room ended (not for
lots the catalog itself withdrew before they started). `CatalogCloser` then reports each one to
the catalog's CloseLot (request id `<lot_id>:close`, with the lot_sequence of the batch that ended
it) off the bid path, at least once: retried with exponential backoff until the catalog has it. A
refusal is an alert (error log naming the lot, gavel_room_catalog_closes_total{result="refused"})
and is retried like a failure, never marked done; a record that cannot be reported (a sold lot
without a hammer price) is an alert too, never sent as 0.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import grpc

from gavel.catalog.v1 import catalog_service_pb2 as cat
from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1.money_pb2 import Money
from gavel_kit.db import Database, utcnow
from gavel_kit.logging import get_logger
from room.adapters import orm
from room.adapters.catalog_client import CatalogClient
from room.adapters.codec import timestamp
from room.adapters.metrics import CATALOG_CLOSES
from room.adapters.repositories import CatalogCloses, details_json, insert_or_ignore, instant
from room.app.lots import CATALOG
from room.app.model import Batch, Withdrawn
from room.domain.events import (
    AskingSet,
    BidAccepted,
    BidUndone,
    BuyNowTaken,
    FloorBidAccepted,
    GoingOnce,
    GoingTwice,
    Hammered,
    IncrementSet,
    LotOpened,
    LotPaused,
    LotResumed,
    LotSold,
    LotUnsold,
    OptionPicked,
    Passed,
    PenaltyAssessed,
    Reopened,
    VendorAccepted,
    VendorDeclined,
)

log = get_logger("room.projections")

CRIER_EVENTS = (
    LotOpened,
    AskingSet,
    IncrementSet,
    GoingOnce,
    GoingTwice,
    Hammered,
    Passed,
    Reopened,
    BidUndone,
    LotPaused,
    LotResumed,
    VendorAccepted,
    VendorDeclined,
)


def _details(event: Any, command: str) -> dict[str, str]:
    details = {"command": command}
    for f in fields(event):
        value = getattr(event, f.name)
        if f.name not in ("lot_id", "at_ms", "by") and value is not None:
            details[f.name] = str(value)
    return details


class Projector:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def project(self, batches: Sequence[tuple[int, Batch]]) -> None:
        bid_rows: list[dict[str, Any]] = []
        action_rows: list[dict[str, Any]] = []
        penalty_rows: list[dict[str, Any]] = []
        result_rows: list[dict[str, Any]] = []
        close_rows: list[dict[str, Any]] = []
        undone: list[tuple[str, str]] = []
        for stream_sequence, batch in batches:
            currency = batch.currency
            for index, event in enumerate(batch.events):
                key = {"stream_sequence": stream_sequence, "event_index": index, "lot_id": batch.lot_id}
                at = instant(event.at_ms)
                bid = self._bid(event, batch)
                if bid is not None:
                    bid_rows.append(
                        {**key, **bid, "lot_sequence": batch.lot_sequence, "currency": currency, "placed_at": at}
                    )
                if isinstance(event, (*CRIER_EVENTS, Withdrawn)):
                    action_rows.append(
                        {
                            **key,
                            "lot_sequence": batch.lot_sequence,
                            "action": type(event).__name__,
                            "actor_id": event.by,
                            "at": at,
                            "details": details_json(_details(event, batch.command)),
                        }
                    )
                if isinstance(event, BidUndone):
                    undone.append((batch.lot_id, event.bid_id))
                elif isinstance(event, PenaltyAssessed):
                    penalty_rows.append(
                        {**key, "bidder_id": event.bidder, "price_minor": event.price, "reason": event.reason}
                    )
                elif isinstance(event, LotSold | LotUnsold):
                    result, close = self._outcome(event, batch, stream_sequence, at)
                    result_rows.append(result)
                    if batch.actor_id != CATALOG or batch.command != "Withdraw":  # the catalog withdrew it itself
                        close_rows.append(close)
        async with self._db.sessions() as session:
            for table, rows in (
                (orm.bids, bid_rows),
                (orm.crier_actions, action_rows),
                (orm.penalties, penalty_rows),
                (orm.lot_results, result_rows),
                (orm.catalog_closes, close_rows),
            ):
                if rows:
                    await session.execute(insert_or_ignore(self._db, table), rows)
            for lot_id, bid_id in undone:
                await session.execute(
                    orm.bids.update()
                    .where(orm.bids.c.lot_id == lot_id, orm.bids.c.bid_id == bid_id)
                    .values(undone=True)
                )
            await session.commit()

    @staticmethod
    def _bid(event: Any, batch: Batch) -> dict[str, Any] | None:
        after = batch.after
        if isinstance(event, BidAccepted):
            source, amount, price, leader, paddle = "online", event.amount, event.price, event.leader, ""
        elif isinstance(event, FloorBidAccepted):
            source, amount, price, leader, paddle = "floor", event.amount, event.amount, event.bidder, event.paddle
        elif isinstance(event, BuyNowTaken):
            source, amount, price, leader, paddle = "buy_now", event.price, event.price, event.bidder, ""
        elif isinstance(event, OptionPicked):
            source, amount, price, leader, paddle = "pick", after.price, after.price, after.leader or "", ""
        else:
            return None
        return {
            "bid_id": event.bid_id,
            "bidder_id": event.bidder,
            "source": source,
            "amount_minor": amount,
            "price_minor": price,
            "leader_id": leader,
            "paddle": paddle,
            "undone": False,
        }

    @staticmethod
    def _outcome(
        event: LotSold | LotUnsold, batch: Batch, stream_sequence: int, at: dt.datetime
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        sold = isinstance(event, LotSold)
        result = {
            "lot_id": batch.lot_id,
            "outcome": "sold" if sold else "unsold",
            "buyer_id": event.buyer if isinstance(event, LotSold) else "",
            "hammer_minor": event.hammer_price if isinstance(event, LotSold) else None,
            "currency": batch.currency,
            "source": event.source if isinstance(event, LotSold) else "",
            "paddle": (event.paddle or "") if isinstance(event, LotSold) else "",
            "discount_bp": event.discount_bp if isinstance(event, LotSold) else 0,
            "unsold_reason": event.reason if isinstance(event, LotUnsold) else "",
            "decided_at": at,
            "stream_sequence": stream_sequence,
        }
        withdrawn = any(isinstance(other, Withdrawn) for other in batch.events)
        close = {
            "lot_id": batch.lot_id,
            "outcome": "withdrawn" if withdrawn else result["outcome"],
            "room_sequence": batch.lot_sequence,
            "winner_id": result["buyer_id"],
            "hammer_minor": result["hammer_minor"],
            "currency": batch.currency,
            "closed_at": at,
            "attempts": 0,
            "next_attempt_at": utcnow(),
            "done_at": None,
            "last_error": "",
        }
        return result, close


class CatalogCloser:
    """Reports ended lots to the catalog until it has acknowledged each one (at least once)."""

    def __init__(self, queue: CatalogCloses, catalog: CatalogClient, poll_s: float = 1.0) -> None:
        self._queue = queue
        self._catalog = catalog
        self._poll_s = poll_s

    async def run(self) -> None:
        while True:
            try:
                for row in await self._queue.due():
                    await self._report(row)
            except Exception:
                log.warning("reporting lot outcomes to the catalog failed; retrying", exc_info=True)
            await asyncio.sleep(self._poll_s)

    @staticmethod
    def request(row: Any) -> cat.CloseLotRequest:
        """The CloseLot for a queued row; ValueError if the room's record cannot be reported as it is."""
        request = cat.CloseLotRequest(request_id=f"{row.lot_id}:close", lot_id=row.lot_id)
        request.room_sequence = int(row.room_sequence or 0)
        if request.room_sequence <= 0:
            raise ValueError("no lot_sequence of the batch that ended the lot")
        if row.outcome == "sold":
            if row.hammer_minor is None or not row.winner_id:
                raise ValueError("a sold lot without its hammer price or buyer")
            request.outcome = res.LOT_OUTCOME_SOLD
            request.winner_id = row.winner_id
            request.hammer_price.CopyFrom(Money(amount_minor=row.hammer_minor, currency=row.currency))
        elif row.outcome == "withdrawn":
            request.outcome = res.LOT_OUTCOME_WITHDRAWN
        else:
            request.outcome = res.LOT_OUTCOME_PASSED
        closed_at = row.closed_at if row.closed_at.tzinfo else row.closed_at.replace(tzinfo=dt.UTC)
        request.closed_at.CopyFrom(timestamp(int(closed_at.timestamp() * 1000)))
        return request

    async def _report(self, row: Any) -> None:
        try:
            request = self.request(row)
        except ValueError as exc:
            CATALOG_CLOSES.labels("invalid").inc()
            log.error("a lot's outcome cannot be reported to the catalog", lot_id=row.lot_id, problem=str(exc))
            await self._queue.failed(row.lot_id, row.attempts, f"INVALID: {exc}")
            return
        try:
            await self._catalog.close_lot(request)
        except grpc.aio.AioRpcError as exc:
            error = f"{exc.code().name}: {exc.details()}"
            if exc.code() in REFUSALS:
                CATALOG_CLOSES.labels("refused").inc()
                log.error(
                    "the catalog refused the room's outcome of a lot; the two disagree until this is resolved",
                    lot_id=row.lot_id,
                    outcome=row.outcome,
                    code=exc.code().name,
                    details=exc.details(),
                )
            else:
                CATALOG_CLOSES.labels("failed").inc()
            await self._queue.failed(row.lot_id, row.attempts, error)
            return
        CATALOG_CLOSES.labels("recorded").inc()
        await self._queue.done(row.lot_id)


# What the catalog answers when it will not take the report as it is (anything else: try again).
REFUSALS = frozenset(
    {
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)
