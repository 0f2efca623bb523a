"""Who the benchmark acts as: tokens signed with the gateway's key (no gateway logins; see access.py).

One seller owns every product (bidders are never the seller: the room refuses OWN_LOT), one
crier starts the lots (assigned to every sale by a site admin), and bidders come from a pool of
distinct subjects: each lot gets BIDDERS_PER_LOT different ones, and as the pool wraps around a
bidder bids on several lots, as real bidders do.
"""

from __future__ import annotations

import time
from pathlib import Path

from gavel_core.auth import Role
from gavel_kit.auth import MAX_TOKEN_LIFETIME_S, TokenSigner
from gavel_kit.keys import GATEWAY, SigningKey

BIDDERS_PER_LOT = 3
BIDDER_POOL = 1_000
RENEW_BEFORE_S = 60  # tokens live at most 5 minutes: a new one is minted this long before expiry

Metadata = tuple[tuple[str, str], ...]


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


class Identities:
    def __init__(self, keys_dir: str, run_id: str) -> None:
        key = SigningKey(Path(keys_dir) / f"{GATEWAY}.pem", GATEWAY)
        self._signer = TokenSigner(key, "gavel")
        self._issued: dict[tuple[str, Role], tuple[Metadata, float]] = {}
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

    def _issue(self, subject: str, role: Role) -> Metadata:
        now = time.monotonic()
        found = self._issued.get((subject, role))
        if found is not None and now < found[1]:
            return found[0]
        metadata = bearer(self._signer.issue(subject, [role], display_name=subject))
        self._issued[(subject, role)] = (metadata, now + MAX_TOKEN_LIFETIME_S - RENEW_BEFORE_S)
        return metadata


def bidders_of_lot(run_id: str, lot_index: int) -> tuple[str, ...]:
    """The lot's bidders: BIDDERS_PER_LOT consecutive subjects of the pool, distinct within the lot."""
    first = lot_index * BIDDERS_PER_LOT
    return tuple(f"bench-{run_id}-bidder-{(first + n) % BIDDER_POOL}" for n in range(BIDDERS_PER_LOT))
