"""Running a process's main coroutine on the configured event loop.

uvloop by default: measured on the room's bid path and on a raw grpc.aio echo it serves ~20 %
more calls per CPU than the standard loop (docs/benchmarks.md); grpc.aio and nats-py both run on
it. `GAVEL_EVENT_LOOP=asyncio` falls back to the standard loop (e.g. to rule the loop out).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T], event_loop: str = "uvloop") -> T:
    if event_loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)
