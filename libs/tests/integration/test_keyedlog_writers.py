"""The keyed log with writer subjects and claims on a real nats-server: one message per append,
a partition claimed away from a live writer, lost acks, a crash mid-group, and rebuilds whose tail
runs across several writers' subjects."""

from __future__ import annotations

import asyncio
import itertools
import time

import nats
import pytest

from gavel_core.errors import FailedPrecondition
from gavel_kit.keyedlog import KeyedLog, LogConfig, NotOwner, stable_partition, wire
from gavel_kit.keyedlog.history import key_history, replay
from gavel_kit.keyedlog.jetstream import LogLayout, ensure_log_streams
from gavel_kit.keyedlog.sample import Bid, BidBookEngine, Book, Peek, Placed, Standing
from gavel_kit.keyedlog.store import Retry, Stored
from gavel_kit.keyedlog.writers import WriterLogStore

pytestmark = pytest.mark.integration

ENGINE = BidBookEngine()
PARTITIONS = 8
_layouts = itertools.count(1)

Log = KeyedLog[Book, Bid | Peek, Placed, Standing]


def clock() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
async def nc(nats_url):
    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest.fixture
async def layout(nc) -> LogLayout:
    n = next(_layouts)
    made = LogLayout(f"TEST_WLOG_{n}", f"test.wlog{n}", f"TEST_WSNAP_{n}", f"test.wsnap{n}")
    await ensure_log_streams(nc.jetstream(), made)
    return made


async def started(store: WriterLogStore, *partitions: int, **config: object) -> Log:
    log: Log = KeyedLog(
        ENGINE,
        store,
        partitions=PARTITIONS,
        writer=store.writer,
        clock=clock,
        config=LogConfig(**config),  # type: ignore[arg-type]
    )
    log.start()
    for partition in partitions or range(PARTITIONS):
        await log.open(partition)
    return log


def keys_in(partition: int, count: int) -> list[str]:
    return [k for k in (f"lot-{i}" for i in range(10_000)) if stable_partition(k, PARTITIONS) == partition][:count]


def bid(log: Log, key: str, command_id: str, amount: int, bidder: str = "b") -> asyncio.Future[Standing]:
    return asyncio.ensure_future(log.submit(key, command_id, f"{bidder}:{amount}", Bid(bidder, amount)))


async def entries_of(store: WriterLogStore, partition: int) -> list[wire.StoredEntry]:
    found: list[wire.StoredEntry] = []
    for message in await store.read_partition(partition, 0):
        found.extend(wire.stored_entries(message.sequence, wire.decode_group(message.data)))
    return found


async def logged(store: WriterLogStore) -> int:
    return sum([len(await entries_of(store, p)) for p in range(PARTITIONS)])


async def test_a_group_over_every_partition_is_one_message(nc, layout):
    store = WriterLogStore(nc, layout, writer="w1")
    log = await started(store)
    answers = await asyncio.gather(*(bid(log, f"lot-{i}", f"bid-{i}", 10 + i) for i in range(200)))
    assert [a.price for a in answers] == [10 + i for i in range(200)]
    assert log.stats.appends < 200
    assert log.stats.messages > log.stats.appends  # several partitions' parts per append ...
    assert store.stats.messages == log.stats.appends  # ... in one message each
    assert await logged(store) == 200
    await log.stop()


async def test_a_partition_claimed_away_stops_its_old_writer_and_the_new_one_has_its_history(nc, layout):
    old_store = WriterLogStore(nc, layout, writer="old")
    old = await started(old_store, 0, 1, retry_backoff_s=0.01)
    lot, other = keys_in(0, 1)[0], keys_in(1, 1)[0]
    assert (await bid(old, lot, "bid-1", 100)).key_sequence == 1
    fenced: list[int] = []
    old._on_fenced = fenced.append
    new = await started(WriterLogStore(nc, layout, writer="new"), 0)
    with pytest.raises(NotOwner):  # the old writer's next append is refused by the marker
        await bid(old, lot, "bid-2", 200)
    assert fenced == [0]
    assert not old.owns(0)
    assert (await bid(old, other, "bid-3", 5)).key_sequence == 1  # its other partition carries on
    with pytest.raises(FailedPrecondition):  # the new writer rebuilt the old one's bid
        await bid(new, lot, "bid-4", 50)
    assert (await bid(new, lot, "bid-2", 200)).key_sequence == 2
    assert [e.command_id for e in await key_history(new._store, 0, lot)] == ["bid-1", "bid-2"]  # type: ignore[arg-type]
    await old.stop()
    await new.stop()


