"""SQL projections of the lots' logs, and reporting lot outcomes to the catalog.

`Projector.project` turns a run of batches (as the durable consumer room-projections delivers
them) into rows, in one transaction, keyed so a redelivered batch inserts nothing twice: bid
history (room_bids), outcomes (room_lot_results), penalties, the crier's audit log, and a
room_catalog_closes row per ended lot. `CatalogCloser` then reports each ended lot to the
catalog's CloseLot (request id `<lot_id>:close`) with exponential backoff, off the bid path.
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
from room.adapters.repositories import CatalogCloses, details_json, insert_or_ignore, instant
from room.app.model import Batch
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
                if isinstance(event, CRIER_EVENTS):
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
        close = {
            "lot_id": batch.lot_id,
            "outcome": result["outcome"],
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
    """Reports ended lots to the catalog until it has acknowledged each one."""

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

    async def _report(self, row: Any) -> None:
        request = cat.CloseLotRequest(request_id=f"{row.lot_id}:close", lot_id=row.lot_id)
        if row.outcome == "sold":
            request.outcome = res.LOT_OUTCOME_SOLD
            request.winner_id = row.winner_id
            request.hammer_price.CopyFrom(Money(amount_minor=row.hammer_minor or 0, currency=row.currency))
        else:
            request.outcome = res.LOT_OUTCOME_PASSED
        closed_at = row.closed_at if row.closed_at.tzinfo else row.closed_at.replace(tzinfo=dt.UTC)
        request.closed_at.CopyFrom(timestamp(int(closed_at.timestamp() * 1000)))
        try:
            await self._catalog.close_lot(request)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                # The catalog has the lot as scheduled when it was opened in the room (by a crier)
                # rather than through the catalog's StartLot: start it there, then close it now.
                await self._start_then_close(row, request)
                return
            await self._queue.failed(row.lot_id, row.attempts, f"{exc.code().name}: {exc.details()}")
            return
        await self._queue.done(row.lot_id)

    async def _start_then_close(self, row: Any, request: cat.CloseLotRequest) -> None:
        try:
            await self._catalog.start_lot(row.lot_id)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                # Neither scheduled nor live: the catalog already closed or cancelled the lot itself.
                log.warning("the catalog will not record this lot's outcome", lot_id=row.lot_id, details=exc.details())
                await self._queue.done(row.lot_id)
                return
            await self._queue.failed(row.lot_id, row.attempts, f"{exc.code().name}: {exc.details()}")
            return
        request.ClearField("closed_at")  # it would precede the start the catalog just recorded
        try:
            await self._catalog.close_lot(request)
        except grpc.aio.AioRpcError as exc:
            await self._queue.failed(row.lot_id, row.attempts, f"{exc.code().name}: {exc.details()}")
            return
        await self._queue.done(row.lot_id)
