"""The IdGenerator port: time-ordered UUIDv7 ids (gavel_kit.ids)."""

from __future__ import annotations

from gavel_kit.ids import new_id


class SecureIds:
    def new_id(self) -> str:
        return new_id()
