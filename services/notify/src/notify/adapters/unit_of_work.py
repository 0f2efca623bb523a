"""notify.app.ports.NotifyUnitOfWork over SQLAlchemy: one transaction, explicit row ↔ entity codecs.

Inserts that must happen once (a delivery per dedupe key, a bidder per lot) are INSERT … ON
CONFLICT DO NOTHING on both SQLite and PostgreSQL, so two replicas handling the same redelivered
event cannot both insert. Leases are a conditional UPDATE (`claim_due`): of two replicas claiming
one row, one updates it and the other matches nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Self

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Insert

from gavel_core.errors import FieldViolation, InvalidArgument, Violations
from gavel_kit.db import Database, SqlUnitOfWork
from notify.adapters import orm
from notify.adapters.orm import utc, utc_at
from notify.app.ports import (
    DeadLetterView,
    DeliveryFilter,
    LotInfo,
    Page,
    ReservationInfo,
    SaleInfo,
    Verification,
)
from notify.domain.deliveries import OPEN, Delivery, Recent, Status
from notify.domain.kinds import Channel
from notify.domain.preferences import Contact, DigestPeriod, Preferences, QuietHours, parse_time

MAX_PAGE = 500
DEFAULT_PAGE = 50


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _prefs_row(p: Preferences) -> dict[str, Any]:
    return {
        "user_id": p.user_id,
        "locale": p.locale,
        "time_zone": p.time_zone,
        "email": p.email.address,
        "email_verified_at": utc(p.email.verified_at),
        "phone": p.phone.address,
        "phone_verified_at": utc(p.phone.verified_at),
        "choices": _dump({kind: {c.value: on for c, on in chans.items()} for kind, chans in p.choices.items()}),
        "quiet_hours": _dump(
            {c.value: [h.start.strftime("%H:%M"), h.end.strftime("%H:%M")] for c, h in p.quiet_hours.items()}
        ),
        "reminder_offsets": _dump(list(p.reminder_offsets)),
        "digests": _dump([d.value for d in p.digests]),
        "digest_hour": p.digest_hour,
        "channel_off": _dump(sorted(c.value for c in p.channel_off)),
        "has_digests": bool(p.digests),
        "updated_at": utc(p.updated_at),
    }


def _prefs_of(row: Any) -> Preferences:
    quiet: dict[Channel, QuietHours] = {}
    ignore = Violations()
    for channel, (start, end) in json.loads(row.quiet_hours).items():
        begin, finish = parse_time(start, "", ignore), parse_time(end, "", ignore)
        if begin is not None and finish is not None:
            quiet[Channel(channel)] = QuietHours(begin, finish)
    return Preferences(
        user_id=row.user_id,
        locale=row.locale,
        time_zone=row.time_zone,
        email=Contact(row.email, utc(row.email_verified_at)),
        phone=Contact(row.phone, utc(row.phone_verified_at)),
        choices={
            kind: {Channel(c): bool(on) for c, on in chans.items()} for kind, chans in json.loads(row.choices).items()
        },
        quiet_hours=quiet,
        reminder_offsets=tuple(json.loads(row.reminder_offsets)),
        digests=tuple(DigestPeriod(d) for d in json.loads(row.digests)),
        digest_hour=row.digest_hour,
        channel_off=frozenset(Channel(c) for c in json.loads(row.channel_off)),
        updated_at=utc(row.updated_at),
    )


def _delivery_row(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "dedupe_key": d.dedupe_key,
        "user_id": d.user_id,
        "kind": d.kind,
        "channel": d.channel.value,
        "lot_id": d.lot_id,
        "group_id": d.group_id,
        "params": _dump(d.params),
        "status": d.status.value,
        "reason": d.reason,
        "summary": d.summary[:500],
        "address": d.address,
        "attempts": d.attempts,
        "last_error": d.last_error[:1000],
        "created_at": utc(d.created_at),
        "due_at": utc(d.due_at),
        "occurred_at": utc(d.occurred_at),
        "sent_at": utc(d.sent_at),
        "provider_id": d.provider_id,
        "segments": d.segments,
        "folded_into": d.folded_into,
    }


def _delivery_of(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        dedupe_key=row.dedupe_key,
        user_id=row.user_id,
        kind=row.kind,
        channel=Channel(row.channel),
        params=json.loads(row.params),
        created_at=utc_at(row.created_at),
        due_at=utc_at(row.due_at),
        occurred_at=utc_at(row.occurred_at),
        lot_id=row.lot_id,
        group_id=row.group_id,
        status=Status(row.status),
        reason=row.reason,
        summary=row.summary,
        address=row.address,
        attempts=row.attempts,
        last_error=row.last_error,
        sent_at=utc(row.sent_at),
        provider_id=row.provider_id,
        segments=row.segments,
        folded_into=row.folded_into,
    )


def _lot_of(row: Any) -> LotInfo:
    return LotInfo(
        lot_id=row.lot_id,
        group_id=row.group_id,
        sale_id=row.sale_id,
        position=row.position,
        room_index=row.room_index,
        currency=row.currency,
        increments=tuple((int(a), int(b)) for a, b in json.loads(row.increments)),
        estimated_start=utc(row.estimated_start),
        started_at=utc(row.started_at),
        closed_at=utc(row.closed_at),
    )


def _page_size(size: int) -> int:
    if size < 0:
        raise InvalidArgument([FieldViolation("page.page_size", "must not be negative")])
    return min(size or DEFAULT_PAGE, MAX_PAGE)


def _encode_token(list_name: str, created_at: datetime, key: str) -> str:
    raw = _dump([list_name, created_at.isoformat(), key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(list_name: str, token: str) -> tuple[datetime, str] | None:
    if not token:
        return None
    try:
        name, stamp, key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if name != list_name:
            raise ValueError
        return datetime.fromisoformat(stamp), str(key)
    except (ValueError, TypeError):
        raise InvalidArgument([FieldViolation("page.page_token", "is not a token of this list")]) from None


class SqlNotifyUnitOfWork(SqlUnitOfWork):
    def __init__(self, db: Database) -> None:
        super().__init__(db, orm.kit, None)

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        return self

    def _insert(self, table: Any) -> Insert:
        dialect = self.session.get_bind().dialect.name
        module: Any = postgresql if dialect == "postgresql" else sqlite
        statement: Insert = module.insert(table)
        return statement

    async def _upsert(self, table: Any, keys: Sequence[str], values: dict[str, Any]) -> None:
        statement: Any = self._insert(table).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=list(keys), set_={k: v for k, v in values.items() if k not in keys}
        )
        await self.session.execute(statement)

    async def _insert_once(self, table: Any, keys: Sequence[str], values: dict[str, Any]) -> bool:
        statement: Any = self._insert(table).values(**values)
        result = await self.session.execute(statement.on_conflict_do_nothing(index_elements=list(keys)))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- preferences and verification -----------------------------------------------------------

    async def get_preferences(self, user_id: str) -> Preferences | None:
        t = orm.preferences
        row = (await self.session.execute(select(t).where(t.c.user_id == user_id))).first()
        return None if row is None else _prefs_of(row)

    async def save_preferences(self, preferences: Preferences) -> None:
        await self._upsert(orm.preferences, ["user_id"], _prefs_row(preferences))

    async def users_with_digests(self, after_user_id: str, limit: int) -> list[Preferences]:
        t = orm.preferences
        rows = await self.session.execute(
            select(t).where(t.c.has_digests.is_(True), t.c.user_id > after_user_id).order_by(t.c.user_id).limit(limit)
        )
        return [_prefs_of(row) for row in rows]

    async def get_verification(self, user_id: str, channel: Channel) -> Verification | None:
        t = orm.verifications
        row = (
            await self.session.execute(select(t).where(t.c.user_id == user_id, t.c.channel == channel.value))
        ).first()
        if row is None:
            return None
        return Verification(
            row.user_id, Channel(row.channel), row.address, row.code_digest, utc_at(row.expires_at), row.attempts
        )

    async def save_verification(self, v: Verification) -> None:
        await self._upsert(
            orm.verifications,
            ["user_id", "channel"],
            {
                "user_id": v.user_id,
                "channel": v.channel.value,
                "address": v.address,
                "code_digest": v.code_digest,
                "expires_at": utc(v.expires_at),
                "attempts": v.attempts,
            },
        )

    async def delete_verification(self, user_id: str, channel: Channel) -> None:
        t = orm.verifications
        await self.session.execute(delete(t).where(t.c.user_id == user_id, t.c.channel == channel.value))

    # -- lots, sales, reservations ----------------------------------------------------------------

    async def get_lot(self, lot_id: str) -> LotInfo | None:
        t = orm.lots
        row = (await self.session.execute(select(t).where(t.c.lot_id == lot_id))).first()
        return None if row is None else _lot_of(row)

    async def save_lot(self, lot: LotInfo) -> None:
        await self._upsert(
            orm.lots,
            ["lot_id"],
            {
                "lot_id": lot.lot_id,
                "group_id": lot.group_id,
                "sale_id": lot.sale_id,
                "position": lot.position,
                "room_index": lot.room_index,
                "currency": lot.currency,
                "increments": _dump([list(tier) for tier in lot.increments]),
                "estimated_start": utc(lot.estimated_start),
                "started_at": utc(lot.started_at),
                "closed_at": utc(lot.closed_at),
            },
        )

    async def lots_of_sale(self, sale_id: str) -> list[LotInfo]:
        t = orm.lots
        rows = await self.session.execute(select(t).where(t.c.sale_id == sale_id))
        return [_lot_of(row) for row in rows]

    async def get_sale(self, sale_id: str) -> SaleInfo | None:
        t = orm.sales
        row = (await self.session.execute(select(t).where(t.c.sale_id == sale_id))).first()
        return None if row is None else SaleInfo(row.sale_id, row.title, row.time_zone)

    async def save_sale(self, sale: SaleInfo) -> None:
        await self._upsert(
            orm.sales, ["sale_id"], {"sale_id": sale.sale_id, "title": sale.title, "time_zone": sale.time_zone}
        )

    async def get_reservation(self, reservation_id: str) -> ReservationInfo | None:
        t = orm.reservations
        row = (await self.session.execute(select(t).where(t.c.reservation_id == reservation_id))).first()
        return None if row is None else _reservation_of(row)

    async def save_reservation(self, r: ReservationInfo) -> None:
        await self._upsert(
            orm.reservations,
            ["reservation_id"],
            {
                "reservation_id": r.reservation_id,
                "user_id": r.user_id,
                "group_id": r.group_id,
                "sale_id": r.sale_id,
                "estimated_start": utc(r.estimated_start),
                "active": r.active,
            },
        )

    async def active_reservations(self, *, group_id: str = "", sale_id: str = "") -> list[ReservationInfo]:
        t = orm.reservations
        query = select(t).where(t.c.active.is_(True))
        if group_id:
            query = query.where(t.c.group_id == group_id)
        if sale_id:
            query = query.where(t.c.sale_id == sale_id)
        return [_reservation_of(row) for row in await self.session.execute(query.order_by(t.c.reservation_id))]

    async def add_bidder(self, lot_id: str, user_id: str) -> None:
        await self._insert_once(orm.lot_bidders, ["lot_id", "user_id"], {"lot_id": lot_id, "user_id": user_id})

    async def bidders(self, lot_id: str) -> list[str]:
        t = orm.lot_bidders
        rows = await self.session.execute(select(t.c.user_id).where(t.c.lot_id == lot_id).order_by(t.c.user_id))
        return [row.user_id for row in rows]

    # -- deliveries ---------------------------------------------------------------------------------

    async def add_delivery(self, delivery: Delivery) -> bool:
        values = _delivery_row(delivery) | {"lease_owner": "", "lease_until": None}
        return await self._insert_once(orm.deliveries, ["dedupe_key"], values)

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        t = orm.deliveries
        row = (await self.session.execute(select(t).where(t.c.id == delivery_id))).first()
        return None if row is None else _delivery_of(row)

    async def save_delivery(self, delivery: Delivery) -> None:
        t = orm.deliveries
        values = _delivery_row(delivery)
        values.pop("id")
        values.pop("dedupe_key")
        await self.session.execute(
            update(t).where(t.c.id == delivery.id).values(**values, lease_owner="", lease_until=None)
        )

    async def claim_due(
        self, now: datetime, owner: str, lease_until: datetime, limit: int
    ) -> list[tuple[str, str, Channel]]:
        t = orm.deliveries
        free = or_(t.c.lease_until.is_(None), t.c.lease_until < now)
        due = and_(t.c.status.in_([s.value for s in OPEN]), t.c.due_at <= now, free)
        candidates = await self.session.execute(
            select(t.c.id, t.c.user_id, t.c.channel).where(due).order_by(t.c.due_at, t.c.created_at).limit(limit)
        )
        claimed: list[tuple[str, str, Channel]] = []
        for identifier, user_id, channel in candidates.all():
            result = await self.session.execute(
                update(t).where(t.c.id == identifier, due).values(lease_owner=owner, lease_until=lease_until)
            )
            if result.rowcount:  # type: ignore[attr-defined]
                claimed.append((identifier, user_id, Channel(channel)))
        return claimed

    async def release(self, delivery_id: str, owner: str) -> None:
        t = orm.deliveries
        await self.session.execute(
            update(t).where(t.c.id == delivery_id, t.c.lease_owner == owner).values(lease_owner="", lease_until=None)
        )

    async def next_due(self) -> datetime | None:
        t = orm.deliveries
        value = (
            await self.session.execute(select(func.min(t.c.due_at)).where(t.c.status.in_([s.value for s in OPEN])))
        ).scalar()
        return utc(value)

    async def awaiting_receipts(self, since: datetime, limit: int) -> list[Delivery]:
        t = orm.deliveries
        rows = await self.session.execute(
            select(t)
            .where(
                t.c.status == Status.SENT.value,
                t.c.channel == Channel.SMS.value,
                t.c.provider_id != "",
                t.c.sent_at >= since,
            )
            .order_by(t.c.sent_at)
            .limit(limit)
        )
        return [_delivery_of(row) for row in rows]

    async def open_deliveries(self, *, kind: str, group_id: str = "", key_prefix: str = "") -> list[Delivery]:
        t = orm.deliveries
        query = select(t).where(t.c.kind == kind, t.c.status.in_([s.value for s in OPEN]))
        if group_id:
            query = query.where(t.c.group_id == group_id)
        if key_prefix:
            query = query.where(t.c.dedupe_key.startswith(key_prefix, autoescape=True))
        return [_delivery_of(row) for row in await self.session.execute(query)]

    async def folded_into(self, summary_id: str) -> list[Delivery]:
        t = orm.deliveries
        rows = await self.session.execute(select(t).where(t.c.folded_into == summary_id))
        return [_delivery_of(row) for row in rows]

    async def recent(self, user_id: str, channel: Channel, kind: str, now: datetime, window_s: float) -> Recent:
        t = orm.deliveries
        sent = and_(t.c.user_id == user_id, t.c.channel == channel.value, t.c.sent_at.is_not(None))
        hour_ago = now - timedelta(hours=1)
        in_hour, oldest = (
            await self.session.execute(select(func.count(), func.min(t.c.sent_at)).where(sent, t.c.sent_at > hour_ago))
        ).one()
        same = (
            await self.session.execute(
                select(func.count()).where(sent, t.c.kind == kind, t.c.sent_at > now - timedelta(seconds=window_s))
            )
        ).scalar_one()
        return Recent(same_kind_in_window=int(same), in_hour=int(in_hour), oldest_in_hour=utc(oldest))

    async def list_deliveries(self, filter: DeliveryFilter, page_size: int, page_token: str) -> Page:
        t = orm.deliveries
        size = _page_size(page_size)
        where = []
        if filter.user_id:
            where.append(t.c.user_id == filter.user_id)
        if filter.statuses:
            where.append(t.c.status.in_([s.value for s in filter.statuses]))
        total = (await self.session.execute(select(func.count()).select_from(t).where(*where))).scalar_one()
        after = _decode_token("deliveries", page_token)
        query = select(t).where(*where)
        if after is not None:
            stamp, key = after
            query = query.where(or_(t.c.created_at < stamp, and_(t.c.created_at == stamp, t.c.id < key)))
        rows = (await self.session.execute(query.order_by(t.c.created_at.desc(), t.c.id.desc()).limit(size + 1))).all()
        items = [_delivery_of(row) for row in rows[:size]]
        token = _encode_token("deliveries", items[-1].created_at, items[-1].id) if len(rows) > size else ""
        return Page(items, token, int(total))

    async def add_dead_letter(self, delivery: Delivery, error: str, now: datetime) -> None:
        await self._upsert(
            orm.dead_letters,
            ["delivery_id"],
            {
                "delivery_id": delivery.id,
                "user_id": delivery.user_id,
                "kind": delivery.kind,
                "channel": delivery.channel.value,
                "error": error[:1000],
                "attempts": delivery.attempts,
                "dead_at": utc(now),
                "retried_at": None,
            },
        )

    async def list_dead_letters(self, page_size: int, page_token: str) -> Page:
        t, d = orm.dead_letters, orm.deliveries
        size = _page_size(page_size)
        open_letters = t.c.retried_at.is_(None)
        total = (await self.session.execute(select(func.count()).select_from(t).where(open_letters))).scalar_one()
        query = select(t.c.dead_at, t.c.error, d).join(d, d.c.id == t.c.delivery_id).where(open_letters)
        after = _decode_token("dead_letters", page_token)
        if after is not None:
            stamp, key = after
            query = query.where(or_(t.c.dead_at < stamp, and_(t.c.dead_at == stamp, t.c.delivery_id < key)))
        rows = (
            await self.session.execute(query.order_by(t.c.dead_at.desc(), t.c.delivery_id.desc()).limit(size + 1))
        ).all()
        items = [DeadLetterView(_delivery_of(row), utc_at(row.dead_at), row.error) for row in rows[:size]]
        token = _encode_token("dead_letters", items[-1].dead_at, items[-1].delivery.id) if len(rows) > size else ""
        return Page(items, token, int(total))

    async def resolve_dead_letter(self, delivery_id: str, now: datetime) -> None:
        t = orm.dead_letters
        await self.session.execute(update(t).where(t.c.delivery_id == delivery_id).values(retried_at=now))


def _reservation_of(row: Any) -> ReservationInfo:
    return ReservationInfo(
        row.reservation_id, row.user_id, row.group_id, row.sale_id, utc(row.estimated_start), bool(row.active)
    )
