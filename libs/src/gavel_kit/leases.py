"""Leases and heartbeats in a JetStream key-value bucket whose keys expire unless rewritten.

The bucket's TTL (its stream's max age) is the lease length: a key disappears `ttl_s` after its
last write, so a holder that dies loses its leases without anyone deleting them. Writes are
revision-checked (`Nats-Expected-Last-Subject-Sequence`): `create` succeeds only on a free key,
`update` only while the key still holds the revision the writer last wrote, so exactly one of two
contenders wins. Reading every key is one direct get (`multi_last`), not a consumer.

Leases are kept in memory storage on purpose: losing them with the NATS server only makes every
holder claim again, and what they guard must be safe without them anyway (Gavel's room appends
are fenced by expected sequences, not by leases). A bucket lost that way is created again: after
every reconnect (it is one of the connection's `gavel_kit.nats.Resources`) and at once when an
operation finds it missing, which then runs once more on the new bucket.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BadRequestError, BucketNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from gavel_kit import nats as gavel_nats
from gavel_kit.logging import get_logger
from gavel_kit.streamread import last_per_subject

log = get_logger("gavel.leases")

KV_OPERATION = "KV-Operation"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    value: bytes
    revision: int


class ExpiringKeys:
    """A key-value bucket with a TTL, created on first use and again whenever it is found missing."""

    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        bucket: str,
        ttl_s: float,
        *,
        storage: StorageType = StorageType.MEMORY,
        description: str = "",
        replicas: int = 1,
    ) -> None:
        self._nc = nc
        self._js = js
        self.bucket = bucket
        self.ttl_s = ttl_s
        self._storage = storage
        self._description = description
        self._replicas = replicas
        self._kv: KeyValue | None = None
        self.recreated = 0  # times the bucket was found missing and created again

    @property
    def stream(self) -> str:
        return f"KV_{self.bucket}"

    async def open(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self._open_or_create()
            gavel_nats.resources(self._nc).add(f"bucket {self.bucket}", self._ensure)
        return self._kv

    async def _open_or_create(self) -> KeyValue:
        try:
            return await self._js.key_value(self.bucket)
        except BucketNotFoundError:
            pass
        config = KeyValueConfig(
            bucket=self.bucket,
            description=self._description or None,
            ttl=self.ttl_s or None,
            history=1,
            storage=self._storage,
            direct=True,
            replicas=self._replicas,
        )
        try:
            kv = await self._js.create_key_value(config)
        except BadRequestError:  # created meanwhile by another process, maybe with another config
            return await self._js.key_value(self.bucket)
        log.info("bucket created", bucket=self.bucket)
        return kv

    async def _ensure(self) -> None:
        """The reconnect step: the bucket exists (a NATS restart loses memory-stored ones)."""
        self._kv = await self._open_or_create()

    async def _run(self, operation: Callable[[KeyValue], Awaitable[T]]) -> T:
        """Run a bucket operation; if the bucket turns out to be missing, create it and run once more."""
        kv = await self.open()
        try:
            return await operation(kv)
        except Exception as exc:
            if not gavel_nats.is_missing(exc):
                raise
        log.warning("bucket missing; creating it again", bucket=self.bucket)
        self._kv = None
        self.recreated += 1
        return await operation(await self.open())

    async def put(self, key: str, value: bytes) -> int:
        return await self._run(lambda kv: kv.put(key, value))

    async def create(self, key: str, value: bytes) -> int | None:
        """Write a key that does not exist (or expired); None if someone holds it."""
        try:
            return await self._run(lambda kv: kv.create(key, value))
        except KeyWrongLastSequenceError:
            return None

    async def update(self, key: str, value: bytes, revision: int) -> int | None:
        """Rewrite a key still at `revision`; None if it changed or expired meanwhile."""
        try:
            return await self._run(lambda kv: kv.update(key, value, last=revision))
        except KeyWrongLastSequenceError:
            return None

    async def delete(self, key: str, revision: int | None = None) -> None:
        await self._run(lambda kv: kv.delete(key, last=revision))

    async def entries(self, key_filter: str = ">") -> dict[str, Entry]:
        """Every live key matching the filter (NATS wildcards), with its value and revision."""
        prefix = f"$KV.{self.bucket}."

        async def read(_: KeyValue) -> dict[str, Entry]:
            found: dict[str, Entry] = {}
            for message in await last_per_subject(self._nc, self.stream, [prefix + key_filter]):
                if message.headers.get(KV_OPERATION) in ("DEL", "PURGE"):
                    continue
                key = message.subject[len(prefix) :]
                found[key] = Entry(key, message.data, message.sequence)
            return found

        return await self._run(read)
