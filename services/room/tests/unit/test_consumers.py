"""The durable consumer's batch loop, against a stand-in pull subscription."""

from __future__ import annotations

import asyncio

import pytest

from gavel.catalog.v1 import resources_pb2 as res
from gavel.events.v1 import catalog_events_pb2 as cev
from gavel_core.auth import Principal, Role
from gavel_core.errors import FailedPrecondition
from gavel_kit.consumers import DurableConsumer
from room.adapters.consumers import lot_statement_handler


def ROOM() -> Principal:
    return Principal("svc:room", frozenset({Role.SERVICE}), credential="room-token")


class Message:
    def __init__(self, number: int) -> None:
        self.number = number
        self.acked = False
        self.naked = False

    async def ack(self) -> None:
        self.acked = True

    async def nak(self, delay: float | None = None) -> None:
        self.naked = True


class Subscription:
    """Hands out the given batches, then blocks like an idle stream until cancelled."""

    def __init__(self, *batches: list[Message]) -> None:
        self.batches = list(batches)

    async def fetch(self, batch: int, timeout: float) -> list[Message]:  # noqa: ASYNC109 — nats-py's signature
        if self.batches:
            return self.batches.pop(0)
        await asyncio.Event().wait()
        return []


def consumer(handle, *, ack_all: bool) -> DurableConsumer:
    made = DurableConsumer(None, "S", "durable", "s.>", handle, ack_all=ack_all)  # type: ignore[arg-type]
    made._acks_all = ack_all
    return made


async def consume_until_idle(made: DurableConsumer, subscription: Subscription) -> None:
    task = asyncio.create_task(made._consume(subscription))  # type: ignore[arg-type]
    for _ in range(50):
        await asyncio.sleep(0)
    assert not task.done(), task.exception() if task.done() else None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_empty_batch_is_skipped_and_the_consumer_keeps_going():
    handled: list[int] = []

    async def handle(messages):
        handled.extend(m.number for m in messages)
        return ()

    batch = [Message(1), Message(2)]
    await consume_until_idle(consumer(handle, ack_all=True), Subscription([], batch))
    assert handled == [1, 2]


async def test_with_ack_all_a_handled_batch_is_acknowledged_by_its_last_message_only():
    async def handle(messages):
        return ()

    batch = [Message(1), Message(2), Message(3)]
    await consume_until_idle(consumer(handle, ack_all=True), Subscription(batch))
    assert [m.acked for m in batch] == [False, False, True]


async def test_with_ack_all_a_batch_asking_for_any_retry_is_redelivered_whole():
    async def handle(messages):
        return messages[1:2]

    batch = [Message(1), Message(2), Message(3)]
    await consume_until_idle(consumer(handle, ack_all=True), Subscription(batch))
    assert all(m.naked and not m.acked for m in batch)


async def test_with_explicit_acks_only_the_retries_are_redelivered():
    async def handle(messages):
        return messages[1:2]

    batch = [Message(1), Message(2), Message(3)]
    await consume_until_idle(consumer(handle, ack_all=False), Subscription(batch))
    assert [(m.acked, m.naked) for m in batch] == [(True, False), (False, True), (True, False)]


class Starting:
    """Message of a LotStarting event as the consumer hands it to the handler."""

    def __init__(self, lot_id: str, fmt: int = res.FORMAT_ENGLISH, with_lot: bool = True) -> None:
        lot = res.Lot(id=lot_id, format=fmt)
        event = cev.LotStarting(lot_id=lot_id, lot=lot) if with_lot else cev.LotStarting(lot_id=lot_id)
        self.data = event.SerializeToString()


class Owners:
    def __init__(self, unreachable: frozenset[str] = frozenset(), refusing: frozenset[str] = frozenset()) -> None:
        self.started: list[str] = []
        self.unreachable = unreachable
        self.refusing = refusing

    async def route(self, method: str, lot_id: str, request, service) -> None:
        assert method == "StartLot"
        assert request.lot.id == lot_id
        if lot_id in self.unreachable:
            raise TimeoutError("no owner answered")
        if lot_id in self.refusing:
            raise FailedPrecondition("BAD_TERMS", "terms unusable")
        self.started.append(lot_id)


async def test_started_live_lots_go_to_their_owners_and_tenders_and_lots_without_terms_do_not():
    owners = Owners()
    handle = lot_statement_handler(cev.LotStarting, "StartLot", owners.route)  # type: ignore[arg-type]
    messages = [Starting("lot-a"), Starting("lot-t", fmt=res.FORMAT_TENDER_OPEN), Starting("lot-x", with_lot=False)]
    assert await handle(messages) == []
    assert owners.started == ["lot-a"]


async def test_only_the_lot_whose_owner_was_unreachable_is_retried_and_a_refused_lot_is_not():
    owners = Owners(unreachable=frozenset({"lot-b"}), refusing=frozenset({"lot-c"}))
    handle = lot_statement_handler(cev.LotStarting, "StartLot", owners.route)  # type: ignore[arg-type]
    messages = [Starting("lot-a"), Starting("lot-b"), Starting("lot-c")]
    assert await handle(messages) == [messages[1]]
    assert owners.started == ["lot-a"]
