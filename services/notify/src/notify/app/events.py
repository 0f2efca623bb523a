"""What notify does with the facts the event table (notify.adapters.events) reads from NATS.

Every event becomes zero or more facts; `apply` stores them in one transaction — what notify knows
of lots, sales and reservations, and a delivery per notice and channel, keyed by the event's id so
a redelivered event (another replica, a restart, a re-publish) inserts nothing new. The consumer
acknowledges the messages only after that commit: a notice is recorded before it is acked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gavel_core.increments import IncrementTable
from notify.app.ports import LotInfo, NotifyUnitOfWork, ReservationInfo, SaleInfo
from notify.domain.deliveries import Delivery, Status, delivery_id
from notify.domain.preferences import DEFAULT_OFFSETS


@dataclass(frozen=True, slots=True)
class Notice:
    """Tell `user_id` something of `kind`; `key` (default: event, user, kind) makes it happen once."""

    event_id: str
    occurred_at: datetime
    user_id: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    lot_id: str = ""
    key: str = ""


@dataclass(frozen=True, slots=True)
class LotSeen:
    lot: LotInfo


@dataclass(frozen=True, slots=True)
class SaleSeen:
    sale: SaleInfo


@dataclass(frozen=True, slots=True)
class LotStarted:
    event_id: str
    occurred_at: datetime
    lot_id: str
    group_id: str
    sale_id: str


@dataclass(frozen=True, slots=True)
class LotClosed:
    lot_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class SaleCancelled:
    event_id: str
    occurred_at: datetime
    sale_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReservationMade:
    event_id: str
    occurred_at: datetime
    reservation: ReservationInfo


@dataclass(frozen=True, slots=True)
class ReservationDropped:
    reservation_id: str


@dataclass(frozen=True, slots=True)
class GroupRetimed:
    group_id: str
    lot_ids: tuple[str, ...]
    estimated_start: datetime


@dataclass(frozen=True, slots=True)
class BidSeen:
    lot_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class Outbid:
    event_id: str
    occurred_at: datetime
    lot_id: str
    user_id: str
    price_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class ClosingSoon:
    event_id: str
    occurred_at: datetime
    lot_id: str
    deadline: datetime
    kind: str = "closing_soon"


Fact = (
    Notice
    | LotSeen
    | SaleSeen
    | LotStarted
    | LotClosed
    | SaleCancelled
    | ReservationMade
    | ReservationDropped
    | GroupRetimed
    | BidSeen
    | Outbid
    | ClosingSoon
)


def money(amount_minor: int, currency: str) -> dict[str, Any]:
    return {"amount_minor": amount_minor, "currency": currency}


async def lot_params(uow: NotifyUnitOfWork, lot_id: str) -> dict[str, Any]:
    """What every lot notice shows of its lot: its number in the sale and the sale's title."""
    lot = await uow.get_lot(lot_id)
    params: dict[str, Any] = {"lot_id": lot_id, "lot_number": 0, "sale_title": ""}
    if lot is not None:
        params["lot_number"] = lot.position + 1 if lot.position >= 0 else 0
        sale = await uow.get_sale(lot.sale_id) if lot.sale_id else None
        if sale is not None:
            params["sale_title"] = sale.title
    return params