class LosingAcks(WriterLogStore):
    """Publishes for real, then loses the server's answer: the writer does not learn where it is."""

    lose = 0

    async def _send(self, messages):
        before = self._expected
        outcomes = await super()._send(messages)
        if self.lose > 0 and all(isinstance(o, Stored) for o in outcomes):
            self.lose -= 1
            self._expected = before
            return [Retry("ack lost by the test") for _ in messages]
        return outcomes


async def test_a_lost_ack_is_resolved_by_reading_back_and_the_group_is_stored_once(nc, layout):
    store = LosingAcks(nc, layout, writer="w1")
    log = await started(store, retry_backoff_s=0.01)
    store.lose = 1
    answers = await asyncio.gather(*(bid(log, f"lot-{i}", f"bid-{i}", 7) for i in range(30)))
    assert all(a.key_sequence == 1 for a in answers)
    assert log.stats.retried >= 1
    assert await logged(store) == 30
    await log.stop()


async def test_a_crash_mid_group_loses_no_acknowledged_command_and_the_successor_answers_retries(nc, layout, nats_url):
    crashing_nc = await nats.connect(nats_url)
    store = WriterLogStore(crashing_nc, layout, writer="crashing", ack_wait_s=0.5)
    crashed = await started(store, retry_backoff_s=0.01)
    acknowledged = await asyncio.gather(*(bid(crashed, f"lot-{i}", f"bid-{i}", 10) for i in range(50)))
    sent = store.stats.appends
    in_flight = [bid(crashed, f"lot-{i}", f"late-{i}", 20) for i in range(50)]
    for _ in range(1000):
        if store.stats.appends > sent:
            break
        await asyncio.sleep(0)
    await crashing_nc.close()
    await crashed.stop()
    await asyncio.gather(*in_flight, return_exceptions=True)
    successor = await started(WriterLogStore(nc, layout, writer="successor"))
    for i, answer in enumerate(acknowledged):
        assert await bid(successor, f"lot-{i}", f"bid-{i}", 10) == answer
    retried = await asyncio.gather(*(bid(successor, f"lot-{i}", f"late-{i}", 20) for i in range(50)))
    assert all(r.key_sequence == 2 and r.price == 20 for r in retried)
    assert await logged(WriterLogStore(nc, layout, writer="reader")) == 100
    await successor.stop()


async def test_rebuilds_across_three_owners_equal_a_replay_from_the_start(nc, layout):
    lots = keys_in(0, 4)
    owners: list[Log] = []
    amount = 0
    for owner in range(3):
        log = await started(WriterLogStore(nc, layout, writer=f"owner{owner}"), 0, checkpoint_every_entries=10**9)
        owners.append(log)
        for _ in range(30):
            amount += 1
            await asyncio.gather(*(bid(log, lot, f"{lot}-{amount}", amount) for lot in lots))
            if amount % 45 == 0:
                assert await log.checkpoint(0)
    last = owners[-1]
    reader = WriterLogStore(nc, layout, writer="reader")
    for lot in lots:
        history = await key_history(reader, 0, lot)
        assert [e.key_sequence for e in history] == list(range(1, 91))
        assert await last.read(lot, ENGINE.state_hash) == ENGINE.state_hash(replay(ENGINE, lot, history))
    judge = await started(WriterLogStore(nc, layout, writer="judge"), 0, verify_snapshots=True)
    for lot in lots:
        assert await judge.read(lot, lambda book: (book.price, book.bids)) == (90, 90)
    for log in (*owners, judge):
        await log.stop()


async def test_reopening_a_partition_it_gave_up_claims_it_again(nc, layout):
    store = WriterLogStore(nc, layout, writer="w1")
    log = await started(store, 0)
    lot = keys_in(0, 1)[0]
    await bid(log, lot, "bid-1", 1)
    log.close(0)
    await log.open(0)
    assert (await bid(log, lot, "bid-2", 2)).key_sequence == 2
    await log.stop()
