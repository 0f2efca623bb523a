"""A delivery is one notice to one user on one channel; `decide` is what the dispatcher does with
one that is due: drop it, hold it, fold it into a summary, or send it (and to which address)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from notify.domain.kinds import Channel, Staleness, spec
from notify.domain.preferences import Preferences


class Status(StrEnum):
    PENDING = "pending"
    HELD = "held"
    SENT = "sent"
    DELIVERED = "delivered"
    DROPPED = "dropped"
    FOLDED = "folded"
    DEAD = "dead"
    FAILED = "failed"  # the SMS provider's receipt said undeliverable


OPEN = (Status.PENDING, Status.HELD)  # what the dispatcher picks up when due


@dataclass(slots=True)
class Delivery:
    id: str
    dedupe_key: str
    user_id: str
    kind: str
    channel: Channel
    params: dict[str, Any]
    created_at: datetime
    due_at: datetime
    occurred_at: datetime
    lot_id: str = ""
    group_id: str = ""
    status: Status = Status.PENDING
    reason: str = ""
    summary: str = ""
    address: str = ""
    attempts: int = 0
    last_error: str = ""
    sent_at: datetime | None = None
    provider_id: str = ""
    segments: int = 0
    folded_into: str = ""


@dataclass(frozen=True, slots=True)
class LotFacts:
    """What notify knows of a lot's life (from the catalog's and the room's events)."""

    lot_id: str
    started_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-user rate limits (per channel): `fold_after` notices of a foldable kind within `window`
    go out one by one, later ones are folded into one summary sent when the window ends; at most
    `per_hour` messages an hour go to one user on one channel, later ones wait."""

    window: timedelta = timedelta(minutes=1)
    fold_after: int = 3
    per_hour: dict[Channel, int] = field(default_factory=lambda: {Channel.EMAIL: 60, Channel.SMS: 20})


@dataclass(frozen=True, slots=True)
class Recent:
    """What this user got on this channel lately (the rate limiter's inputs)."""

    same_kind_in_window: int
    in_hour: int
    oldest_in_hour: datetime | None


@dataclass(frozen=True, slots=True)
class Drop:
    reason: str


@dataclass(frozen=True, slots=True)
class Hold:
    until: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Fold:
    summary_key: str
    summary_due: datetime


@dataclass(frozen=True, slots=True)
class Send:
    address: str


Decision = Drop | Hold | Fold | Send


def is_stale(delivery: Delivery, lot: LotFacts | None, now: datetime) -> bool:
    kind = spec(delivery.kind)
    if delivery.created_at - delivery.occurred_at > kind.max_age:  # recorded long after: a replayed history
        return True
    if kind.staleness is Staleness.LOT_CLOSED:
        return lot is not None and lot.closed_at is not None
    if kind.staleness is Staleness.LOT_STARTED:
        return lot is not None and (lot.started_at is not None or lot.closed_at is not None)
    if kind.staleness is Staleness.DEADLINE:
        deadline = delivery.params.get("deadline")
        return isinstance(deadline, str) and datetime.fromisoformat(deadline) <= now
    return False


def window_start(now: datetime, window: timedelta) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=now.tzinfo)
    return now - (now - epoch) % window


def decide(
    delivery: Delivery,
    preferences: Preferences | None,
    lot: LotFacts | None,
    recent: Recent,
    now: datetime,
    limits: Limits,
) -> Decision:
    kind = spec(delivery.kind)
    if preferences is None:
        return Drop("no_preferences")
    if kind.summary_of == "" and is_stale(delivery, lot, now):
        return Drop("stale")
    if not preferences.wants(delivery.kind, delivery.channel):
        return Drop("opted_out")
    contact = preferences.contact(delivery.channel)
    if kind.needs_verified:
        if not contact.address:
            return Drop("no_address")
        if not contact.verified:
            return Drop("unverified")
    address = delivery.address if not kind.needs_verified and delivery.address else contact.address
    if not address:
        return Drop("no_address")
    if not kind.quiet_exempt:
        quiet_end = preferences.quiet_until(delivery.channel, now)
        if quiet_end is not None:
            return Hold(quiet_end, "quiet_hours")
    if kind.foldable and recent.same_kind_in_window >= limits.fold_after:
        start = window_start(now, limits.window)
        key = f"{delivery.user_id}:{delivery.channel.value}:{delivery.kind}:{start.isoformat()}"
        return Fold(key, start + limits.window)
    if not kind.quiet_exempt and recent.in_hour >= limits.per_hour[delivery.channel]:
        until = (recent.oldest_in_hour or now) + timedelta(hours=1)
        return Hold(max(until, now + timedelta(seconds=1)), "rate_limited")
    return Send(address)


def backoff(attempt_runs: int, base: timedelta, cap: timedelta, jitter: float) -> timedelta:
    """How long a delivery whose `attempt_runs`-th run of tries failed waits before the next run:
    exponential, capped, stretched by `jitter` in [0, 1) (drawn by the caller)."""
    delay: timedelta = min(base * (2 ** max(attempt_runs - 1, 0)), cap)
    return delay + delay * jitter


def delivery_id(dedupe_key: str) -> str:
    """Deliveries are named by what they deliver, so every replica and every retry of an event
    computes the same id (and SMS providers can deduplicate by it)."""
    return "d_" + hashlib.sha256(dedupe_key.encode()).hexdigest()[:30]
