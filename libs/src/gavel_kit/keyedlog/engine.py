"""What a service plugs into the keyed log: its engine, as callbacks on one key's state.

A key (a lot) is a state machine: `decide` looks at the state and a command and says what happens
— accept it (a record to append, which `apply` turns into the next state), refuse it, or answer
without changing anything. The log calls `apply` both live (right after `decide`, on the state in
memory) and when it rebuilds a key from its snapshot and the entries after it, so `apply` must be
deterministic: the same records on the same state give the same state (`state_hash` proves it).

The state may be mutable (the room's engines mutate it in place and return it): the log never
keeps an old state around, it only asks for encodings (`encode_state` for snapshots,
`encode_record` right after `apply`, so a record's encoding may include the state after it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

S = TypeVar("S")  # a key's state
C = TypeVar("C")  # a command
C_contra = TypeVar("C_contra", contravariant=True)
R = TypeVar("R")  # a record: what one accepted command appends
A = TypeVar("A")  # the answer an accepted command gets (kept for retries)


@dataclass(frozen=True, slots=True)
class Accept(Generic[R]):
    """Append `record` (it gets the next key sequence) and answer the caller once it is durable."""

    record: R


@dataclass(frozen=True, slots=True)
class Refuse:
    """Refuse the command with `error`. `remember`: log the refusal too, so a retry with the same
    command id gets the same refusal (within the dedupe window, on any replica, after a failover)
    instead of being decided again against a state that has moved on."""

    error: Exception
    remember: bool = True


@dataclass(frozen=True, slots=True)
class Reply(Generic[A]):
    """Answer without appending anything (a no-op): sent once what came before is durable."""

    answer: A


Decision = Accept[R] | Refuse | Reply[A]


class KeyedEngine(Protocol[S, C_contra, R, A]):
    """One service's engine, as the keyed log drives it. Keys are partition-local names (lot ids)."""

    def initial_state(self, key: str) -> S:
        """The state of a key with nothing in the log."""
        ...

    def decide(
        self, key: str, state: S, command: C_contra, now_ms: int, key_sequence: int
    ) -> Accept[R] | Refuse | Reply[A]:
        """What `command` does to `state` at `now_ms`; `key_sequence` is the sequence an accepted
        record will have (1 for the key's first). Must not change `state`."""
        ...

    def apply(self, key: str, state: S, record: R) -> S:
        """The state after `record` (may mutate and return `state`)."""
        ...

    def answer(self, key: str, state: S, record: R, key_sequence: int) -> A:
        """The answer to the command that appended `record` (`state` is the state right after it);
        also computed when a key is rebuilt, for retries."""
        ...

    def encode_record(self, key: str, record: R, state: S) -> bytes: ...

    def decode_record(self, key: str, data: bytes) -> R: ...

    def encode_state(self, key: str, state: S) -> bytes: ...

    def decode_state(self, key: str, data: bytes) -> S: ...

    def state_hash(self, state: S) -> str:
        """A digest of the state: equal for equal states, on any machine."""
        ...

    def encode_answer(self, answer: A) -> bytes: ...

    def decode_answer(self, data: bytes) -> A: ...

    def encode_refusal(self, error: Exception) -> bytes: ...

    def decode_refusal(self, data: bytes) -> Exception: ...
