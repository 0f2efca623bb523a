"""Test helpers for talking to a running service: a caller whose stub calls carry a bearer token,
and a tap that records every NATS message under a subject prefix and waits for them.

(The catalog's and notify's test suites grew their own copies first; new suites use these.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.msg import Msg

from gavel_kit.grpc.client import bearer


class Caller:
    """A user (or service) of a gRPC stub: every method called on it carries the caller's token."""

    def __init__(self, stub: Any, subject: str, token: str | None, timeout_s: float = 20) -> None:
        self.subject = subject
        self._stub = stub
        self._metadata = bearer(token) if token else ()
        self._timeout_s = timeout_s

    def __getattr__(self, rpc: str) -> Callable[[Any], Awaitable[Any]]:
        method = getattr(self._stub, rpc)

        async def call(request: Any) -> Any:
            return await method(request, metadata=self._metadata, timeout=self._timeout_s)

        return call


class EventTap:
    """Every message published under `<prefix>.>` from the moment the tap opens."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.messages: list[Msg] = []
        self.arrived = asyncio.Condition()
        self._nc: Any = None

    async def open(self, url: str) -> None:
        self._nc = await nats.connect(url)

        async def received(msg: Msg) -> None:
            async with self.arrived:
                self.messages.append(msg)
                self.arrived.notify_all()

        await self._nc.subscribe(f"{self.prefix}.>", cb=received)

    async def close(self) -> None:
        await self._nc.close()

    def of(self, kind: str, key: str = "") -> list[Msg]:
        """Messages on `<prefix>.<kind>.…`, optionally only those whose subject ends with `.<key>`."""
        start = f"{self.prefix}.{kind}."
        return [m for m in self.messages if m.subject.startswith(start) and (not key or m.subject.endswith("." + key))]

    async def wait_for(self, kind: str, key: str = "", count: int = 1, within_s: float = 15) -> list[Msg]:
        """The first `count` messages of `kind` (and key), waiting for them to arrive."""
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.of(kind, key)) >= count), within_s)
        return self.of(kind, key)[:count]
