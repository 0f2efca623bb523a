"""Watch fan-out: one feed per watched lot per replica, shared by every local watcher of the lot.

A feed follows the lot's announcements (one core NATS subscription per lot per replica), keeps
the lot's recent public history (its last `history` batches: a replica's memory must not grow with
the lots' histories), and hands each watcher every batch after the watcher's cursor exactly once,
in lot_sequence order:

- a late joiner (or a client resuming after a disconnect) gets the history after its cursor, then
  the live batches; the history is read from the log when the feed starts, and a watcher whose
  cursor is older than what the feed keeps gets the older batches from the log (`_backfill`);
- announcements are at most once (core NATS), so a batch that arrives ahead of its predecessor is
  held back while the feed reads the missing ones from the log (JetStream has them all); when the
  source says announcements may have been dropped (a reconnect, an overflowing subscription), the
  feeds concerned check the log (`recheck`), in case the very last announcement was the lost one.
  Besides, every `tail_check_ms` the feeds of open lots that have been quiet that long compare
  their last batch with the log's (one batched request per 100 lots, `LiveFeedSource.tails`) and
  read what is missing: so even a lost *last* announcement that nobody signalled reaches every
  watcher — each watcher sees the final batch of every lot. A feed whose lot ended checks no more;
- duplicates (an announcement repeated by a new owner after a failover) are dropped by sequence.

A watcher that falls too far behind is cut off (its client resumes from its last lot_sequence)
rather than letting its queue grow without bound.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from room.app.ports import Clock, FeedItem, LiveFeedSource, Subscription

log = logging.getLogger("room.feeds")

RETRY_DELAY_S = 0.5
TAIL_BATCH = 100  # lots per tail check request
FEED_HISTORY = 100  # recent batches a feed keeps per lot for resuming watchers (older: from the log)
BACKFILL_ATTEMPTS = 3


class WatcherOverflow(Exception):
    """The watcher fell too far behind; the client should resume from its last lot_sequence."""


class WatchEnded(Exception):
    """The replica is shutting down; the client should resume elsewhere from its last lot_sequence."""


class Watcher:
    """One Watch call: its cursor per lot and the batches waiting to be streamed to it.

    A deque and one waiter rather than an asyncio.Queue: a Watch call has exactly one reader, and
    the queue's bookkeeping (task counting, getter and putter lists) was a visible share of each
    delivery when 5,000 streams were fed."""

    def __init__(self, limit: int = 10_000) -> None:
        self.cursors: dict[str, int] = {}
        self._pending: deque[tuple[str, FeedItem]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._limit = limit
        self.overflowed = False
        self.ended = False

    def offer(self, lot_id: str, item: FeedItem) -> None:
        if item.lot_sequence != self.cursors.get(lot_id, 0) + 1 or self.overflowed or self.ended:
            return  # already delivered (or behind the client's cursor)
        self.cursors[lot_id] = item.lot_sequence
        if len(self._pending) >= self._limit:
            self.overflowed = True
        else:
            self._pending.append((lot_id, item))
        self._wake()

    @property
    def waiting(self) -> int:
        """Batches offered and not yet taken by `next`."""
        return len(self._pending)

    def end(self) -> None:
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next(self) -> tuple[str, FeedItem]:
        """The next batch; what was offered before the end or the overflow is delivered first."""
        while not self._pending:
            if self.ended:
                raise WatchEnded()
            if self.overflowed:
                raise WatcherOverflow()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._pending.popleft()


class LotFeed:
    def __init__(
        self,
        lot_id: str,
        source: LiveFeedSource,
        spawn: Callable[[Coroutine[Any, Any, Any]], object],
        clock: Clock,
        reads: asyncio.Semaphore,
        history: int = FEED_HISTORY,
    ) -> None:
        self.lot_id = lot_id
        self._source = source
        self._spawn = spawn
        self._clock = clock
        self._reads = reads
        self.items: deque[FeedItem] = deque(maxlen=history)  # consecutive lot_sequences, the newest last
        self.backfills = 0  # watchers served older batches from the log
        self.watchers: set[Watcher] = set()
        self._held: list[FeedItem] = []
        self._reading = True
        self._subscription: Subscription | None = None
        self.unwatched_since_ms: int | None = None
        self.closed = False
        self.active_ms = clock()  # when the feed last got a batch (or started)

    @property
    def head(self) -> int:
        """The last lot_sequence this feed has."""
        return self.items[-1].lot_sequence if self.items else 0

    @property
    def first(self) -> int:
        """The oldest lot_sequence this feed still keeps (head + 1 when it keeps none)."""
        return self.items[0].lot_sequence if self.items else self.head + 1

    def start(self) -> None:
        self._spawn(self._subscribe_then_read())

    async def _subscribe_then_read(self) -> None:
        """Subscribe first, so nothing announced while the log is read is missed (it is held)."""
        try:
            self._subscription = await self._source.subscribe(self.lot_id, self._on_announced)
        except Exception:
            log.warning("lot %s: subscribing to its announcements failed", self.lot_id, exc_info=True)
        await self._read_log()

    async def close(self) -> None:
        self.closed = True
        if self._subscription is not None:
            subscription, self._subscription = self._subscription, None
            await subscription.close()

    def add(self, watcher: Watcher, after_sequence: int) -> None:
        watcher.cursors[self.lot_id] = after_sequence
        self.watchers.add(watcher)
        self.unwatched_since_ms = None
        if not self._offer_kept(watcher):
            self.backfills += 1
            self._spawn(self._backfill(watcher))

    def _offer_kept(self, watcher: Watcher) -> bool:
        """Offer what the feed keeps after the watcher's cursor; False if older batches are needed."""
        cursor = watcher.cursors.get(self.lot_id, 0)
        first = self.first
        if cursor + 1 < first:
            return False
        for item in itertools.islice(self.items, cursor + 1 - first, None):
            watcher.offer(self.lot_id, item)
        return True

    async def _backfill(self, watcher: Watcher) -> None:
        """Hand a watcher the batches older than the feed keeps, from the log, then the kept ones.
        Live batches offered meanwhile are refused by its cursor and offered again from `items`."""
        for _ in range(BACKFILL_ATTEMPTS):
            try:
                async with self._reads:
                    older = await self._source.history(self.lot_id, 0)
            except Exception:
                log.warning("lot %s: reading its log for a resuming watcher failed", self.lot_id, exc_info=True)
                await asyncio.sleep(RETRY_DELAY_S)
                continue
            for item in older:
                watcher.offer(self.lot_id, item)  # takes only the next one after its cursor
            if watcher not in self.watchers or watcher.overflowed or self._offer_kept(watcher):
                return  # (an overflowed watcher is cut off with what it was given: it resumes again)
        watcher.end()  # the client resumes (elsewhere) from what it got

    def remove(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)
        if not self.watchers:
            self.unwatched_since_ms = self._clock()

    def _on_announced(self, item: FeedItem) -> None:
        if self._reading:
            self._held.append(item)
        else:
            self._take(item)

    def _take(self, item: FeedItem) -> None:
        if item.lot_sequence <= self.head:
            return
        if item.lot_sequence == self.head + 1:
            self._append(item)
            return
        self._held.append(item)  # a gap: read what is missing from the log first
        self._reading = True
        self._spawn(self._read_log())

    @property
    def final(self) -> bool:
        return bool(self.items) and self.items[-1].final

    @property
    def last_stream_sequence(self) -> int:
        return self.items[-1].stream_sequence if self.items else 0

    def _append(self, item: FeedItem) -> None:
        self.items.append(item)
        self.active_ms = self._clock()
        for watcher in tuple(self.watchers):
            watcher.offer(self.lot_id, item)

    def recheck(self) -> None:
        """Look in the log for batches whose announcement never arrived."""
        if not self._reading and not self.closed:
            self._reading = True
            self._spawn(self._read_log())

    async def _read_log(self) -> None:
        try:
            async with self._reads:
                after = self.items[-1].stream_sequence if self.items else 0
                history = await self._source.history(self.lot_id, after)
            for item in history:
                if item.lot_sequence == self.head + 1:
                    self._append(item)
        except Exception:
            log.warning("lot %s: reading its log for watchers failed; retrying", self.lot_id, exc_info=True)
            await asyncio.sleep(RETRY_DELAY_S)
        finally:
            self._reading = False
            held, self._held = sorted(self._held, key=lambda i: i.lot_sequence), []
            for item in held:
                if not self._reading:
                    self._take(item)
                else:
                    self._held.append(item)


