"""The keyed log on a real nats-server (sync_interval: always), in both layouts.

Partition subjects: atomic group commits, the fence, lost acks, retries, a crash mid-group,
snapshots in chunks and the rebuild from them. Writer subjects: one message per append, a
partition claimed away from a live writer, lost acks, a crash mid-group, and rebuilds whose tail
runs across several writers' subjects."""

from __future__ import annotations

import asyncio
import itertools
import time

import nats
import pytest

from gavel_core.errors import FailedPrecondition
from gavel_kit.keyedlog import KeyedLog, LogConfig, NotOwner, stable_partition, wire
from gavel_kit.keyedlog.history import key_history, partition_entries, replay
from gavel_kit.keyedlog.jetstream import JetStreamLogStore, LogLayout, ensure_log_streams
from gavel_kit.keyedlog.sample import Bid, BidBookEngine, Book, Peek, Placed, Standing
from gavel_kit.keyedlog.store import Outgoing, Retry, Stored
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
    made = LogLayout(f"TEST_LOG_{n}", f"test.log{n}", f"TEST_SNAP_{n}", f"test.snap{n}")
    await ensure_log_streams(nc.jetstream(), made)
    return made


async def started(store: JetStreamLogStore, *partitions: int, writer: str = "w1", **config: object) -> Log:
    log: Log = KeyedLog(
        ENGINE,
        store,
        partitions=PARTITIONS,
        writer=writer,
        clock=clock,
        config=LogConfig(**config),  # type: ignore[arg-type]
    )
    log.start()
    for partition in partitions or range(PARTITIONS):
        await log.open(partition)
    return log


def keys_in(partition: int, count: int) -> list[str]:
    return [k for k in (f"lot-{i}" for i in range(10_000)) if stable_partition(k, PARTITIONS) == partition][:count]


async def logged(store: JetStreamLogStore) -> int:
    """Entries in every partition of the log."""
    return sum([len(await partition_entries(store, p)) for p in range(PARTITIONS)])


def bid(log: Log, key: str, command_id: str, amount: int, bidder: str = "b") -> asyncio.Future[Standing]:
    return asyncio.ensure_future(log.submit(key, command_id, f"{bidder}:{amount}", Bid(bidder, amount)))


async def test_a_group_over_several_partitions_is_one_atomic_batch_and_every_caller_gets_its_answer(nc, layout):
    store = JetStreamLogStore(nc, layout)
    log = await started(store)
    answers = await asyncio.gather(*(bid(log, f"lot-{i}", f"bid-{i}", 10 + i) for i in range(200)))
    assert [a.price for a in answers] == [10 + i for i in range(200)]
    assert log.stats.appends < 200  # grouped, not one append per command
    assert log.stats.messages > log.stats.appends  # several partitions per append: atomic batches
    for partition in range(PARTITIONS):
        entries = await partition_entries(store, partition)
        assert all(stable_partition(e.key, PARTITIONS) == partition for e in entries)
    assert await logged(store) == 200
    await log.stop()


async def test_a_stale_writer_is_fenced_off_and_the_partition_rebuilt_with_the_winners_entries(nc, layout):
    store = JetStreamLogStore(nc, layout)
    old = await started(store, 0, writer="old", retry_backoff_s=0.01)
    new = await started(store, 0, writer="new")
    lot = keys_in(0, 1)[0]
    assert (await bid(new, lot, "bid-new", 500)).key_sequence == 1  # the new owner wins the race
    with pytest.raises(FailedPrecondition) as low:  # the old one's append is refused, it rebuilds,
        await bid(old, lot, "bid-old", 100)  # decides again on the winner's state: too low now
    assert low.value.reason == "BID_TOO_LOW"
    assert old.stats.fenced == 1
    history = await key_history(store, 0, lot)
    assert [e.command_id for e in history] == ["bid-new"]
    await old.stop()
    await new.stop()


