"""Watch feeds: late joiners, resumes, lost and repeated announcements, slow watchers."""

from __future__ import annotations

import asyncio

import pytest
from room_fakes import Clock, FakeFeedSource, Tasks

from room.app.feeds import Feeds, WatchEnded, Watcher, WatcherOverflow

LOT = "lot-1"


async def received(watcher: Watcher, count: int) -> list[int]:
    got = []
    for _ in range(count):
        _, item = await asyncio.wait_for(watcher.next(), timeout=1)
        got.append(item.lot_sequence)
    return got


def nothing_more(watcher: Watcher) -> bool:
    return watcher.waiting == 0


async def started(source: FakeFeedSource, tasks: Tasks) -> Feeds:
    return Feeds(source, tasks, Clock())


async def one_watcher(stored: int = 0) -> tuple[FakeFeedSource, Feeds, Watcher]:
    """A feed of LOT with `stored` batches already in its log, and one watcher from its start."""
    source, tasks = FakeFeedSource(), Tasks()
    for sequence in range(1, stored + 1):
        source.store(sequence)
    feeds = await started(source, tasks)
    watcher = Watcher()
    feeds.watch(watcher, LOT, 0)
    await tasks.settle()
    return source, feeds, watcher


async def test_a_late_joiner_gets_the_history_then_the_live_batches_without_gaps_or_duplicates():
    source, tasks = FakeFeedSource(), Tasks()
    for sequence in (1, 2, 3):
        source.store(sequence)
    feeds = await started(source, tasks)
    watcher = Watcher()
    feeds.watch(watcher, LOT, 0)
    await tasks.settle()
    source.deliver[LOT](source.store(4))
    source.deliver[LOT](source.log[-1])  # announced twice (a new owner repeats the tail)
    assert await received(watcher, 4) == [1, 2, 3, 4]
    assert nothing_more(watcher)


async def test_a_resuming_watcher_starts_after_its_cursor():
    source, tasks = FakeFeedSource(), Tasks()
    for sequence in range(1, 6):
        source.store(sequence)
    feeds = await started(source, tasks)
    first, resumed = Watcher(), Watcher()
    feeds.watch(first, LOT, 0)
    await tasks.settle()
    feeds.watch(resumed, LOT, 3)
    assert await received(resumed, 2) == [4, 5]
    assert nothing_more(resumed)
    assert source.reads == 1  # the second watcher was served from the feed's history


async def test_a_lost_announcement_is_filled_from_the_log():
    source, tasks = FakeFeedSource(), Tasks()
    feeds = await started(source, tasks)
    watcher = Watcher()
    feeds.watch(watcher, LOT, 0)
    await tasks.settle()
    source.deliver[LOT](source.store(1))
    source.store(2)  # stored, but its announcement never arrives
    source.deliver[LOT](source.store(3))
    await tasks.settle()
    assert await received(watcher, 3) == [1, 2, 3]


async def test_announcements_during_the_first_read_are_held_and_deduplicated():
    source, tasks = FakeFeedSource(), Tasks()
    source.store(1)
    feeds = await started(source, tasks)
    watcher = Watcher()
    feeds.watch(watcher, LOT, 0)
    await asyncio.sleep(0)  # subscribed, reading the log
    source.deliver[LOT](source.store(2))
    source.deliver[LOT](source.log[0])
    await tasks.settle()
    assert await received(watcher, 2) == [1, 2]
    assert nothing_more(watcher)


@pytest.mark.parametrize("lost", [LOT, None], ids=["slow consumer", "reconnect"])
async def test_a_possible_loss_makes_the_feed_check_the_log_for_a_lost_last_announcement(lost):
    source, tasks = FakeFeedSource(), Tasks()
    feeds = await started(source, tasks)
    watcher = Watcher()
    feeds.watch(watcher, LOT, 0)
    await tasks.settle()
    source.store(1)  # never announced, and nothing follows it
    source.lose(lost)
    await tasks.settle()
    assert await received(watcher, 1) == [1]


async def test_quiet_feeds_cost_nothing_until_a_loss_is_possible():
    source, tasks = FakeFeedSource(), Tasks()
    clock = Clock()
    feeds = Feeds(source, tasks, clock)
    watchers = [Watcher() for _ in range(100)]
    for number, watcher in enumerate(watchers):
        feeds.watch(watcher, f"lot-{number}", 0)
    await tasks.settle()
    reads = source.reads
    for _ in range(10):
        clock.advance(60_000)
        await feeds.sweep()
    await tasks.settle()
    assert source.reads == reads
    source.lose("lot-7")
    await tasks.settle()
    assert source.reads == reads + 1


