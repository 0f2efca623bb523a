"""The keyed log against its in-memory store (JetStream's rules): group commit, fencing, retries,
snapshots and bounded receipts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gavel_core.errors import FailedPrecondition, ResourceExhausted, Unavailable
from gavel_kit.keyedlog import KeyedLog, LogConfig, NotOwner, stable_partition, wire
from gavel_kit.keyedlog.history import key_history, partition_entries, replay
from gavel_kit.keyedlog.memory import MemoryLogStore
from gavel_kit.keyedlog.sample import Bid, BidBookEngine, Book, Peek, Placed, Standing
from gavel_kit.keyedlog.store import Outgoing

ENGINE = BidBookEngine()
PARTITIONS = 4


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


Log = KeyedLog[Book, Bid | Peek, Placed, Standing]


async def started(
    store: MemoryLogStore, *partitions: int, writer: str = "w1", clock: Clock | None = None, **config: object
) -> Log:
    log: Log = KeyedLog(
        ENGINE,
        store,
        partitions=PARTITIONS,
        writer=writer,
        clock=clock or Clock(),
        config=LogConfig(**config),  # type: ignore[arg-type]
    )
    log.start()
    for partition in partitions or range(PARTITIONS):
        await log.open(partition)
    return log


def key_in(partition: int, n: int = 0) -> str:
    """The n-th key (lot-<i>) that falls in `partition`."""
    found = [f"lot-{i}" for i in range(1000) if stable_partition(f"lot-{i}", PARTITIONS) == partition]
    return found[n]


def bid(log: Log, key: str, command_id: str, amount: int, bidder: str = "b") -> asyncio.Task[Standing]:
    return asyncio.ensure_future(log.submit(key, command_id, f"{bidder}:{amount}", Bid(bidder, amount)))


async def until(condition, limit: int = 2000) -> None:
    for _ in range(limit):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def accepted(store: MemoryLogStore, key: str, partition: int) -> list[wire.StoredEntry]:
    entries = []
    for message in store.messages:
        if message.partition == partition:
            entries.extend(e for e in wire.stored_entries(message.sequence, wire.decode_group(message.data)))
    return [e for e in entries if e.key == key and e.accepted]


async def test_a_command_is_answered_only_once_the_append_holding_it_is_stored():
    store = MemoryLogStore(hold=asyncio.Event())
    log = await started(store)
    answer = bid(log, "lot-1", "bid-1", 100)
    await until(lambda: store.calls == 1)
    for _ in range(20):
        await asyncio.sleep(0)
    assert not answer.done()
    store.hold.set()
    assert await answer == Standing(1, 100, "b")
    await log.stop()


async def test_commands_that_arrive_while_an_append_is_in_flight_go_together_in_the_next():
    store = MemoryLogStore(hold=asyncio.Event())
    log = await started(store)
    first = bid(log, "lot-0", "first", 10)
    await until(lambda: store.calls == 1)
    later = [bid(log, f"lot-{i}", f"bid-{i}", 10) for i in range(1, 41)]
    store.hold.set()
    await asyncio.gather(first, *later)
    assert log.stats.appends == 2  # the first alone, then all forty in one append
    assert log.stats.entries == 41
    assert store.stats.messages == 1 + len({stable_partition(f"lot-{i}", PARTITIONS) for i in range(1, 41)})
    await log.stop()


async def test_a_lone_command_is_sent_at_once_without_waiting_for_company():
    store = MemoryLogStore()
    log = await started(store, linger_s=0.0)
    assert (await bid(log, "lot-1", "bid-1", 5)).key_sequence == 1
    assert log.stats.appends == 1
    await log.stop()


async def test_a_hot_key_decides_its_queued_commands_back_to_back_and_commits_them_in_one_group():
    store = MemoryLogStore(hold=asyncio.Event())
    log = await started(store)
    first = bid(log, "hot", "bid-0", 1)
    await until(lambda: store.calls == 1)
    rest = [bid(log, "hot", f"bid-{n}", n + 1, bidder=f"b{n % 7}") for n in range(1, 200)]
    store.hold.set()
    answers = await asyncio.gather(first, *rest)
    assert [a.key_sequence for a in answers] == list(range(1, 201))
    assert answers[-1].price == 200
    assert log.stats.appends == 2
    partition = stable_partition("hot", PARTITIONS)
    assert [e.key_sequence for e in accepted(store, "hot", partition)] == list(range(1, 201))
    await log.stop()


async def test_a_retry_gets_the_first_answer_and_appends_nothing_more():
    store = MemoryLogStore(hold=asyncio.Event())
    log = await started(store)
    first = bid(log, "lot-1", "bid-1", 100)
    retry_in_flight = bid(log, "lot-1", "bid-1", 100)
    store.hold.set()
    assert await first == await retry_in_flight == Standing(1, 100, "b")
    await bid(log, "lot-1", "bid-2", 200)
    assert await bid(log, "lot-1", "bid-1", 100) == Standing(1, 100, "b")
    assert log.stats.entries == 2
    await log.stop()


async def test_a_reused_command_id_with_another_request_is_refused():
    log = await started(MemoryLogStore())
    await bid(log, "lot-1", "bid-1", 100)
    with pytest.raises(FailedPrecondition) as refused:
        await bid(log, "lot-1", "bid-1", 999)
    assert refused.value.reason == "REQUEST_ID_REUSED"
    await log.stop()


async def test_a_refusal_is_logged_and_a_retry_gets_the_same_refusal_after_the_state_moved_on():
    store = MemoryLogStore()
    log = await started(store)
    await bid(log, "lot-1", "bid-1", 100)
    with pytest.raises(FailedPrecondition) as low:
        await bid(log, "lot-1", "bid-2", 50, bidder="c")
    assert low.value.reason == "BID_TOO_LOW"
    await bid(log, "lot-1", "bid-3", 500)  # 50 is still too low, but a retry must not change its answer
    with pytest.raises(FailedPrecondition) as again:
        await bid(log, "lot-1", "bid-2", 50, bidder="c")
    assert again.value.metadata == {"min_amount_minor": "101"}
    partition = stable_partition("lot-1", PARTITIONS)
    refusals = [e for e in await partition_entries(store, partition) if not e.accepted]
    assert [e.command_id for e in refusals] == ["bid-2"]
    await log.stop()


async def test_a_read_waits_for_the_decisions_before_it_to_be_durable():
    store = MemoryLogStore(hold=asyncio.Event())
    log = await started(store)
    placed = bid(log, "lot-1", "bid-1", 100)
    seen = asyncio.ensure_future(log.read("lot-1", lambda book: book.price))
    peeked = asyncio.ensure_future(log.submit("lot-1", "peek-1", "", Peek()))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not seen.done()
    assert not peeked.done()
    store.hold.set()
    assert await seen == 100
    assert (await peeked).price == 100
    await placed
    assert await log.read("lot-1", lambda book: book.bids) == 1  # nothing pending: answered at once
    await log.stop()


async def test_a_lost_ack_is_resolved_by_sending_the_same_message_again_and_stored_once():
    store = MemoryLogStore(lose_acks=1)
    log = await started(store, retry_backoff_s=0.001)
    assert await bid(log, "lot-1", "bid-1", 100) == Standing(1, 100, "b")
    assert len(store.messages) == 1
    assert log.stats.retried == 1
    assert (await bid(log, "lot-1", "bid-2", 200)).key_sequence == 2
    await log.stop()


async def test_an_append_that_never_reached_the_store_is_sent_again():
    store = MemoryLogStore(drop_appends=2)
    log = await started(store, retry_backoff_s=0.001)
    assert (await bid(log, "lot-1", "bid-1", 100)).key_sequence == 1
    assert len(store.messages) == 1
    await log.stop()


async def test_a_partition_another_writer_appended_to_is_rebuilt_and_its_commands_decided_again():
    store = MemoryLogStore(hold=asyncio.Event())
    fenced: list[int] = []
    log = await started(store)
    log._on_fenced = fenced.append
    key = key_in(1)
    await _foreign_bid(store, 1, key, 500, "foreign")  # appended by another writer after we opened
    answer = bid(log, key, "bid-1", 100)
    store.hold.set()
    with pytest.raises(FailedPrecondition) as low:  # decided again on the rebuilt state: 100 < 500
        await answer
    assert low.value.reason == "BID_TOO_LOW"
    assert fenced == [1]
    assert (await bid(log, key, "bid-2", 600)).key_sequence == 2
    assert [e.key_sequence for e in accepted(store, key, 1)] == [1, 2]
    await log.stop()


async def _foreign_bid(store: MemoryLogStore, partition: int, key: str, amount: int, msg_id: str) -> None:
    """Another writer appends a bid to `key` at the end of its partition (it read the latest)."""
    before = [e for e in accepted(store, key, partition)]
    record = ENGINE.encode_record(key, Placed("rival", amount, 0), Book())
    frame = wire.entry_frame(key, len(before) + 1, msg_id, "rival", 0, record=record)
    data = wire.group_message(partition, "other", 1, {key: 0}, [frame])
    store.write_foreign(partition, data, msg_id)


async def test_two_writers_racing_one_partition_leave_one_serial_history():
    store = MemoryLogStore()
    first = await started(store, 0, writer="w1", retry_backoff_s=0.001, max_attempts=50)
    second = await started(store, 0, writer="w2", retry_backoff_s=0.001, max_attempts=50)
    key = key_in(0)
    tasks = []
    for n in range(1, 61):
        writer = first if n % 2 else second
        tasks.append(bid(writer, key, f"bid-{n}", n * 10, bidder=f"b{n}"))
        if n % 5 == 0:
            await asyncio.sleep(0)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    acknowledged = {f"bid-{n}" for n, r in enumerate(results, start=1) if isinstance(r, Standing)}
    history = accepted(store, key, 0)
    assert [e.key_sequence for e in history] == list(range(1, len(history) + 1))
    amounts = [ENGINE.decode_record(key, e.record).amount for e in history]
    assert amounts == sorted(set(amounts))  # every accepted bid beat the one before it
    assert acknowledged <= {e.command_id for e in history}  # nothing acknowledged is missing
    assert first.stats.fenced + second.stats.fenced > 0
    await first.stop()
    await second.stop()


async def test_a_writer_that_crashed_mid_group_loses_no_acknowledged_command_and_retries_find_theirs():
    store = MemoryLogStore()
    crashed = await started(store)
    done = await asyncio.gather(*(bid(crashed, f"lot-{i}", f"bid-{i}", 10) for i in range(10)))
    store.hold = asyncio.Event()  # the next group is sent but its acks never come back
    in_flight = [bid(crashed, f"lot-{i}", f"late-{i}", 20) for i in range(10)]
    await until(lambda: store.calls == 2)
    store.lose_acks = 10
    store.hold.set()  # stored, but the writer dies before it hears
    await crashed.stop()
    for task in in_flight:
        with pytest.raises(Unavailable):
            await task
    store.hold = None
    successor = await started(store, writer="w2")
    for i, answer in enumerate(done):
        assert await bid(successor, f"lot-{i}", f"bid-{i}", 10) == answer
    retried = await asyncio.gather(*(bid(successor, f"lot-{i}", f"late-{i}", 20) for i in range(10)))
    assert all(r.key_sequence == 2 and r.price == 20 for r in retried)
    assert sum(1 for m in store.messages for _ in wire.decode_group(m.data).entries) == 20
    await successor.stop()


async def test_a_closed_partition_refuses_its_waiting_commands_so_they_go_to_the_new_owner():
    store = MemoryLogStore(hold=asyncio.Event())
    log = await started(store, 0, 1)
    sending = bid(log, key_in(0), "a", 1)
    await until(lambda: store.calls == 1)
    queued = bid(log, key_in(0), "b", 2)
    await asyncio.sleep(0)
    log.close(0)
    with pytest.raises(NotOwner):
        await queued
    with pytest.raises(NotOwner):
        await bid(log, key_in(0), "c", 3)
    store.hold.set()
    assert (await sending).key_sequence == 1  # in flight when closed: stored, so answered
    await log.stop()


async def test_too_many_unanswered_commands_are_refused_at_once():
    store = MemoryLogStore(hold=asyncio.Event())
    log = await started(store, max_pending=5)
    waiting = [bid(log, "lot-1", f"b{n}", n + 1) for n in range(5)]
    with pytest.raises(ResourceExhausted):
        await bid(log, "lot-1", "b-extra", 100)
    store.hold.set()
    await asyncio.gather(*waiting)
    await log.stop()


async def test_receipts_are_bounded_by_count_and_by_the_dedupe_window():
    clock = Clock()
    log = await started(MemoryLogStore(), clock=clock, max_receipts_per_key=10, dedupe_window_ms=1_000)
    for n in range(1, 51):
        await bid(log, "lot-1", f"b{n}", n)
    assert log.receipts("lot-1") == 10
    assert log.stats.receipts_evicted_early == 40
    clock.now += 5_000
    await bid(log, "lot-1", "b51", 51)
    assert log.receipts("lot-1") == 1
    await log.stop()


async def test_a_new_owner_rebuilds_from_the_checkpoint_and_the_tail_only():
    store = MemoryLogStore()
    first = await started(store, 0, checkpoint_every_entries=10**9)
    key = key_in(0)
    for n in range(1, 101):
        await bid(first, key, f"b{n}", n)
    assert await first.checkpoint(0)
    for n in range(101, 106):
        await bid(first, key, f"b{n}", n)
    reads: list[int] = []
    original = store.read_partition

    async def counted(partition: int, after: int):
        messages = await original(partition, after)
        reads.append(len(messages))
        return messages

    store.read_partition = counted  # type: ignore[method-assign]
    second = await started(store, 0, writer="w2")
    assert reads == [5]  # the five bids after the checkpoint, not the hundred before
    assert await second.read(key, lambda book: (book.price, book.bids)) == (105, 105)
    assert await bid(second, key, "b50", 50) == Standing(50, 50, "b")  # a retry from before the checkpoint
    assert await bid(second, key, "b103", 103) == Standing(103, 103, "b")  # and from the tail
    await first.stop()
    await second.stop()


async def test_checkpoints_happen_by_themselves_after_enough_entries():
    store = MemoryLogStore()
    log = await started(store, 0, checkpoint_every_entries=20)
    key = key_in(0)
    for n in range(1, 61):
        await bid(log, key, f"b{n}", n)
    await until(lambda: log.stats.checkpoints >= 2)
    found = await store.read_snapshot(0, key)
    assert found.data is not None
    assert wire.decode_snapshot(found.data).key_sequence >= 20
    await log.stop()


async def test_a_snapshot_waits_for_the_entries_it_includes_to_be_durable():
    store = MemoryLogStore()
    log = await started(store, 0, checkpoint_every_entries=10**9)
    key = key_in(0)
    await bid(log, key, "b1", 1)
    store.hold = asyncio.Event()
    pending = bid(log, key, "b2", 2)
    await until(lambda: store.calls == 2)
    checkpoint = asyncio.ensure_future(log.checkpoint(0))
    for _ in range(50):
        await asyncio.sleep(0)
    assert not checkpoint.done()
    assert store.snapshot_writes == 0
    store.hold.set()
    assert await checkpoint
    assert (await pending).key_sequence == 2
    snapshot = wire.decode_snapshot((await store.read_snapshot(0, key)).data or b"")
    assert (snapshot.key_sequence, snapshot.position) == (2, store.last_sequence(0))
    await log.stop()


async def test_a_snapshot_subject_another_writer_wrote_fails_the_checkpoint_until_it_is_read_again():
    store = MemoryLogStore()
    log = await started(store, 0, checkpoint_every_entries=10**9)
    key = key_in(0)
    await bid(log, key, "b1", 1)
    assert await log.checkpoint(0)
    store.overwrite_snapshot(0, key, (await store.read_snapshot(0, key)).data or b"")
    await bid(log, key, "b2", 2)
    assert not await log.checkpoint(0)
    assert await log.checkpoint(0)  # the conflict told it where the subject is now
    await log.stop()


async def test_a_key_history_is_read_back_through_its_links_without_the_rest_of_the_partition():
    store = MemoryLogStore()
    log = await started(store, 0, checkpoint_every_entries=10**9)
    key, other = key_in(0, 0), key_in(0, 1)
    for n in range(1, 31):
        await asyncio.gather(bid(log, key, f"k{n}", n), bid(log, other, f"o{n}", n * 1000))
        await bid(log, other, f"o{n}b", n * 1000 + 1)
    assert await log.checkpoint(0)
    for n in range(31, 41):
        await bid(log, key, f"k{n}", n)
    read: list[int] = []
    original = store.read_message

    async def counted(sequence: int):
        read.append(sequence)
        return await original(sequence)

    store.read_message = counted  # type: ignore[method-assign]
    history = await key_history(store, 0, key)
    assert [e.key_sequence for e in history] == list(range(1, 41))
    assert [e.command_id for e in history[-3:]] == ["k38", "k39", "k40"]
    assert len(read) <= 30  # messages holding the key before the checkpoint, none of the other's alone
    assert [e.key_sequence for e in await key_history(store, 0, key, after_key_sequence=35)] == [36, 37, 38, 39, 40]
    await log.stop()


async def test_commands_for_a_partition_not_open_here_are_refused():
    log = await started(MemoryLogStore(), 0)
    with pytest.raises(NotOwner):
        await bid(log, key_in(2), "b1", 1)
    await log.stop()


async def test_keys_with_every_entry_in_a_snapshot_can_be_evicted_and_come_back_from_it():
    clock = Clock()
    store = MemoryLogStore()
    log = await started(store, 0, clock=clock, checkpoint_every_entries=10**9)
    key = key_in(0)
    await bid(log, key, "b1", 7)
    clock.now += 60_000
    assert log.evict_idle(1_000) == 0  # not in a snapshot yet
    assert await log.checkpoint(0)
    assert log.evict_idle(1_000) == 1
    assert log.state_of(key) is None
    assert await log.read(key, lambda book: book.price) == 7
    await log.stop()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(1, 40), st.booleans(), st.booleans()),
        min_size=1,
        max_size=60,
    )
)
def test_replay_from_snapshot_and_tail_gives_the_state_hash_of_a_replay_from_the_start(plan):
    asyncio.run(_snapshot_equals_replay(plan))


async def _snapshot_equals_replay(plan: Sequence[tuple[int, int, bool, bool]]) -> None:
    store = MemoryLogStore()
    writer = await started(store, 0, checkpoint_every_entries=10**9)
    keys = [key_in(0, n) for n in range(4)]
    pending: list[asyncio.Task[Standing]] = []
    for step, (which, amount, checkpoint, wait) in enumerate(plan):
        pending.append(bid(writer, keys[which], f"c{step}", amount, bidder=f"b{step % 3}"))
        if wait:
            await asyncio.gather(*pending, return_exceptions=True)
            pending = []
        if checkpoint:
            await writer.checkpoint(0)
    await asyncio.gather(*pending, return_exceptions=True)
    await writer.stop()
    successor = await started(store, 0, writer="w2")
    entries = await partition_entries(store, 0)
    for key in keys:
        from_start = replay(ENGINE, key, [e for e in entries if e.key == key])
        rebuilt = await successor.read(key, lambda book: ENGINE.state_hash(book))
        assert rebuilt == ENGINE.state_hash(from_start)
        history = await key_history(store, 0, key)
        assert ENGINE.state_hash(replay(ENGINE, key, history)) == rebuilt
    await successor.stop()


def test_group_messages_are_told_apart_from_single_record_messages_by_their_bytes():
    frame = wire.entry_frame("lot-1", 1, "c", "f", 0, record=b"r")
    assert wire.is_group(wire.group_message(0, "w", 1, {"lot-1": 0}, [frame]))
    assert not wire.is_group(b"\x0a\x05lot-1\x10\x07")  # a LotEventBatch: lot_id, lot_sequence
    assert not wire.is_group(Outgoing.__name__.encode())


def test_partitions_are_a_stable_hash_of_the_key():
    assert stable_partition("lot-1", 64) == 29  # pinned: crc32 of the UTF-8 bytes, mod 64


async def test_its_counters_are_prometheus_metrics_read_when_scraped():
    from prometheus_client import CollectorRegistry, generate_latest

    from gavel_kit.keyedlog.metrics import register_metrics

    registry = CollectorRegistry()
    log = await started(MemoryLogStore(), 0)
    register_metrics(log, "test", registry)
    await bid(log, key_in(0), "b1", 1)
    text = generate_latest(registry).decode()
    assert 'gavel_keyedlog_accepted_total{log="test"} 1.0' in text
    assert 'gavel_keyedlog_pending{log="test"} 0.0' in text
    await log.stop()
