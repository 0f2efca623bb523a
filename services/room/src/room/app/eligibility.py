"""Who may bid and how much: bans and bid limits decided by the payment service.

Every replica keeps the whole book in memory, built by reading the payment events from the start
when it starts and then following them (the engines look nothing up: the book answers in a few
dictionary lookups on the bid path). Scopes: a sale id, or "" for every sale. A bidder is banned if
a global ban or a ban for the lot's sale stands; the bid limit is the sale's if one is set, else
the global one, and only for lots in the limit's currency. Events apply in stream order, so the
latest one for a (bidder, scope) wins.
"""

from __future__ import annotations

from dataclasses import dataclass

GLOBAL = ""


@dataclass(frozen=True, slots=True)
class BidderBanned:
    bidder_id: str
    sale_id: str = GLOBAL


@dataclass(frozen=True, slots=True)
class BidderUnbanned:
    bidder_id: str
    sale_id: str = GLOBAL


@dataclass(frozen=True, slots=True)
class BidLimitSet:
    """`limit_minor` None removes the limit of this scope."""

    bidder_id: str
    sale_id: str = GLOBAL
    limit_minor: int | None = None
    currency: str = ""


EligibilityEvent = BidderBanned | BidderUnbanned | BidLimitSet


class EligibilityBook:
    def __init__(self) -> None:
        self._bans: dict[str, set[str]] = {}
        self._limits: dict[tuple[str, str], tuple[int, str]] = {}

    def apply(self, event: EligibilityEvent) -> None:
        if isinstance(event, BidderBanned):
            self._bans.setdefault(event.bidder_id, set()).add(event.sale_id)
        elif isinstance(event, BidderUnbanned):
            scopes = self._bans.get(event.bidder_id)
            if scopes is not None:
                scopes.discard(event.sale_id)
                if not scopes:
                    del self._bans[event.bidder_id]
        elif event.limit_minor is None:
            self._limits.pop((event.bidder_id, event.sale_id), None)
        else:
            self._limits[(event.bidder_id, event.sale_id)] = (event.limit_minor, event.currency)

    def is_banned(self, bidder_id: str, sale_id: str) -> bool:
        scopes = self._bans.get(bidder_id)
        return scopes is not None and (GLOBAL in scopes or sale_id in scopes)

    def bid_limit(self, bidder_id: str, sale_id: str, currency: str) -> int | None:
        if not self._limits:
            return None
        limit = self._limits.get((bidder_id, sale_id)) or self._limits.get((bidder_id, GLOBAL))
        if limit is None or limit[1] != currency:
            return None
        return limit[0]
