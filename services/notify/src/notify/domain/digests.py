"""Schedule digests: which days a digest covers, when it is due, which schedule views to read,
and which lots it lists — all in the *user's* time zone (the catalog places rows in the sale's)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from notify.domain.preferences import DigestPeriod


class View(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class DigestRow:
    lot_id: str
    sale_id: str
    sale_title: str
    product_title: str
    format: str
    estimated_start: datetime
    start_price_minor: int | None
    price_minor: int | None
    currency: str
    quantity: int


def covered(period: DigestPeriod, day: date) -> tuple[date, date]:
    """The first and last local dates a digest of `period` sent on `day` lists."""
    if period is DigestPeriod.DAILY:
        return day, day
    if period is DigestPeriod.WEEKLY:
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=6)
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def anchor(period: DigestPeriod, day: date) -> date:
    """The day of the period a digest is sent on (every day, Mondays, the 1st)."""
    return covered(period, day)[0]


def due(period: DigestPeriod, local_now: datetime, hour: int) -> date | None:
    """The date a digest of `period` is due for at `local_now`, or None: it goes on its anchor day
    from `hour` local time until that day ends (a service down all morning still sends it that day,
    never the next)."""
    today = local_now.date()
    if anchor(period, today) != today or local_now.hour < hour:
        return None
    return today


def views_to_read(first: date, last: date) -> list[tuple[View, date]]:
    """Catalog schedule views covering every sale-local date a lot of the user's [first, last] may
    fall on: zones differ by up to 26 hours, so one date either side."""
    start, end = first - timedelta(days=1), last + timedelta(days=1)
    if (end - start).days <= 2:
        return [(View.DAY, start + timedelta(days=n)) for n in range((end - start).days + 1)]
    views: list[tuple[View, date]] = []
    if (end - start).days <= 8:
        monday = start - timedelta(days=start.weekday())
        while monday <= end:
            views.append((View.WEEK, monday))
            monday += timedelta(days=7)
        return views
    month = start.replace(day=1)
    while month <= end:
        views.append((View.MONTH, month))
        month = (month + timedelta(days=32)).replace(day=1)
    return views


def select(rows: Iterable[DigestRow], zone: ZoneInfo, first: date, last: date) -> list[DigestRow]:
    """The rows starting on a local date in [first, last] of `zone`, each lot once, by start."""
    begin = datetime.combine(first, time(), zone)
    end = datetime.combine(last + timedelta(days=1), time(), zone)
    chosen: dict[str, DigestRow] = {}
    for row in rows:
        if begin <= row.estimated_start < end:
            chosen.setdefault(row.lot_id, row)
    return sorted(chosen.values(), key=lambda r: (r.estimated_start, r.sale_id, r.lot_id))
