"""The transactional outbox fit for money: one relay at a time however many replicas run, every row
once and in order, a bad row dead-lettered instead of blocking the rest, an unpublishable event
refused before its transaction commits, and old rows and idempotency keys pruned."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools

import nats
import pytest
from sqlalchemy import Column, MetaData, String, Table, func, insert, select

from gavel_core.errors import ResourceExhausted
from gavel_kit import nats as gavel_nats
from gavel_kit.db import (
    Database,
    KitTables,
    OutboxRelay,
    PermanentPublishError,
    SqlUnitOfWork,
    create_late_kit_tables,
    kit_tables,
)
from gavel_kit.nats import StreamSpec

pytestmark = pytest.mark.integration

metadata = MetaData()
notes = Table("outboxtest_notes", metadata, Column("id", String(50), primary_key=True))
tables: KitTables = kit_tables(metadata, "outboxtest")


@pytest.fixture
async def database(database_url):
    db = Database(database_url)
    async with db.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield db
    await db.dispose()


async def emit_events(db: Database, count: int, first: int = 0, relay: OutboxRelay | None = None) -> None:
    async with SqlUnitOfWork(db, tables, relay) as uow:
        for number in range(first, first + count):
            await uow.emit(f"gavel.outboxtest.e.{number}", b"x", msg_id=f"evt-{number}", event_type="E")
        await uow.commit()


async def rows(db: Database, table: Table) -> int:
    async with db.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def test_an_event_larger_than_the_bus_carries_is_refused_before_the_change_commits(database):
    relay = OutboxRelay(database, tables, publish=None)  # type: ignore[arg-type]
    relay.max_payload = 4096

    async def change() -> None:
        async with SqlUnitOfWork(database, tables, relay) as uow:
            await uow.session.execute(insert(notes).values(id="n1"))
            await uow.emit("gavel.outboxtest.big.1", b"x" * 5000, msg_id="big", event_type="Big")
            await uow.commit()

    with pytest.raises(ResourceExhausted):
        await change()
    assert await rows(database, notes) == 0
    assert await rows(database, tables.outbox) == 0


@pytest.mark.parametrize("subject", ["gavel.outboxtest.*", "gavel..twice", "gavel.outboxtest.has space", ""])
async def test_an_event_on_a_malformed_subject_is_refused(database, subject):
    with pytest.raises(ValueError, match="invalid subject"):
        async with SqlUnitOfWork(database, tables) as uow:
            await uow.emit(subject, b"x", msg_id="m", event_type="E")


async def test_two_relays_on_one_database_publish_every_row_once_and_in_order(database):
    sent: list[str] = []
    all_sent = asyncio.Event()

    async def publish(subject: str, payload: bytes, *, msg_id: str, event_type: str | None) -> None:
        sent.append(msg_id)
        if len(sent) == 100:
            all_sent.set()
        await asyncio.sleep(0)  # let the other relay try to run meanwhile

    first = OutboxRelay(database, tables, publish, poll_s=0.01, batch=7)
    second = OutboxRelay(database, tables, publish, poll_s=0.01, batch=7)
    runners = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
    for round_ in range(10):
        await emit_events(database, 10, first=round_ * 10)
        first.wake()
        second.wake()
    await asyncio.wait_for(all_sent.wait(), 30)
    first.stop()
    second.stop()
    await asyncio.gather(*runners)
    assert sent == [f"evt-{number}" for number in range(100)]


async def test_two_pipelined_relays_store_each_event_once_in_outbox_order(database, nats_url):
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(StreamSpec(name="OUTBOXTEST", subjects=["gavel.outboxtest.>"]).config())
    arrived = asyncio.Event()
    count = 0

    async def seen(msg: object) -> None:
        nonlocal count
        count += 1
        if count >= 200:
            arrived.set()

    await nc.subscribe("gavel.outboxtest.>", cb=seen)
    try:
        relays = [
            OutboxRelay(database, tables, functools.partial(gavel_nats.publish, js), js=js, poll_s=0.01, batch=16)
            for _ in range(2)
        ]
        runners = [asyncio.create_task(relay.run()) for relay in relays]
        for round_ in range(5):
            await emit_events(database, 40, first=round_ * 40)
            for relay in relays:
                relay.wake()
        await asyncio.wait_for(arrived.wait(), 30)
        for relay in relays:
            relay.stop()
        await asyncio.gather(*runners)
        info = await js.stream_info("OUTBOXTEST")
        assert info.state.messages == 200
        stored = [(await js.get_msg("OUTBOXTEST", seq=seq)).headers["Nats-Msg-Id"] for seq in range(1, 201)]
        assert stored == [f"evt-{number}" for number in range(200)]
    finally:
        await js.delete_stream("OUTBOXTEST")
        await nc.close()


async def test_a_row_jetstream_refuses_for_good_is_dead_lettered_and_the_rest_go_on(database):
    sent: list[str] = []

    async def publish(subject: str, payload: bytes, *, msg_id: str, event_type: str | None) -> None:
        if msg_id == "evt-1":
            raise PermanentPublishError("maximum payload exceeded")
        sent.append(msg_id)

    relay = OutboxRelay(database, tables, publish)
    await emit_events(database, 3)
    assert await relay.drain_once() == 3
    assert sent == ["evt-0", "evt-2"]
    async with database.sessions() as session:
        dead = (await session.execute(select(tables.dead_letters))).one()
    assert (dead.msg_id, dead.attempts) == ("evt-1", 1)
    assert "maximum payload" in dead.error
    assert await rows(database, tables.outbox) == 2  # the dead row left the outbox


async def test_a_row_that_keeps_failing_blocks_the_others_only_until_its_attempts_run_out(database):
    sent: list[str] = []

    async def publish(subject: str, payload: bytes, *, msg_id: str, event_type: str | None) -> None:
        if msg_id == "evt-0":
            raise TimeoutError("no PubAck")
        sent.append(msg_id)

    relay = OutboxRelay(database, tables, publish, max_attempts=3)
    await emit_events(database, 2)
    for _ in range(2):
        with pytest.raises(TimeoutError):
            await relay.drain_once()
    assert sent == []  # order: nothing overtakes the failing row while it may still go out
    assert await relay.drain_once() == 2  # third failure: dead-lettered, evt-1 follows
    assert sent == ["evt-1"]
    assert await rows(database, tables.dead_letters) == 1


async def test_published_rows_and_expired_idempotency_keys_are_pruned(database):
    now = dt.datetime.now(dt.UTC)
    later = now + dt.timedelta(days=8)

    async def publish(subject: str, payload: bytes, *, msg_id: str, event_type: str | None) -> None:
        return None

    relay = OutboxRelay(database, tables, publish, clock=lambda: now)
    await emit_events(database, 2)
    async with SqlUnitOfWork(database, tables) as uow:
        await uow.remember("caller", "/m", "r1", "f", b"answer")
        await uow.commit()
    await relay.drain_once()
    await emit_events(database, 1, first=2)  # not published yet: never pruned
    assert await relay.prune() == 0  # too recent
    aged = OutboxRelay(database, tables, publish, clock=lambda: later)
    assert await aged.prune() == 3  # two published rows and the key
    assert await rows(database, tables.outbox) == 1
    assert await rows(database, tables.idempotency) == 0


async def test_the_dead_letter_table_is_created_for_services_whose_migrations_predate_it(database_url):
    db = Database(database_url)
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(lambda c: tables.outbox.create(c))
            await connection.run_sync(create_late_kit_tables, metadata)
            await connection.run_sync(create_late_kit_tables, metadata)  # again: nothing to do
        assert await rows(db, tables.dead_letters) == 0
    finally:
        await db.dispose()
