"""Accounts whose tokens no longer count: the gateway's AccountRevoked events (an account disabled,
demoted or given a new password), so a change takes effect at once for bidding instead of when
the account's access token expires (≤ 5 minutes)."""

from __future__ import annotations


class RevocationBook:
    """user id → the latest revocation time (epoch seconds); a token issued at or before it is refused."""

    def __init__(self) -> None:
        self._revoked_at: dict[str, float] = {}

    def revoke(self, user_id: str, at_s: float) -> None:
        if at_s > self._revoked_at.get(user_id, float("-inf")):
            self._revoked_at[user_id] = at_s

    def revoked(self, subject: str, issued_at_s: int) -> bool:
        at = self._revoked_at.get(subject)
        return at is not None and issued_at_s <= at

    def __len__(self) -> int:
        return len(self._revoked_at)
