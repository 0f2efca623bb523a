"""The owner's alarm clock: one heap of wake-up times for every lot it holds.

Deadlines live in each lot's state (they are rebuilt from its log, so they survive a failover);
this only remembers when to look at each lot next. A lot has at most one wake-up time; setting a
new one replaces it (the old heap entry is skipped when it comes up). When a time comes, `fire`
is called with the lot id and the lot decides what is due (Tick, ClosingSoon, or nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import Callable

from room.app.ports import Clock

MAX_SLEEP_S = 1.0  # wake at least this often, so a wall-clock jump is noticed within a second


class WakeUps:
    def __init__(self, clock: Clock, fire: Callable[[str], None]) -> None:
        self._clock = clock
        self._fire = fire
        self._heap: list[tuple[int, str]] = []
        self._due: dict[str, int] = {}
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self._due)

    def set(self, lot_id: str, at_ms: int | None) -> None:
        """Wake the lot at `at_ms` (None: do not wake it)."""
        if at_ms is None:
            self._due.pop(lot_id, None)
            return
        if self._due.get(lot_id) == at_ms:
            return
        self._due[lot_id] = at_ms
        heapq.heappush(self._heap, (at_ms, lot_id))
        if self._heap[0][0] == at_ms:
            self._changed.set()

    def pop_due(self) -> list[str]:
        """The lots whose time has come (each forgotten: the lot sets its next time itself)."""
        now = self._clock()
        due: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, lot_id = heapq.heappop(heap)
            if self._due.get(lot_id) == at:
                del self._due[lot_id]
                due.append(lot_id)
        return due

    def seconds_to_next(self) -> float:
        heap = self._heap
        while heap and self._due.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)  # superseded entries
        if not heap:
            return MAX_SLEEP_S
        return max(0.0, min(MAX_SLEEP_S, (heap[0][0] - self._clock()) / 1000))

    async def run(self) -> None:
        while True:
            for lot_id in self.pop_due():
                self._fire(lot_id)
            self._changed.clear()
            delay = self.seconds_to_next()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=delay)
                task = asyncio.current_task()
                if task is not None and task.cancelling():  # wait_for may have swallowed a cancel
                    raise asyncio.CancelledError
