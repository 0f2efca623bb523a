"""The IdGenerator port: UUIDv7 ids (gavel_kit.ids) and secret lot seeds from `secrets`."""

from __future__ import annotations

import secrets

from gavel_kit.ids import new_id


class SecureIds:
    """Time-ordered UUIDv7 ids; seeds in [0, 2**63) from the OS's CSPRNG (a seed is a secret)."""

    def new_id(self) -> str:
        return new_id()

    def new_seed(self) -> int:
        return secrets.randbits(63)