class Recorder:
    """Applies facts within one unit of work; counts the deliveries it recorded."""

    def __init__(self, uow: NotifyUnitOfWork, now: datetime) -> None:
        self.uow = uow
        self.now = now
        self.recorded = 0

    async def notice(self, notice: Notice, *, due_at: datetime | None = None, group_id: str = "") -> None:
        preferences = await self.uow.get_preferences(notice.user_id)
        if preferences is None:  # notify knows no way to reach them (no preferences set)
            return
        base_key = notice.key or f"{notice.event_id}:{notice.user_id}:{notice.kind}"
        channels = preferences.channels_for(notice.kind)
        if not channels:
            return
        params = dict(notice.params)
        if notice.lot_id and "lot_number" not in params:
            params = await lot_params(self.uow, notice.lot_id) | params
        if params.get("sale_id") and not params.get("sale_title"):
            sale = await self.uow.get_sale(str(params["sale_id"]))
            params["sale_title"] = sale.title if sale else ""
        for channel in channels:
            key = f"{base_key}:{channel.value}"
            inserted = await self.uow.add_delivery(
                Delivery(
                    id=delivery_id(key),
                    dedupe_key=key,
                    user_id=notice.user_id,
                    kind=notice.kind,
                    channel=channel,
                    params=dict(params),
                    created_at=self.now,
                    due_at=due_at or self.now,
                    occurred_at=notice.occurred_at,
                    lot_id=notice.lot_id,
                    group_id=group_id,
                )
            )
            self.recorded += int(inserted)

    async def apply(self, fact: Fact) -> None:
        uow = self.uow
        match fact:
            case Notice():
                await self.notice(fact)
            case LotSeen(lot=lot):
                known = await uow.get_lot(lot.lot_id)
                await uow.save_lot(_merge_lot(known, lot))
            case SaleSeen(sale=sale):
                await uow.save_sale(sale)
            case LotStarted():
                await self._lot_started(fact)
            case LotClosed(lot_id=lot_id, at=at):
                known = await uow.get_lot(lot_id)
                if known is None or known.closed_at is None:
                    await uow.save_lot(_merge_lot(known, LotInfo(lot_id, closed_at=at)))
            case SaleCancelled():
                await self._sale_cancelled(fact)
            case ReservationMade():
                await self._reservation_made(fact)
            case ReservationDropped(reservation_id=reservation_id):
                known_reservation = await uow.get_reservation(reservation_id)
                if known_reservation is not None:
                    await uow.save_reservation(dataclasses.replace(known_reservation, active=False))
                await self._drop_open(f"remind:{reservation_id}:", "cancelled")
            case GroupRetimed():
                await self._retimed(fact)
            case BidSeen(lot_id=lot_id, user_id=user_id):
                await uow.add_bidder(lot_id, user_id)
            case Outbid():
                await self._outbid(fact)
            case ClosingSoon():
                params = await lot_params(uow, fact.lot_id) | {"deadline": fact.deadline.isoformat()}
                for bidder in await uow.bidders(fact.lot_id):
                    await self.notice(
                        Notice(fact.event_id, fact.occurred_at, bidder, fact.kind, params, lot_id=fact.lot_id)
                    )

    async def _lot_started(self, fact: LotStarted) -> None:
        uow = self.uow
        known = await uow.get_lot(fact.lot_id)
        lot = _merge_lot(known, LotInfo(fact.lot_id, fact.group_id, fact.sale_id, started_at=fact.occurred_at))
        await uow.save_lot(lot)
        if lot.position < 0:
            return
        following = sorted(
            (other for other in await uow.lots_of_sale(fact.sale_id) if other.position > lot.position),
            key=lambda other: (other.position, other.room_index),
        )
        if not following:
            return
        next_group = following[0].group_id
        params = await lot_params(uow, next_group)
        for reservation in await uow.active_reservations(group_id=next_group):
            await self.notice(
                Notice(
                    fact.event_id,
                    fact.occurred_at,
                    reservation.user_id,
                    "lot_next",
                    params,
                    lot_id=next_group,
                    key=f"next:{next_group}:{reservation.user_id}",
                )
            )

    async def _sale_cancelled(self, fact: SaleCancelled) -> None:
        uow = self.uow
        sale = await uow.get_sale(fact.sale_id)
        params = {"sale_title": sale.title if sale else "", "reason": fact.reason}
        told: set[str] = set()
        for reservation in await uow.active_reservations(sale_id=fact.sale_id):
            await uow.save_reservation(dataclasses.replace(reservation, active=False))
            await self._drop_open(f"remind:{reservation.reservation_id}:", "sale_cancelled")
            if reservation.user_id not in told:
                told.add(reservation.user_id)
                await self.notice(
                    Notice(
                        fact.event_id,
                        fact.occurred_at,
                        reservation.user_id,
                        "sale_cancelled",
                        params,
                        key=f"sale_cancelled:{fact.sale_id}:{reservation.user_id}",
                    )
                )

    async def _reservation_made(self, fact: ReservationMade) -> None:
        uow = self.uow
        reservation = fact.reservation
        await uow.save_reservation(reservation)
        params = await lot_params(uow, reservation.group_id)
        if reservation.estimated_start is not None:
            params["starts_at"] = reservation.estimated_start.isoformat()
        await self.notice(
            Notice(
                fact.event_id,
                fact.occurred_at,
                reservation.user_id,
                "reservation_confirmed",
                params,
                lot_id=reservation.group_id,
            )
        )
        start = reservation.estimated_start
        if start is None or start <= self.now:
            return
        preferences = await uow.get_preferences(reservation.user_id)
        offsets = preferences.reminder_offsets if preferences else DEFAULT_OFFSETS
        for minutes in offsets:
            due = max(start - timedelta(minutes=minutes), self.now)
            await self.notice(
                Notice(
                    fact.event_id,
                    fact.occurred_at,
                    reservation.user_id,
                    "lot_starting_soon",
                    params | {"offset_minutes": minutes},
                    lot_id=reservation.group_id,
                    key=f"remind:{reservation.reservation_id}:{minutes}",
                ),
                due_at=due,
                group_id=reservation.group_id,
            )

    async def _retimed(self, fact: GroupRetimed) -> None:
        uow = self.uow
        for lot_id in fact.lot_ids:
            known = await uow.get_lot(lot_id)
            await uow.save_lot(_merge_lot(known, LotInfo(lot_id, fact.group_id, estimated_start=fact.estimated_start)))
        for delivery in await uow.open_deliveries(kind="lot_starting_soon", group_id=fact.group_id):
            minutes = int(delivery.params.get("offset_minutes", DEFAULT_OFFSETS[0]))
            delivery.params["starts_at"] = fact.estimated_start.isoformat()
            delivery.due_at = max(fact.estimated_start - timedelta(minutes=minutes), self.now)
            await uow.save_delivery(delivery)

    async def _outbid(self, fact: Outbid) -> None:
        lot = await self.uow.get_lot(fact.lot_id)
        params = await lot_params(self.uow, fact.lot_id) | {"price": money(fact.price_minor, fact.currency)}
        if lot is not None and lot.increments:
            table = IncrementTable.of([list(tier) for tier in lot.increments])
            params["minimum"] = money(table.next_amount(fact.price_minor), fact.currency)
        await self.notice(Notice(fact.event_id, fact.occurred_at, fact.user_id, "outbid", params, lot_id=fact.lot_id))

    async def _drop_open(self, key_prefix: str, reason: str) -> None:
        for delivery in await self.uow.open_deliveries(kind="lot_starting_soon", key_prefix=key_prefix):
            delivery.status = Status.DROPPED
            delivery.reason = reason
            await self.uow.save_delivery(delivery)


def _merge_lot(known: LotInfo | None, seen: LotInfo) -> LotInfo:
    """What is known of a lot after `seen`: later facts fill in, never erase (events arrive from
    three streams in no agreed order)."""
    if known is None:
        return seen
    changes: dict[str, Any] = {}
    defaults = LotInfo(seen.lot_id)
    for name in ("group_id", "sale_id", "position", "room_index", "currency", "increments", "estimated_start"):
        value = getattr(seen, name)
        if value != getattr(defaults, name):
            changes[name] = value
    for name in ("started_at", "closed_at"):  # the first report stands
        if getattr(known, name) is None and getattr(seen, name) is not None:
            changes[name] = getattr(seen, name)
    return dataclasses.replace(known, **changes)


async def apply(uow: NotifyUnitOfWork, facts: Iterable[Fact], now: datetime) -> int:
    """Store every fact in one transaction; return how many deliveries were recorded."""
    recorder = Recorder(uow, now)
    for fact in facts:
        await recorder.apply(fact)
    await uow.commit()
    return recorder.recorded
