"""Running a use case in its own transaction, for callers that need no idempotency record (reads)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from catalog.app.ports import CatalogUnitOfWork

T = TypeVar("T")


async def run(uow: CatalogUnitOfWork, action: Callable[[CatalogUnitOfWork], Awaitable[T]]) -> T:
    """Enter `uow`, run `action` in it and commit; leaving the block unsuccessfully rolls back."""
    async with uow:
        result = await action(uow)
        await uow.commit()
    return result
