"""Sending what is due: the dispatcher leases due deliveries, decides each (notify.domain.deliveries),
renders and sends it with retries, and records the outcome — sent, held, folded, dropped, or after
the last try a dead letter. Any number of replicas run it over one database: a lease on the row
(claimed with a conditional UPDATE) makes sure one of them handles a delivery at a time.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from notify.app.links import LinkBuilder
from notify.app.ports import (
    ChannelSender,
    NotifyUnitOfWork,
    Outgoing,
    ReceiptSource,
    Renderer,
    ScheduleSource,
    SendFailed,
    Sent,
)
from notify.domain import digests as digest_rules
from notify.domain.deliveries import (
    Delivery,
    Drop,
    Fold,
    Hold,
    Limits,
    Status,
    backoff,
    decide,
    delivery_id,
)
from notify.domain.kinds import Channel, spec
from notify.domain.preferences import DigestPeriod

UowFactory = Callable[[], NotifyUnitOfWork]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`attempts_per_run` quick tries (exponential backoff with jitter, tenacity) make a run; a failed
    run waits `backoff(run)` before the next; after `max_attempts` tries in all it is a dead letter."""

    attempts_per_run: int = 3
    max_attempts: int = 9
    first_wait_s: float = 0.5
    max_wait_s: float = 5.0
    run_backoff: timedelta = timedelta(seconds=30)
    run_backoff_cap: timedelta = timedelta(minutes=30)


