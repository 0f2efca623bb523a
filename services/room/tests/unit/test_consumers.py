"""The durable consumer's batch loop, against a stand-in pull subscription."""

from __future__ import annotations

import asyncio

import pytest

from room.adapters.consumers import DurableConsumer


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
