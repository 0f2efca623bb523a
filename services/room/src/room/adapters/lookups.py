"""The eligibility and staff questions the room answers at bid time, from each replica's books
(followed catalog events) and, when a book has no positive answer, from the catalog itself (the
events may lag behind a decision just taken). A "no" from the catalog is remembered for
NEGATIVE_TTL_MS so a refused caller cannot make every command cost a catalog call; the catalog
unreachable means "no" (fail closed)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gavel_core.errors import GavelError
from room.adapters.catalog_client import CatalogClient
from room.adapters.codec import is_live_format, lot_from_message
from room.app.books import RegistrationBook, StaffBook
from room.app.model import PublishedLot
from room.app.ports import Clock

NEGATIVE_TTL_MS = 2_000
MAX_REMEMBERED = 100_000


class Negatives:
    """Keys answered "no" within the last NEGATIVE_TTL_MS (bounded: cleared at MAX_REMEMBERED)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._at: dict[tuple[str, ...], int] = {}

    def fresh(self, key: tuple[str, ...]) -> bool:
        at = self._at.get(key)
        return at is not None and self._clock() - at < NEGATIVE_TTL_MS

    def remember(self, key: tuple[str, ...]) -> None:
        if len(self._at) >= MAX_REMEMBERED:
            self._at.clear()
        self._at[key] = self._clock()


async def _ask(negatives: Negatives, key: tuple[str, ...], ask: Callable[[], Awaitable[bool | None]] | None) -> bool:
    if ask is None or negatives.fresh(key):
        return False
    if await ask():
        return True
    negatives.remember(key)
    return False


class Registrations:
    def __init__(self, book: RegistrationBook, catalog: CatalogClient | None, clock: Clock) -> None:
        self._book = book
        self._catalog = catalog
        self._negatives = Negatives(clock)

    async def approved(self, sale_id: str, bidder_id: str) -> bool:
        if self._book.approved(sale_id, bidder_id):
            return True
        catalog = self._catalog
        ask = (lambda: catalog.registration_approved(sale_id, bidder_id)) if catalog is not None else None
        return await _ask(self._negatives, (sale_id, bidder_id), ask)


class Staff:
    def __init__(self, book: StaffBook, catalog: CatalogClient | None, clock: Clock) -> None:
        self._book = book
        self._catalog = catalog
        self._negatives = Negatives(clock)

    async def holds(self, sale_id: str, subject: str, role: str) -> bool:
        if self._book.holds(sale_id, subject, role):
            return True
        catalog = self._catalog
        ask = (lambda: catalog.holds_staff_role(sale_id, subject, role)) if catalog is not None else None
        return await _ask(self._negatives, (sale_id, subject, role), ask)


class StartedLots:
    """TermsSource: the catalog's answer that a lot is live, with its published terms (GetLot's
    `published`), for a lot whose LotStarting has not reached the room yet. A lot the catalog does
    not have live is remembered as such for NEGATIVE_TTL_MS: asking about unknown ids is cheap."""

    def __init__(self, catalog: CatalogClient | None, clock: Clock) -> None:
        self._catalog = catalog
        self._negatives = Negatives(clock)

    async def started(self, lot_id: str) -> PublishedLot | None:
        if self._catalog is None or self._negatives.fresh((lot_id,)):
            return None
        lot = await self._catalog.started_lot(lot_id)
        if lot is None or not is_live_format(lot.format):
            self._negatives.remember((lot_id,))
            return None
        try:
            info, terms = lot_from_message(lot)
        except GavelError:
            self._negatives.remember((lot_id,))
            return None
        return PublishedLot(info, terms, lot.SerializeToString())