async def test_a_reconnect_rechecks_every_feed_a_few_at_a_time():
    source, tasks = FakeFeedSource(), Tasks()
    feeds = Feeds(source, tasks, Clock(), max_reads=4)
    for number in range(40):
        feeds.watch(Watcher(), f"lot-{number}", 0)
    await tasks.settle()
    in_flight = {"now": 0, "most": 0}
    history = source.history

    async def counted(lot_id: str, after: int):
        in_flight["now"] += 1
        in_flight["most"] = max(in_flight["most"], in_flight["now"])
        try:
            return await history(lot_id, after)
        finally:
            in_flight["now"] -= 1

    source.history = counted
    source.lose(None)
    await tasks.settle()
    assert source.reads == 80
    assert in_flight["most"] <= 4


async def test_a_watcher_too_far_behind_is_cut_off():
    source, tasks = FakeFeedSource(), Tasks()
    for sequence in range(1, 6):
        source.store(sequence)
    feeds = await started(source, tasks)
    watcher = Watcher(limit=3)
    feeds.watch(watcher, LOT, 0)
    await tasks.settle()
    assert await received(watcher, 3) == [1, 2, 3]
    with pytest.raises(WatcherOverflow):
        await watcher.next()


async def test_an_unwatched_feed_lingers_then_closes():
    source, tasks = FakeFeedSource(), Tasks()
    clock = Clock()
    feeds = Feeds(source, tasks, clock, linger_ms=5_000)
    watcher = Watcher()
    feeds.watch(watcher, LOT, 0)
    await tasks.settle()
    feeds.unwatch(watcher)
    await feeds.sweep()
    assert LOT in feeds.feeds
    clock.advance(5_000)
    await feeds.sweep()
    assert LOT not in feeds.feeds


async def test_a_waiting_watcher_is_woken_by_the_next_batch():
    source, _, watcher = await one_watcher()
    waiting = asyncio.create_task(received(watcher, 1))
    await asyncio.sleep(0)
    assert not waiting.done()
    source.deliver[LOT](source.store(1))
    assert await waiting == [1]


async def test_an_ended_watcher_gets_what_was_offered_before_the_end_then_ends():
    _, feeds, watcher = await one_watcher(stored=2)
    await feeds.close_all()
    assert await received(watcher, 2) == [1, 2]
    with pytest.raises(WatchEnded):
        await watcher.next()


async def test_a_lost_last_announcement_nobody_signalled_reaches_the_watcher_at_the_tail_check():
    source, tasks, clock = FakeFeedSource(), Tasks(), Clock()
    source.store(1)
    feeds = Feeds(source, tasks, clock, tail_check_ms=10_000)
    watcher = Watcher()
    feeds.watch(watcher, LOT, 0)
    await tasks.settle()
    assert await received(watcher, 1) == [1]
    source.store(2, final=True)  # stored, its announcement lost, and no loss was signalled
    clock.advance(9_999)
    assert await feeds.check_tails() == 0  # not quiet long enough to be checked
    clock.advance(1)
    assert await feeds.check_tails() == 1
    await tasks.settle()
    assert await received(watcher, 1) == [2]
    clock.advance(60_000)
    checks = source.tail_checks
    assert await feeds.check_tails() == 0
    assert source.tail_checks == checks  # the lot ended: its feed checks no more


async def test_a_feed_keeps_only_its_recent_history_and_serves_older_batches_from_the_log():
    source, tasks = FakeFeedSource(), Tasks()
    for sequence in range(1, 11):
        source.store(sequence)
    feeds = Feeds(source, tasks, Clock(), history=4)
    first = Watcher()
    feeds.watch(first, LOT, 0)
    await tasks.settle()
    assert await received(first, 10) == list(range(1, 11))  # the first read hands out everything
    feed = feeds.feeds[LOT]
    assert [item.lot_sequence for item in feed.items] == [7, 8, 9, 10]
    recent, old = Watcher(), Watcher()
    feeds.watch(recent, LOT, 7)
    assert await received(recent, 3) == [8, 9, 10]
    reads = source.reads
    feeds.watch(old, LOT, 2)
    source.deliver[LOT](source.store(11))  # live batches keep coming while the old one catches up
    await tasks.settle()
    assert source.reads == reads + 1
    assert await received(old, 9) == list(range(3, 12))
    assert nothing_more(old)
    assert [item.lot_sequence for item in feed.items] == [8, 9, 10, 11]


async def test_a_feed_uses_bounded_memory_however_long_its_lot_runs():
    source, tasks = FakeFeedSource(), Tasks()
    feeds = Feeds(source, tasks, Clock(), history=16)
    watcher = Watcher()
    feeds.watch(watcher, LOT, 0)
    await tasks.settle()
    for sequence in range(1, 1_001):
        source.deliver[LOT](source.store(sequence))
        await watcher.next()
    assert len(feeds.feeds[LOT].items) == 16
    assert feeds.feeds[LOT].head == 1_000
