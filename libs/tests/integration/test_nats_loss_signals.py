"""Readers of core NATS learn when messages may have been dropped, instead of polling for gaps."""

from __future__ import annotations

import asyncio

import pytest

from gavel_kit import nats as gavel_nats

pytestmark = pytest.mark.integration


async def test_a_slow_consumer_reports_the_subject_whose_messages_were_dropped(nats_url):
    nc = await gavel_nats.connect(nats_url, "loss-test")
    lost: list[str | None] = []
    gavel_nats.on_possible_loss(nc, lost.append)
    release = asyncio.Event()

    async def stuck(_msg) -> None:
        await release.wait()

    await nc.subscribe("gavel.test.live.lot-1", cb=stuck, pending_msgs_limit=2)
    for _ in range(20):
        await nc.publish("gavel.test.live.lot-1", b"batch")
    await nc.flush()
    for _ in range(100):
        if lost:
            break
        await asyncio.sleep(0.02)
    release.set()
    await nc.close()
    assert "gavel.test.live.lot-1" in lost


async def test_a_reconnect_reports_that_anything_may_have_been_dropped(nats_url):
    nc = await gavel_nats.connect(nats_url, "loss-test")
    lost: list[str | None] = []
    gavel_nats.on_possible_loss(nc, lost.append)
    await nc._process_op_err(ConnectionResetError("dropped by the test"))  # what a broken socket triggers
    for _ in range(200):
        if None in lost:
            break
        await asyncio.sleep(0.05)
    await nc.close()
    assert None in lost
