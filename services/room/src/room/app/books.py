"""What every replica keeps in memory to decide, at bid time, who may act on a lot's sale: the
catalog's registration decisions and each sale's staff, built from the catalog's events (followed
from the start of the stream; see room.adapters.consumers) — the room asks the catalog itself when
a book has no (positive) answer, since the events may lag behind (room.adapters.lookups)."""

from __future__ import annotations

from collections.abc import Iterable


class RegistrationBook:
    """(sale, bidder) → approved? from RegistrationDecided; the latest decision wins."""

    def __init__(self) -> None:
        self._decided: dict[tuple[str, str], bool] = {}

    def decided(self, sale_id: str, bidder_id: str, approved: bool) -> None:
        self._decided[(sale_id, bidder_id)] = approved

    def approved(self, sale_id: str, bidder_id: str) -> bool | None:
        """True or False as last decided; None: no decision seen (pending, or not registered)."""
        return self._decided.get((sale_id, bidder_id))


class StaffBook:
    """Each sale's staff as (subject, role) pairs, from SaleStaffChanged (each carries the whole list)."""

    def __init__(self) -> None:
        self._sales: dict[str, frozenset[tuple[str, str]]] = {}

    def replace(self, sale_id: str, staff: Iterable[tuple[str, str]]) -> None:
        self._sales[sale_id] = frozenset(staff)

    def holds(self, sale_id: str, subject: str, role: str) -> bool:
        staff = self._sales.get(sale_id)
        return staff is not None and (subject, role) in staff
