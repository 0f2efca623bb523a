"""The catalog's schedule table, read for digests with notify's service identity.

The token comes from a provider called per request (`lambda: rt.service_token`), so a renewed
service credential is used as soon as it exists (docs PLAN: service credentials).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date

import grpc

from gavel.catalog.v1 import catalog_service_pb2 as cat
from gavel.catalog.v1 import catalog_service_pb2_grpc as cat_grpc
from gavel.catalog.v1 import resources_pb2 as res
from gavel_kit.grpc.client import bearer, channel
from gavel_kit.lotwire import FORMATS
from notify.domain.digests import DigestRow, View

VIEWS = {View.DAY: res.SCHEDULE_VIEW_DAY, View.WEEK: res.SCHEDULE_VIEW_WEEK, View.MONTH: res.SCHEDULE_VIEW_MONTH}
TIMEOUT_S = 10.0


class ScheduleUnavailable(Exception):
    pass


class CatalogSchedule:
    """notify.app.ports.ScheduleSource over CatalogService.GetSchedule."""

    def __init__(self, address: str, token: Callable[[], str]) -> None:
        self._address = address
        self._token = token
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> cat_grpc.CatalogServiceAsyncStub:
        if self._channel is None:
            self._channel = channel(self._address)
        return cat_grpc.CatalogServiceStub(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    async def rows(self, view: View, day: date) -> list[DigestRow]:
        try:
            reply = await self._stub().GetSchedule(
                cat.GetScheduleRequest(view=VIEWS[view], date=day.isoformat()),
                metadata=bearer(self._token()),
                timeout=TIMEOUT_S,
            )
        except grpc.aio.AioRpcError as exc:
            raise ScheduleUnavailable(f"catalog GetSchedule failed: {exc.code().name}") from exc
        return list(rows_of(reply))


def rows_of(reply: cat.GetScheduleResponse) -> list[DigestRow]:
    found = []
    for schedule_day in reply.days:
        for part in schedule_day.parts:
            for slot in part.slots:
                for row in slot.rows:
                    if not row.HasField("estimated_start"):
                        continue
                    start = row.start_price if row.HasField("start_price") else None
                    price = row.price if row.HasField("price") else None
                    quoted = start if start is not None else price
                    currency = quoted.currency if quoted is not None else ""
                    try:
                        kind = FORMATS.parse(row.format, "format").value
                    except Exception:
                        kind = ""
                    found.append(
                        DigestRow(
                            lot_id=row.lot_id,
                            sale_id=row.sale_id,
                            sale_title=row.sale_title,
                            product_title=row.product_title,
                            format=kind,
                            estimated_start=row.estimated_start.ToDatetime(tzinfo=UTC),
                            start_price_minor=int(start.amount_minor) if start is not None else None,
                            price_minor=int(price.amount_minor) if price is not None else None,
                            currency=currency,
                            quantity=int(row.quantity),
                        )
                    )
    return found