async def test_two_writers_bidding_on_one_partition_leave_one_gapless_serial_history(nc, layout):
    store = JetStreamLogStore(nc, layout)
    writers = [await started(store, 0, writer=f"w{n}", retry_backoff_s=0.005, max_attempts=100) for n in (1, 2)]
    lot = keys_in(0, 1)[0]
    tasks = [bid(writers[n % 2], lot, f"bid-{n}", 10 * n, bidder=f"b{n}") for n in range(1, 41)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    acknowledged = {f"bid-{n}" for n, r in enumerate(results, start=1) if isinstance(r, Standing)}
    history = await key_history(store, 0, lot)
    assert [e.key_sequence for e in history] == list(range(1, len(history) + 1))
    amounts = [ENGINE.decode_record(lot, e.record).amount for e in history]
    assert amounts == sorted(set(amounts))
    assert acknowledged <= {e.command_id for e in history}
    for writer in writers:
        await writer.stop()


class LosingAcks(JetStreamLogStore):
    """Publishes for real, then drops the server's answer for the next `lose` appends."""

    lose = 0

    async def append(self, messages):
        outcomes = await super().append(messages)
        if self.lose > 0 and all(isinstance(o, Stored) for o in outcomes):
            self.lose -= 1
            return [Retry("ack lost by the test") for _ in messages]
        return outcomes


async def test_a_lost_ack_is_resolved_by_reading_back_and_the_command_is_stored_once(nc, layout):
    store = LosingAcks(nc, layout)
    log = await started(store, retry_backoff_s=0.01)
    store.lose = 1
    answers = await asyncio.gather(*(bid(log, f"lot-{i}", f"bid-{i}", 7) for i in range(20)))
    assert all(a.key_sequence == 1 for a in answers)
    assert log.stats.retried >= 1
    assert await logged(store) == 20
    await log.stop()


async def test_resending_a_stored_message_is_answered_with_where_it_was_stored(nc, layout):
    store = JetStreamLogStore(nc, layout)
    data = wire.group_message(3, "w", 1, {"lot-1": 0}, [wire.entry_frame("lot-1", 1, "c", "f", 0, record=b"r")])
    (first,) = await store.append([Outgoing(3, 0, "w:3:1", data)])
    other = wire.group_message(4, "w", 1, {"lot-2": 0}, [wire.entry_frame("lot-2", 1, "c", "f", 0, record=b"r")])
    again = await store.append([Outgoing(3, 0, "w:3:1", data), Outgoing(4, 0, "w:4:1", other)])
    assert isinstance(first, Stored)
    assert again[0] == first  # the batch is refused whole; reading back finds ours where it was
    assert isinstance(again[1], Retry)  # the other message was not stored: send it again
    assert await store.append([Outgoing(4, 0, "w:4:1", other)]) == [Stored(first.sequence + 1)]


async def test_a_duplicate_retry_is_answered_from_its_receipt_on_any_writer_after_a_failover(nc, layout):
    store = JetStreamLogStore(nc, layout)
    first = await started(store, 0)
    lot = keys_in(0, 1)[0]
    answer = await bid(first, lot, "bid-1", 100)
    with pytest.raises(FailedPrecondition):
        await bid(first, lot, "bid-2", 50)
    await first.stop()
    second = await started(store, 0, writer="w2")
    assert await bid(second, lot, "bid-1", 100) == answer
    with pytest.raises(FailedPrecondition) as again:
        await bid(second, lot, "bid-2", 50)
    assert again.value.reason == "BID_TOO_LOW"
    assert len(await key_history(store, 0, lot)) == 1
    await second.stop()


async def test_a_crash_mid_group_loses_no_acknowledged_command_and_retries_learn_what_was_stored(nc, layout, nats_url):
    crashing_nc = await nats.connect(nats_url)
    store = JetStreamLogStore(crashing_nc, layout, ack_wait_s=0.5)  # a dead connection answers nothing
    crashed = await started(store, retry_backoff_s=0.01, retry_for_s=0.2)
    acknowledged = await asyncio.gather(*(bid(crashed, f"lot-{i}", f"bid-{i}", 10) for i in range(50)))
    sent = store.stats.appends
    in_flight = [bid(crashed, f"lot-{i}", f"late-{i}", 20) for i in range(50)]
    for _ in range(1000):  # until the group is on its way (published, its ack not yet back)
        if store.stats.appends > sent:
            break
        await asyncio.sleep(0)
    await crashing_nc.close()  # the process dies with a group on its way
    await asyncio.gather(*in_flight, return_exceptions=True)
    await crashed.stop()
    successor = await started(JetStreamLogStore(nc, layout), writer="w2")
    for i, answer in enumerate(acknowledged):
        assert await bid(successor, f"lot-{i}", f"bid-{i}", 10) == answer
    retried = await asyncio.gather(*(bid(successor, f"lot-{i}", f"late-{i}", 20) for i in range(50)))
    assert all(r.key_sequence == 2 and r.price == 20 for r in retried)
    assert await logged(JetStreamLogStore(nc, layout)) == 100
    await successor.stop()


async def test_a_rebuild_from_chunked_snapshots_and_the_tail_equals_a_replay_from_the_start(nc, layout):
    store = JetStreamLogStore(nc, layout, chunk_bytes=512)  # small chunks: every snapshot is several
    first = await started(store, 0, checkpoint_every_entries=10**9)
    lots = keys_in(0, 5)
    for n in range(1, 81):
        await asyncio.gather(*(bid(first, lot, f"{lot}-{n}", n, bidder=f"bidder-{n % 9}") for lot in lots))
        if n == 60:
            assert await first.checkpoint(0)
    await first.stop()
    reads: list[int] = []
    original = store.read_partition

    async def counted(partition: int, after: int):
        messages = await original(partition, after)
        reads.append(len(messages))
        return messages

    store.read_partition = counted  # type: ignore[method-assign]
    second = await started(store, 0, writer="w2", verify_snapshots=True)
    assert reads == [20]  # only the messages after the checkpoint (one per round of five bids)
    entries = await partition_entries(store, 0)
    for lot in lots:
        from_start = ENGINE.state_hash(replay(ENGINE, lot, [e for e in entries if e.key == lot]))
        assert await second.read(lot, ENGINE.state_hash) == from_start
        assert [e.key_sequence for e in await key_history(store, 0, lot)] == list(range(1, 81))
    assert await bid(second, lots[0], f"{lots[0]}-10", 10, bidder="bidder-1") == Standing(10, 10, "bidder-1")
    await second.stop()


async def test_receipts_stay_bounded_and_snapshots_carry_only_the_kept_ones(nc, layout):
    store = JetStreamLogStore(nc, layout)
    log = await started(store, 0, max_receipts_per_key=25, checkpoint_every_entries=10**9)
    lot = keys_in(0, 1)[0]
    for n in range(1, 101):
        await bid(log, lot, f"bid-{n}", n)
    assert log.receipts(lot) == 25
    assert await log.checkpoint(0)
    snapshot = wire.decode_snapshot((await store.read_snapshot(0, lot)).data or b"")
    assert [r.command_id for r in snapshot.receipts] == [f"bid-{n}" for n in range(76, 101)]
    await log.stop()


# -- writer subjects -------------------------------------------------------------------------------


async def started_writers(store: WriterLogStore, *partitions: int, **config: object) -> Log:
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


async def entries_of(store: WriterLogStore, partition: int) -> list[wire.StoredEntry]:
    found: list[wire.StoredEntry] = []
    for message in await store.read_partition(partition, 0):
        found.extend(wire.stored_entries(message.sequence, wire.decode_group(message.data)))
    return found


async def logged_writers(store: WriterLogStore) -> int:
    return sum([len(await entries_of(store, p)) for p in range(PARTITIONS)])


async def test_a_group_over_every_partition_is_one_message(nc, layout):
    store = WriterLogStore(nc, layout, writer="w1")
    log = await started_writers(store)
    answers = await asyncio.gather(*(bid(log, f"lot-{i}", f"bid-{i}", 10 + i) for i in range(200)))
    assert [a.price for a in answers] == [10 + i for i in range(200)]
    assert log.stats.appends < 200
    assert log.stats.messages > log.stats.appends  # several partitions' parts per append ...
    assert store.stats.messages == log.stats.appends  # ... in one message each
    assert await logged_writers(store) == 200
    await log.stop()


async def test_a_partition_claimed_away_stops_its_old_writer_and_the_new_one_has_its_history(nc, layout):
    old_store = WriterLogStore(nc, layout, writer="old")
    old = await started_writers(old_store, 0, 1, retry_backoff_s=0.01)
    lot, other = keys_in(0, 1)[0], keys_in(1, 1)[0]
    assert (await bid(old, lot, "bid-1", 100)).key_sequence == 1
    fenced: list[int] = []
    old._on_fenced = fenced.append
    new = await started_writers(WriterLogStore(nc, layout, writer="new"), 0)
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


class LosingWriterAcks(WriterLogStore):
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
    store = LosingWriterAcks(nc, layout, writer="w1")
    log = await started_writers(store, retry_backoff_s=0.01)
    store.lose = 1
    answers = await asyncio.gather(*(bid(log, f"lot-{i}", f"bid-{i}", 7) for i in range(30)))
    assert all(a.key_sequence == 1 for a in answers)
    assert log.stats.retried >= 1
    assert await logged_writers(store) == 30
    await log.stop()


async def test_a_crash_mid_group_loses_no_acknowledged_command_and_the_successor_answers_retries(nc, layout, nats_url):
    crashing_nc = await nats.connect(nats_url)
    store = WriterLogStore(crashing_nc, layout, writer="crashing", ack_wait_s=0.5)
    crashed = await started_writers(store, retry_backoff_s=0.01)
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
    successor = await started_writers(WriterLogStore(nc, layout, writer="successor"))
    for i, answer in enumerate(acknowledged):
        assert await bid(successor, f"lot-{i}", f"bid-{i}", 10) == answer
    retried = await asyncio.gather(*(bid(successor, f"lot-{i}", f"late-{i}", 20) for i in range(50)))
    assert all(r.key_sequence == 2 and r.price == 20 for r in retried)
    assert await logged_writers(WriterLogStore(nc, layout, writer="reader")) == 100
    await successor.stop()


async def test_rebuilds_across_three_owners_equal_a_replay_from_the_start(nc, layout):
    lots = keys_in(0, 4)
    owners: list[Log] = []
    amount = 0
    for owner in range(3):
        log = await started_writers(
            WriterLogStore(nc, layout, writer=f"owner{owner}"), 0, checkpoint_every_entries=10**9
        )
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
    judge = await started_writers(WriterLogStore(nc, layout, writer="judge"), 0, verify_snapshots=True)
    for lot in lots:
        assert await judge.read(lot, lambda book: (book.price, book.bids)) == (90, 90)
    for log in (*owners, judge):
        await log.stop()


async def test_reopening_a_partition_it_gave_up_claims_it_again(nc, layout):
    store = WriterLogStore(nc, layout, writer="w1")
    log = await started_writers(store, 0)
    lot = keys_in(0, 1)[0]
    await bid(log, lot, "bid-1", 1)
    log.close(0)
    await log.open(0)
    assert (await bid(log, lot, "bid-2", 2)).key_sequence == 2
    await log.stop()


async def test_rebuilding_every_partition_of_a_dead_writer_reads_its_subject_once(nc, layout):
    dead = await started_writers(WriterLogStore(nc, layout, writer="dead"))
    await asyncio.gather(*(bid(dead, f"lot-{i}", f"bid-{i}", 5) for i in range(100)))
    await dead.stop()
    store = WriterLogStore(nc, layout, writer="heir")
    heir: Log = KeyedLog(ENGINE, store, partitions=PARTITIONS, writer=store.writer, clock=clock)
    heir.start()
    await asyncio.gather(*(heir.open(p) for p in range(PARTITIONS)))
    assert store.range_bundles == dead.stats.appends  # each of its bundles read once, not once per partition
    for i in range(100):
        assert await heir.read(f"lot-{i}", lambda book: book.price) == 5
    await heir.stop()
