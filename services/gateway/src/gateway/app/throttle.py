"""Abuse controls for what strangers can try at the gateway: rate limits per key (an IP address, an
account) and a growing lock-out after repeated wrong passwords. Pure: time is an argument.

- `RateLimiter`: at most `limit` events per `window_s` per key (a sliding log, bounded per key);
  `hit(key, now)` answers 0 if allowed, else the seconds until the next one would be.
- `FailureGuard`: after `free_failures` wrong passwords for one account, every further attempt —
  the right password included — is refused until `base_s * 2**(extra failures)` (capped) has
  passed since the last failure; a success resets the count. Guessing one account's password is
  then a few attempts an hour, whatever the number of IP addresses used.

Both keep at most `max_keys` keys (least recently used go first), so a flood of distinct keys
costs bounded memory: forgetting a key only ever lets one more attempt through.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass

from gavel_core.errors import ResourceExhausted


class RateLimited(ResourceExhausted):
    """Refused (429 / RESOURCE_EXHAUSTED): retry after `retry_after_s` seconds."""

    reason = "RATE_LIMITED"

    def __init__(self, retry_after_s: float, what: str) -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        self.what = what
        super().__init__(f"too many {what}; retry in {self.retry_after_s} s")


class RateLimiter:
    def __init__(self, limit: int, window_s: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self._max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def hit(self, key: str, now: float) -> float:
        """Count one event for `key`; 0 when allowed, else the seconds to wait (nothing counted)."""
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
            if len(self._hits) > self._max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.window_s - now
        hits.append(now)
        return 0.0


@dataclass(slots=True)
class _Failures:
    count: int
    last_at: float


class FailureGuard:
    def __init__(self, free_failures: int = 5, base_s: float = 1.0, max_s: float = 900.0, max_keys: int = 100_000):
        self.free_failures = free_failures
        self.base_s = base_s
        self.max_s = max_s
        self._max_keys = max_keys
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def wait(self, key: str, now: float) -> float:
        """Seconds before `key` may try again (0: now)."""
        found = self._failures.get(key)
        if found is None or found.count < self.free_failures:
            return 0.0
        lockout = min(self.max_s, self.base_s * float(2 ** (found.count - self.free_failures)))
        return max(0.0, found.last_at + lockout - now)

    def failed(self, key: str, now: float) -> None:
        found = self._failures.get(key)
        if found is None:
            self._failures[key] = _Failures(1, now)
            if len(self._failures) > self._max_keys:
                self._failures.popitem(last=False)
        else:
            found.count += 1
            found.last_at = now
            self._failures.move_to_end(key)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)


@dataclass(frozen=True, slots=True)
class Limits:
    """The gateway's abuse limits (docs/security.md "Limits")."""

    login_per_ip: int = 30  # per minute
    login_per_account: int = 10  # per minute, on top of the failure lock-out
    register_per_ip: int = 5  # per minute
    refresh_per_ip: int = 60  # per minute
    window_s: float = 60.0
    free_failures: int = 5
    lockout_base_s: float = 1.0
    lockout_max_s: float = 900.0


class Throttle:
    """Every limiter of the account endpoints, by what they protect."""

    def __init__(self, limits: Limits | None = None) -> None:
        limits = limits or Limits()
        self.limits = limits
        self.login_ip = RateLimiter(limits.login_per_ip, limits.window_s)
        self.login_account = RateLimiter(limits.login_per_account, limits.window_s)
        self.register_ip = RateLimiter(limits.register_per_ip, limits.window_s)
        self.refresh_ip = RateLimiter(limits.refresh_per_ip, limits.window_s)
        self.failures = FailureGuard(limits.free_failures, limits.lockout_base_s, limits.lockout_max_s)

    @staticmethod
    def check(limiter: RateLimiter, key: str, now: float, what: str) -> None:
        wait = limiter.hit(key, now)
        if wait > 0:
            raise RateLimited(wait, what)