class TokenBucket:
    """The global rate limit of one channel in this process: `rate` per second, bursts of `burst`."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = float(burst)
        self._clock = clock
        self._stamp = clock()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        if self._rate <= 0:
            return
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self._rate)


@dataclass
class Outcomes:
    """Counters the adapters export as metrics."""

    counts: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def add(self, channel: Channel, kind: str, outcome: str) -> None:
        key = (channel.value, kind, outcome)
        self.counts[key] = self.counts.get(key, 0) + 1


class Dispatcher:
    def __init__(
        self,
        uow_factory: UowFactory,
        *,
        senders: Mapping[Channel, ChannelSender],
        renderer: Renderer,
        links: LinkBuilder,
        schedule: ScheduleSource | None,
        clock: Callable[[], datetime],
        owner: str,
        limits: Limits | None = None,
        retry: RetryPolicy | None = None,
        buckets: Mapping[Channel, TokenBucket] | None = None,
        lease: timedelta = timedelta(minutes=2),
        concurrency: int = 8,
        on_outcome: Callable[[Channel, str, str], None] | None = None,
        jitter: Callable[[], float] = random.random,
        log_error: Callable[[str, str], None] = lambda delivery_id, error: None,
    ) -> None:
        self._uow = uow_factory
        self._senders = senders
        self._renderer = renderer
        self._links = links
        self._schedule = schedule
        self._clock = clock
        self._owner = owner
        self._limits = limits or Limits()
        self._retry = retry or RetryPolicy()
        self._buckets = buckets or {}
        self._lease = lease
        self._slots = asyncio.Semaphore(concurrency)
        self._on_outcome = on_outcome or (lambda channel, kind, outcome: None)
        self._jitter = jitter
        self._log_error = log_error

    async def run_once(self, limit: int = 50) -> int:
        """Handle what is due now; return how many deliveries were handled."""
        now = self._clock()
        async with self._uow() as uow:
            claimed = await uow.claim_due(now, self._owner, now + self._lease, limit)
            await uow.commit()
        # One user's deliveries on one channel go one after another, so each sees what the one before
        # it sent (the per-user limits); different users' go in parallel.
        queues: dict[tuple[str, Channel], list[str]] = {}
        for identifier, user_id, channel in claimed:
            queues.setdefault((user_id, channel), []).append(identifier)

        async def in_turn(identifiers: list[str]) -> None:
            for identifier in identifiers:
                await self._guarded(identifier)

        await asyncio.gather(*(in_turn(identifiers) for identifiers in queues.values()))
        return len(claimed)

    async def next_due(self) -> datetime | None:
        async with self._uow() as uow:
            return await uow.next_due()

    async def _guarded(self, delivery_id: str) -> None:
        async with self._slots:
            try:
                await self.handle(delivery_id)
            except Exception as exc:  # e.g. the catalog's schedule unreachable for a digest: try again later
                error = f"{type(exc).__name__}: {exc}"[:1000]

                def postpone(d: Delivery) -> None:
                    d.last_error, d.due_at = error, self._clock() + self._retry.run_backoff

                await self._finish(delivery_id, postpone)
                self._log_error(delivery_id, error)

    async def handle(self, delivery_id: str) -> None:
        now = self._clock()
        async with self._uow() as uow:
            delivery = await uow.get_delivery(delivery_id)
            if delivery is None or delivery.status not in (Status.PENDING, Status.HELD):
                return
            preferences = await uow.get_preferences(delivery.user_id)
            lot = await uow.get_lot(delivery.lot_id) if delivery.lot_id else None
            window_s = self._limits.window.total_seconds()
            recent = await uow.recent(delivery.user_id, delivery.channel, delivery.kind, now, window_s)
            decision = decide(delivery, preferences, lot.facts if lot else None, recent, now, self._limits)
            if isinstance(decision, Drop | Hold | Fold):
                await self._settle(uow, delivery, decision, now)
                await uow.commit()
                return
            if spec(delivery.kind).summary_of and not await self._gather_summary(uow, delivery):
                delivery.status, delivery.reason = Status.DROPPED, "stale"
                await uow.save_delivery(delivery)
                await uow.commit()
                self._on_outcome(delivery.channel, delivery.kind, "dropped")
                return
            assert preferences is not None
            await uow.commit()
        params = dict(delivery.params)
        if delivery.kind == "schedule_digest":
            rows = await self._digest_rows(params, preferences.time_zone)
            if not rows:
                await self._finish(delivery_id, lambda d: _drop(d, "nothing_scheduled"))
                return
            params["rows"] = rows
        if delivery.lot_id:
            params.setdefault("lot_url", self._links.lot_url(delivery.lot_id))
        kind = spec(delivery.kind)
        # "Unsubscribe from these": a summary's kind is the one it folds; codes and tests are not a
        # kind anyone subscribes to, so their link turns the channel off.
        link_kind = kind.summary_of or (delivery.kind if kind.user_choice else "*")
        links = self._links.links(delivery.user_id, link_kind, delivery.channel)
        rendered = self._renderer.render(
            delivery.kind, preferences.locale, preferences.time_zone, params, links, delivery.channel
        )
        address = decision.address
        outgoing = Outgoing(delivery.id, address, rendered, links, {"Content-Language": preferences.locale})
        bucket = self._buckets.get(delivery.channel)
        if bucket is not None:
            await bucket.take()
        sent, tries, error, permanent = await self._send(delivery.channel, outgoing)
        summary = rendered.subject if delivery.channel is Channel.EMAIL else rendered.sms
        if "code" in params:  # what is kept of a verification must not verify anything
            summary = summary.replace(str(params["code"]), "••••••")
        segments = sent.segments if sent is not None and sent.segments else rendered.segments

        def record(d: Delivery) -> None:
            d.attempts += tries
            d.address = address
            d.summary = summary[:500]
            if sent is not None:
                d.status, d.sent_at, d.provider_id, d.segments, d.reason = (
                    Status.SENT,
                    self._clock(),
                    sent.provider_id,
                    segments,
                    "",
                )
                d.last_error = ""
                d.params.pop("code", None)  # a verification code is not kept once sent
            elif permanent or d.attempts >= self._retry.max_attempts:
                d.status, d.last_error = Status.DEAD, error
                d.params.pop("code", None)
            else:
                runs = -(-d.attempts // self._retry.attempts_per_run)
                wait = backoff(runs, self._retry.run_backoff, self._retry.run_backoff_cap, self._jitter())
                d.status, d.due_at, d.last_error, d.reason = Status.PENDING, self._clock() + wait, error, "retrying"

        final = await self._finish(delivery_id, record)
        outcome = "sent" if sent is not None else ("dead" if final and final.status is Status.DEAD else "retry")
        self._on_outcome(delivery.channel, delivery.kind, outcome)

    async def _send(self, channel: Channel, outgoing: Outgoing) -> tuple[Sent | None, int, str, bool]:
        sender = self._senders.get(channel)
        if sender is None:
            return None, 1, f"no {channel.value} channel configured", True
        tries = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._retry.attempts_per_run),
            wait=wait_exponential_jitter(multiplier=self._retry.first_wait_s, max=self._retry.max_wait_s),
            retry=retry_if_exception(lambda exc: isinstance(exc, SendFailed) and not exc.permanent),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    tries += 1
                    return await sender.send(outgoing), tries, "", False
        except SendFailed as exc:
            return None, tries, str(exc)[:1000], exc.permanent
        return None, tries, "not sent", False  # unreachable: the last failure re-raises

    async def _finish(self, delivery_id: str, change: Callable[[Delivery], None]) -> Delivery | None:
        async with self._uow() as uow:
            delivery = await uow.get_delivery(delivery_id)
            if delivery is None:
                return None
            change(delivery)
            await uow.save_delivery(delivery)
            if delivery.status is Status.DEAD:
                await uow.add_dead_letter(delivery, delivery.last_error, self._clock())
            await uow.commit()
            return delivery

    async def _settle(
        self, uow: NotifyUnitOfWork, delivery: Delivery, decision: Drop | Hold | Fold, now: datetime
    ) -> None:
        if isinstance(decision, Drop):
            _drop(delivery, decision.reason)
            self._on_outcome(delivery.channel, delivery.kind, "dropped")
        elif isinstance(decision, Hold):
            delivery.status, delivery.due_at, delivery.reason = Status.HELD, decision.until, decision.reason
            self._on_outcome(delivery.channel, delivery.kind, "held")
        else:
            kind = f"{delivery.kind}_summary"
            summary_key = f"summary:{decision.summary_key}"
            summary_id = delivery_id(summary_key)
            await uow.add_delivery(
                Delivery(
                    id=summary_id,
                    dedupe_key=summary_key,
                    user_id=delivery.user_id,
                    kind=kind,
                    channel=delivery.channel,
                    params={},
                    created_at=now,
                    due_at=decision.summary_due,
                    occurred_at=now,
                )
            )
            delivery.status, delivery.folded_into, delivery.reason = Status.FOLDED, summary_id, "rate_limited"
            self._on_outcome(delivery.channel, delivery.kind, "folded")
        await uow.save_delivery(delivery)

    async def _gather_summary(self, uow: NotifyUnitOfWork, summary: Delivery) -> bool:
        """Fill a summary's params from the notices folded into it (latest per lot, closed lots left
        out); False when nothing is left worth sending."""
        latest: dict[str, dict[str, Any]] = {}
        folded = await uow.folded_into(summary.id)
        for notice in sorted(folded, key=lambda d: d.occurred_at):
            lot = await uow.get_lot(notice.lot_id) if notice.lot_id else None
            if lot is not None and lot.closed_at is not None:
                latest.pop(notice.lot_id, None)
                continue
            latest[notice.lot_id] = dict(notice.params)
        if not latest:
            return False
        summary.params = {"count": len(folded), "lots": list(latest.values())}
        await uow.save_delivery(summary)
        return True

    async def _digest_rows(self, params: dict[str, Any], time_zone: str) -> list[dict[str, Any]]:
        if self._schedule is None:
            return []
        first, last = (datetime.fromisoformat(params[k]).date() for k in ("first", "last"))
        rows = []
        for view, day in digest_rules.views_to_read(first, last):
            rows.extend(await self._schedule.rows(view, day))
        chosen = digest_rules.select(rows, ZoneInfo(time_zone), first, last)
        return [
            {
                "lot_id": row.lot_id,
                "sale_title": row.sale_title,
                "product_title": row.product_title,
                "format": row.format,
                "starts_at": row.estimated_start.isoformat(),
                "start_price": None
                if row.start_price_minor is None
                else {"amount_minor": row.start_price_minor, "currency": row.currency},
                "price": None
                if row.price_minor is None
                else {"amount_minor": row.price_minor, "currency": row.currency},
                "quantity": row.quantity,
                "lot_url": self._links.lot_url(row.lot_id),
            }
            for row in chosen
        ]

    async def poll_receipts(self, receipts: ReceiptSource, since: datetime, limit: int = 100) -> int:
        """Ask the SMS provider how sent messages fared (delivery receipts); return how many changed."""
        async with self._uow() as uow:
            waiting = await uow.awaiting_receipts(since, limit)
        changed = 0
        for delivery in waiting:
            state = await receipts.receipt(delivery.provider_id)
            if state not in ("delivered", "failed"):
                continue

            def mark(d: Delivery, state: str = state) -> None:
                d.status = Status.DELIVERED if state == "delivered" else Status.FAILED
                d.reason = "" if state == "delivered" else "undeliverable"

            await self._finish(delivery.id, mark)
            changed += 1
        return changed


def _drop(delivery: Delivery, reason: str) -> None:
    delivery.status, delivery.reason = Status.DROPPED, reason
    delivery.params.pop("code", None)


async def enqueue_digests(uow_factory: UowFactory, now: datetime) -> int:
    """Record the digests due now for every user who wants them (at most one per user, period and
    date: the dedupe key), walking the users in pages. Returns how many were recorded."""
    recorded = 0
    after = ""
    while True:
        async with uow_factory() as uow:
            users = await uow.users_with_digests(after, 200)
            for preferences in users:
                local = now.astimezone(preferences.zone)
                for period in preferences.digests:
                    day = digest_rules.due(period, local, preferences.digest_hour)
                    if day is None or not preferences.wants("schedule_digest", Channel.EMAIL):
                        continue
                    first, last = digest_rules.covered(period, day)
                    key = f"digest:{preferences.user_id}:{period.value}:{day.isoformat()}:email"
                    recorded += int(
                        await uow.add_delivery(
                            Delivery(
                                id=delivery_id(key),
                                dedupe_key=key,
                                user_id=preferences.user_id,
                                kind="schedule_digest",
                                channel=Channel.EMAIL,
                                params={
                                    "period": DigestPeriod(period).value,
                                    "first": first.isoformat(),
                                    "last": last.isoformat(),
                                },
                                created_at=now,
                                due_at=now,
                                occurred_at=now,
                            )
                        )
                    )
            await uow.commit()
        if len(users) < 200:
            return recorded
        after = users[-1].user_id
