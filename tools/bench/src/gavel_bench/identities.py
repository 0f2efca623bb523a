"""Who the benchmark acts as: tokens minted with the cluster's JWT secret (no gateway logins).

One seller owns every product (bidders are never the seller: the room refuses OWN_LOT), one
crier starts the lots (assigned to every sale by a site admin), and bidders come from a pool of
distinct subjects: each lot gets BIDDERS_PER_LOT different ones, and as the pool wraps around a
bidder bids on several lots, as real bidders do.
"""

from __future__ import annotations

from functools import lru_cache

from gavel_core.auth import Role
from gavel_kit.auth import TokenCodec

BIDDERS_PER_LOT = 3
BIDDER_POOL = 1_000
TOKEN_TTL_S = 12 * 3600  # outlives the longest run, so no token expires mid-window

Metadata = tuple[tuple[str, str], ...]


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


class Identities:
    def __init__(self, jwt_secret: str, run_id: str) -> None:
        self._codec = TokenCodec(jwt_secret, ttl_s=TOKEN_TTL_S)
        self.run_id = run_id
        self.seller_id = f"bench-{run_id}-seller"
        self.crier_id = f"bench-{run_id}-crier"

    def seller(self) -> Metadata:
        return self._issue(self.seller_id, Role.SELLER)

    def crier(self) -> Metadata:
        return self._issue(self.crier_id, Role.CRIER)

    def site_admin(self) -> Metadata:
        """Assigns the crier to the run's sales (staff act only on the sales they are assigned to)."""
        return self._issue(f"bench-{self.run_id}-site-admin", Role.SITE_ADMIN)

    def bidder(self, bidder_id: str) -> Metadata:
        return self._issue(bidder_id, Role.BIDDER)

    @lru_cache(maxsize=BIDDER_POOL + 16)  # noqa: B019 — one codec per run; the cache dies with it
    def _issue(self, subject: str, role: Role) -> Metadata:
        return bearer(self._codec.issue(subject, [role], display_name=subject))


def bidders_of_lot(run_id: str, lot_index: int) -> tuple[str, ...]:
    """The lot's bidders: BIDDERS_PER_LOT consecutive subjects of the pool, distinct within the lot."""
    first = lot_index * BIDDERS_PER_LOT
    return tuple(f"bench-{run_id}-bidder-{(first + n) % BIDDER_POOL}" for n in range(BIDDERS_PER_LOT))
