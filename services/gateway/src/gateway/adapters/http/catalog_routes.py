"""Catalog reads: sales, lots, the schedule and products, as JSON over the catalog's gRPC API.

Each answer is the catalog's gRPC response message in the protobuf JSON mapping with the proto field
names (`starts_at`, `page.next_page_token`): enums are their names (`SALE_STATE_SCHEDULED`), int64
values such as `amount_minor` are strings, timestamps are RFC 3339, fields at their default value are
present. The caller's bearer token, when sent, is forwarded, so drafts are visible to their owner.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from google.protobuf import json_format, timestamp_pb2
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message

from gateway.adapters.http.deps import ServicesDep, TokenDep
from gateway.adapters.http.errors import error_responses
from gavel.catalog.v1 import catalog_service_pb2 as pb
from gavel.catalog.v1 import resources_pb2
from gavel.common.v1 import paging_pb2
from gavel_core.errors import Violations

router = APIRouter(
    prefix="/api/v1", tags=["catalog"], responses=error_responses(400, 401, 403, 404, 409, 429, 502, 503, 504)
)


def to_json(message: Message) -> JSONResponse:
    body = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return JSONResponse(body)


def _names(enum: EnumDescriptor, prefix: str) -> list[str]:
    return [value.name.removeprefix(prefix).lower() for value in enum.values if value.number != 0]


def _enum(enum: EnumDescriptor, prefix: str, raw: str, field: str, violations: Violations) -> int:
    """`scheduled`, `SCHEDULED` and `SALE_STATE_SCHEDULED` all name SALE_STATE_SCHEDULED; empty → unspecified."""
    text = raw.strip().upper()
    if not text:
        return 0
    name = text if text.startswith(prefix) else prefix + text
    value = enum.values_by_name.get(name)
    if value is None or value.number == 0:
        violations.add(field, f"unknown value {raw!r}; use one of: {', '.join(_names(enum, prefix))}")
        return 0
    return int(value.number)


def _enums(enum: EnumDescriptor, prefix: str, raws: list[str] | None, field: str, violations: Violations) -> list[int]:
    """Repeated (`?state=a&state=b`) and comma-separated (`?state=a,b`) values alike."""
    parts = [part for raw in raws or () for part in raw.split(",") if part.strip()]
    values = [_enum(enum, prefix, part, field, violations) for part in parts]
    return [value for value in values if value]


def _timestamp(raw: str, field: str, violations: Violations) -> timestamp_pb2.Timestamp | None:
    if not raw:
        return None
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        violations.add(field, "must be an RFC 3339 time such as 2025-06-01T09:00:00Z")
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _page(page_size: int, page_token: str) -> paging_pb2.PageRequest:
    return paging_pb2.PageRequest(page_size=page_size, page_token=page_token)


SCHEDULE_WINDOW_DAYS = 10 * 365  # a bounded window: 9999-12-31 (with view=week) must not reach the catalog
_SALE_STATES = ", ".join(_names(resources_pb2.SaleState.DESCRIPTOR, "SALE_STATE_"))
_LOT_STATES = ", ".join(_names(resources_pb2.LotState.DESCRIPTOR, "LOT_STATE_"))
_FORMATS = ", ".join(_names(resources_pb2.Format.DESCRIPTOR, "FORMAT_"))
_KINDS = ", ".join(_names(resources_pb2.SaleKind.DESCRIPTOR, "SALE_KIND_"))

PageSize = Annotated[int, Query(ge=0, le=500, description="At most this many items; 0: the server default (50).")]
PageToken = Annotated[str, Query(max_length=1000, description="The page.next_page_token of the previous page.")]
StartsFrom = Annotated[str, Query(description="RFC 3339; only items starting at or after it (no offset: UTC).")]
StartsBefore = Annotated[str, Query(description="RFC 3339; only items starting before it (no offset: UTC).")]
FormatFilter = Annotated[str, Query(description=f"A lot format: {_FORMATS}.")]


@router.get("/sales", summary="Search sales", description="Filters combine with AND; ordered by start time, then id.")
async def list_sales(
    services: ServicesDep,
    token: TokenDep,
    page_size: PageSize = 0,
    page_token: PageToken = "",
    seller_id: Annotated[str, Query(description="The sale's owner.")] = "",
    state: Annotated[
        list[str] | None, Query(description=f"Any of these states ({_SALE_STATES}); repeat or comma-separate.")
    ] = None,
    kind: Annotated[str, Query(description=f"{_KINDS}.")] = "",
    format: FormatFilter = "",
    starts_from: StartsFrom = "",
    starts_before: StartsBefore = "",
    query: Annotated[str, Query(max_length=200, description="Case-insensitive substring of the title.")] = "",
) -> JSONResponse:
    violations = Violations()
    request = pb.ListSalesRequest(
        page=_page(page_size, page_token),
        seller_id=seller_id,
        states=_enums(resources_pb2.SaleState.DESCRIPTOR, "SALE_STATE_", state, "state", violations),  # type: ignore[arg-type]
        kind=_enum(resources_pb2.SaleKind.DESCRIPTOR, "SALE_KIND_", kind, "kind", violations),  # type: ignore[arg-type]
        format=_enum(resources_pb2.Format.DESCRIPTOR, "FORMAT_", format, "format", violations),  # type: ignore[arg-type]
        starts_from=_timestamp(starts_from, "starts_from", violations),
        starts_before=_timestamp(starts_before, "starts_before", violations),
        query=query,
    )
    violations.raise_if_any()
    return to_json(await services.catalog.list_sales(request, token))


@router.get("/sales/{sale_id}", summary="One sale", description="Drafts are visible only to their owner and admins.")
async def get_sale(sale_id: str, services: ServicesDep, token: TokenDep) -> JSONResponse:
    return to_json(await services.catalog.get_sale(sale_id, token))


@router.get("/sales/{sale_id}/lots", summary="The lots of a sale", description="Ordered by position, then room.")
async def list_sale_lots(
    sale_id: str,
    services: ServicesDep,
    token: TokenDep,
    page_size: PageSize = 0,
    page_token: PageToken = "",
    state: Annotated[
        list[str] | None, Query(description=f"Any of these states ({_LOT_STATES}); repeat or comma-separate.")
    ] = None,
    format: FormatFilter = "",
) -> JSONResponse:
    violations = Violations()
    request = pb.ListLotsRequest(
        page=_page(page_size, page_token),
        sale_id=sale_id,
        states=_enums(resources_pb2.LotState.DESCRIPTOR, "LOT_STATE_", state, "state", violations),  # type: ignore[arg-type]
        format=_enum(resources_pb2.Format.DESCRIPTOR, "FORMAT_", format, "format", violations),  # type: ignore[arg-type]
    )
    violations.raise_if_any()
    return to_json(await services.catalog.list_lots(request, token))


@router.get("/lots/{lot_id}", summary="One lot")
async def get_lot(lot_id: str, services: ServicesDep, token: TokenDep) -> JSONResponse:
    return to_json(await services.catalog.get_lot(lot_id, token))


@router.get(
    "/schedule",
    summary="The schedule table",
    description="Days → morning/afternoon/evening → 10-minute slots → rows (one per lot group). "
    "With a token, each row says what the caller may do (reserve, enter the room).",
)
async def get_schedule(
    services: ServicesDep,
    token: TokenDep,
    date: Annotated[
        str, Query(description="YYYY-MM-DD: the day, or any day of the week or month. Default: today (UTC).")
    ] = "",
    view: Annotated[str, Query(description="day, week (Monday to Sunday) or month.")] = "day",
    sale_id: Annotated[str, Query(description="Only this sale.")] = "",
    seller_id: Annotated[str, Query(description="Only this seller's lots.")] = "",
) -> JSONResponse:
    violations = Violations()
    day = dt.datetime.now(dt.UTC).date()
    if date:
        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            violations.add("date", "must be a date such as 2025-06-01 (YYYY-MM-DD)")
        else:
            today = dt.datetime.now(dt.UTC).date()
            if abs((day - today).days) > SCHEDULE_WINDOW_DAYS:
                violations.add("date", f"must be within {SCHEDULE_WINDOW_DAYS // 365} years of today")
    view_value = _enum(resources_pb2.ScheduleView.DESCRIPTOR, "SCHEDULE_VIEW_", view, "view", violations)
    violations.raise_if_any()
    request = pb.GetScheduleRequest(
        view=view_value,  # type: ignore[arg-type]
        date=day.isoformat(),
        sale_id=sale_id,
        seller_id=seller_id,
    )
    return to_json(await services.catalog.get_schedule(request, token))


@router.get("/products", summary="Search products")
async def list_products(
    services: ServicesDep,
    token: TokenDep,
    page_size: PageSize = 0,
    page_token: PageToken = "",
    seller_id: Annotated[str, Query(description="The product's seller.")] = "",
    query: Annotated[str, Query(max_length=200, description="Case-insensitive substring of the title.")] = "",
) -> JSONResponse:
    request = pb.ListProductsRequest(page=_page(page_size, page_token), seller_id=seller_id, query=query)
    return to_json(await services.catalog.list_products(request, token))


@router.get("/products/{product_id}", summary="One product")
async def get_product(product_id: str, services: ServicesDep, token: TokenDep) -> JSONResponse:
    return to_json(await services.catalog.get_product(product_id, token))
