"""Reporting outcomes to the catalog: at least once, a refusal is an alert and is retried (never a
silent "done"), a sold lot without its price is never reported as 0."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import grpc
import pytest

from gavel.catalog.v1 import resources_pb2 as res
from room.adapters.metrics import CATALOG_CLOSES
from room.adapters.projections import CatalogCloser


def row(**values):
    base = {
        "lot_id": "lot-1",
        "outcome": "sold",
        "winner_id": "alice",
        "hammer_minor": 5_000,
        "currency": "USD",
        "closed_at": dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        "room_sequence": 7,
        "attempts": 0,
    }
    return SimpleNamespace(**{**base, **values})


class Queue:
    def __init__(self) -> None:
        self.done: list[str] = []
        self.failed: list[tuple[str, str]] = []

    async def done_(self, lot_id: str) -> None:
        self.done.append(lot_id)

    async def failed_(self, lot_id: str, attempts: int, error: str) -> None:
        self.failed.append((lot_id, error))


class Catalog:
    def __init__(self, answer: grpc.StatusCode | None = None) -> None:
        self.answer = answer
        self.requests = []

    async def close_lot(self, request) -> None:
        self.requests.append(request)
        if self.answer is not None:
            raise grpc.aio.AioRpcError(self.answer, grpc.aio.Metadata(), grpc.aio.Metadata(), "no")


def closer(catalog: Catalog) -> tuple[CatalogCloser, Queue]:
    queue = Queue()
    shim = SimpleNamespace(done=queue.done_, failed=queue.failed_)
    return CatalogCloser(shim, catalog), queue  # type: ignore[arg-type]


def count(result: str) -> float:
    return CATALOG_CLOSES.labels(result)._value.get()


async def test_a_recorded_outcome_carries_the_rooms_sequence_and_is_done():
    catalog = Catalog()
    made, queue = closer(catalog)
    await made._report(row())
    [sent] = catalog.requests
    assert (sent.outcome, sent.winner_id, sent.hammer_price.amount_minor, sent.room_sequence) == (
        res.LOT_OUTCOME_SOLD,
        "alice",
        5_000,
        7,
    )
    assert queue.done == ["lot-1"]


@pytest.mark.parametrize("code", [grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED])
async def test_a_refusal_is_an_alert_and_is_tried_again_never_done(code):
    made, queue = closer(Catalog(code))
    before = count("refused")
    await made._report(row())
    assert queue.done == []
    assert [lot for lot, _ in queue.failed] == ["lot-1"]
    assert count("refused") == before + 1


async def test_a_sold_lot_without_its_hammer_price_is_never_reported_as_zero():
    catalog = Catalog()
    made, queue = closer(catalog)
    before = count("invalid")
    await made._report(row(hammer_minor=None))
    assert catalog.requests == []
    assert queue.done == []
    assert count("invalid") == before + 1


async def test_a_withdrawn_lot_is_reported_withdrawn():
    catalog = Catalog()
    made, _ = closer(catalog)
    await made._report(row(outcome="withdrawn", winner_id="", hammer_minor=None))
    assert catalog.requests[0].outcome == res.LOT_OUTCOME_WITHDRAWN
