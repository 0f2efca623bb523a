"""Leases and heartbeats in a JetStream key-value bucket whose keys expire unless rewritten.

The bucket's TTL (its stream's max age) is the lease length: a key disappears `ttl_s` after its
last write, so a holder that dies loses its leases without anyone deleting them. Writes are
revision-checked (`Nats-Expected-Last-Subject-Sequence`): `create` succeeds only on a free key,
`update` only while the key still holds the revision the writer last wrote, so exactly one of two
contenders wins. Reading every key is one direct get (`multi_last`), not a consumer.

Leases are kept in memory storage on purpose: losing them with the NATS server only makes every
holder claim again, and what they guard must be safe without them anyway (Gavel's room appends
are fenced by expected sequences, not by leases).
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from gavel_kit.streamread import last_per_subject

KV_OPERATION = "KV-Operation"


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    value: bytes
    revision: int


class ExpiringKeys:
    """A key-value bucket with a TTL, created on first use."""

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

    @property
    def stream(self) -> str:
        return f"KV_{self.bucket}"

    async def open(self) -> KeyValue:
        if self._kv is None:
            try:
                self._kv = await self._js.key_value(self.bucket)
            except BucketNotFoundError:
                config = KeyValueConfig(
                    bucket=self.bucket,
                    description=self._description or None,
                    ttl=self.ttl_s or None,
                    history=1,
                    storage=self._storage,
                    direct=True,
                    replicas=self._replicas,
                )
                self._kv = await self._js.create_key_value(config)
        return self._kv

    async def put(self, key: str, value: bytes) -> int:
        return await (await self.open()).put(key, value)

    async def create(self, key: str, value: bytes) -> int | None:
        """Write a key that does not exist (or expired); None if someone holds it."""
        try:
            return await (await self.open()).create(key, value)
        except KeyWrongLastSequenceError:
            return None

    async def update(self, key: str, value: bytes, revision: int) -> int | None:
        """Rewrite a key still at `revision`; None if it changed or expired meanwhile."""
        try:
            return await (await self.open()).update(key, value, last=revision)
        except KeyWrongLastSequenceError:
            return None

    async def delete(self, key: str, revision: int | None = None) -> None:
        await (await self.open()).delete(key, last=revision)

    async def entries(self, key_filter: str = ">") -> dict[str, Entry]:
        """Every live key matching the filter (NATS wildcards), with its value and revision."""
        await self.open()
        prefix = f"$KV.{self.bucket}."
        found: dict[str, Entry] = {}
        for message in await last_per_subject(self._nc, self.stream, [prefix + key_filter]):
            if message.headers.get(KV_OPERATION) in ("DEL", "PURGE"):
                continue
            key = message.subject[len(prefix) :]
            found[key] = Entry(key, message.data, message.sequence)
        return found