class Feeds:
    """Every feed of this replica; a feed outlives its last watcher by `linger_ms` (reconnects).

    Log reads (late joiners, gaps, rechecks) run at most `max_reads` at once, so a reconnect that
    rechecks thousands of feeds queues them instead of flooding the server."""

    def __init__(
        self,
        source: LiveFeedSource,
        spawn: Callable[[Coroutine[Any, Any, Any]], object],
        clock: Clock,
        *,
        linger_ms: int = 30_000,
        max_reads: int = 32,
        tail_check_ms: int = 10_000,
        history: int = FEED_HISTORY,
    ) -> None:
        self._history = history
        self._source = source
        self._spawn = spawn
        self._clock = clock
        self._linger_ms = linger_ms
        self._tail_check_ms = tail_check_ms
        self._reads = asyncio.Semaphore(max_reads)
        self.feeds: dict[str, LotFeed] = {}
        self._unwatched: dict[str, LotFeed] = {}  # the only feeds a sweep looks at
        source.on_loss(self.recheck)

    def watch(self, watcher: Watcher, lot_id: str, after_sequence: int) -> None:
        feed = self.feeds.get(lot_id)
        if feed is None:
            feed = self.feeds[lot_id] = LotFeed(
                lot_id, self._source, self._spawn, self._clock, self._reads, self._history
            )
            feed.start()
        self._unwatched.pop(lot_id, None)
        feed.add(watcher, after_sequence)

    def unwatch(self, watcher: Watcher) -> None:
        for lot_id in watcher.cursors:
            feed = self.feeds.get(lot_id)
            if feed is not None:
                feed.remove(watcher)
                if not feed.watchers:
                    self._unwatched[lot_id] = feed

    def recheck(self, lot_id: str | None) -> None:
        """Announcements may have been lost: for one lot, or (None) for every lot."""
        if lot_id is None:
            for every in list(self.feeds.values()):
                every.recheck()
            return
        one = self.feeds.get(lot_id)
        if one is not None:
            one.recheck()

    async def sweep(self) -> None:
        """Close feeds nobody has watched for `linger_ms`."""
        now = self._clock()
        for lot_id, feed in list(self._unwatched.items()):
            if feed.watchers or feed.unwatched_since_ms is None:
                del self._unwatched[lot_id]
            elif now - feed.unwatched_since_ms >= self._linger_ms:
                del self._unwatched[lot_id]
                if self.feeds.get(lot_id) is feed:
                    del self.feeds[lot_id]
                await feed.close()

    async def check_tails(self) -> int:
        """Read the log for watched open lots quiet for `tail_check_ms` whose last batch is newer
        than the feed's; returns how many feeds were behind."""
        now = self._clock()
        quiet = [
            feed
            for feed in self.feeds.values()
            if feed.watchers and not feed.final and not feed.closed and now - feed.active_ms >= self._tail_check_ms
        ]
        behind = 0
        for start in range(0, len(quiet), TAIL_BATCH):
            chunk = quiet[start : start + TAIL_BATCH]
            async with self._reads:
                tails = await self._source.tails([feed.lot_id for feed in chunk])
            for feed in chunk:
                feed.active_ms = now  # checked: quiet again from now
                if tails.get(feed.lot_id, 0) > feed.last_stream_sequence:
                    behind += 1
                    log.warning("lot %s: a batch was never announced here; reading it from the log", feed.lot_id)
                    feed.recheck()
        return behind

    async def close_all(self) -> None:
        """End every watch stream (shutdown: clients resume on another replica) and every feed."""
        for lot_id, feed in list(self.feeds.items()):
            for watcher in tuple(feed.watchers):
                watcher.end()
            del self.feeds[lot_id]
            await feed.close()
        self._unwatched.clear()

    async def run(self, every_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.sweep()
                await self.check_tails()
            except Exception:
                log.warning("sweeping watch feeds failed", exc_info=True)
