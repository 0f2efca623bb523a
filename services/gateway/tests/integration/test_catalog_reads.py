"""Catalog reads through the gateway: JSON from the catalog's gRPC answers, the caller's token forwarded,
gRPC errors mapped to HTTP, and one trace from the HTTP request to the catalog."""

import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry.trace import SpanKind

from gavel.catalog.v1 import resources_pb2
from gavel_core.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)

pytestmark = pytest.mark.integration


async def test_a_sale_is_served_as_json_with_proto_field_names(gateway_with_catalog):
    response = await gateway_with_catalog.client.get("/api/v1/sales/sale-1")
    assert response.status_code == 200
    sale = response.json()["sale"]
    assert sale["id"] == "sale-1"
    assert sale["title"] == "Spring sale"
    assert sale["state"] == "SALE_STATE_SCHEDULED"
    assert sale["starts_at"] == "2025-06-15T15:06:40Z"
    assert sale["cancel_reason"] == ""  # fields at their default value are present


async def test_lots_of_a_sale_keep_money_as_integer_minor_units_and_carry_the_next_page(gateway_with_catalog, catalog):
    response = await gateway_with_catalog.client.get("/api/v1/sales/sale-1/lots?page_size=1&state=scheduled,live")
    assert response.status_code == 200
    body = response.json()
    assert body["lots"][0]["english"]["opening_bid"] == {"amount_minor": "17750", "currency": "EUR"}
    assert body["page"] == {"next_page_token": "p2", "total_size": "3"}
    _, request, _ = catalog.calls[-1]
    assert request.sale_id == "sale-1"
    assert request.page.page_size == 1
    assert list(request.states) == [resources_pb2.LOT_STATE_SCHEDULED, resources_pb2.LOT_STATE_LIVE]


async def test_sale_search_maps_query_parameters_onto_the_list_sales_filters(gateway_with_catalog, catalog):
    response = await gateway_with_catalog.client.get(
        "/api/v1/sales",
        params=[
            ("page_size", "20"),
            ("page_token", "abc"),
            ("seller_id", "seller-7"),
            ("state", "SALE_STATE_SCHEDULED"),
            ("state", "live"),
            ("kind", "live_session"),
            ("format", "dutch"),
            ("starts_from", "2025-06-01T00:00:00Z"),
            ("starts_before", "2025-07-01T00:00:00+02:00"),
            ("query", "vase"),
        ],
    )
    assert response.status_code == 200
    assert response.json() == {"sales": [], "page": {"next_page_token": "", "total_size": "0"}}
    method, request, _ = catalog.calls[-1]
    assert method == "ListSales"
    assert (request.page.page_size, request.page.page_token) == (20, "abc")
    assert request.seller_id == "seller-7"
    assert list(request.states) == [resources_pb2.SALE_STATE_SCHEDULED, resources_pb2.SALE_STATE_LIVE]
    assert request.kind == resources_pb2.SALE_KIND_LIVE_SESSION
    assert request.format == resources_pb2.FORMAT_DUTCH
    assert request.starts_from.ToJsonString() == "2025-06-01T00:00:00Z"
    assert request.starts_before.ToJsonString() == "2025-06-30T22:00:00Z"
    assert request.query == "vase"


async def test_bad_search_parameters_are_400_without_calling_the_catalog(gateway_with_catalog, catalog):
    response = await gateway_with_catalog.client.get("/api/v1/sales?kind=auction&starts_before=yesterday&page_size=-1")
    assert response.status_code == 400
    fields = {v["field"] for v in response.json()["error"]["field_violations"]}
    assert fields == {"page_size"}  # parameter types are checked first
    response = await gateway_with_catalog.client.get("/api/v1/sales?kind=auction&starts_before=yesterday")
    assert response.status_code == 400
    fields = {v["field"] for v in response.json()["error"]["field_violations"]}
    assert fields == {"kind", "starts_before"}
    assert catalog.calls == []


async def test_the_schedule_takes_a_date_and_a_view(gateway_with_catalog, catalog):
    response = await gateway_with_catalog.client.get("/api/v1/schedule?date=2025-06-04&view=week&sale_id=s1")
    assert response.status_code == 200
    assert response.json()["first_date"] == "2025-06-04"
    _, request, _ = catalog.calls[-1]
    assert (request.view, request.date, request.sale_id) == (resources_pb2.SCHEDULE_VIEW_WEEK, "2025-06-04", "s1")


async def test_the_schedule_refuses_a_malformed_date_or_view(gateway_with_catalog):
    response = await gateway_with_catalog.client.get("/api/v1/schedule?date=04/06/2025&view=year")
    assert response.status_code == 400
    assert {v["field"] for v in response.json()["error"]["field_violations"]} == {"date", "view"}


async def test_a_lot_and_a_product_are_served_by_id(gateway_with_catalog):
    lot = await gateway_with_catalog.client.get("/api/v1/lots/lot-9")
    product = await gateway_with_catalog.client.get("/api/v1/products/p-3")
    assert lot.json()["lot"]["id"] == "lot-9"
    assert product.json()["product"]["quantity"] == 2


async def test_public_reads_reach_the_catalog_without_a_token(gateway_with_catalog, catalog):
    await gateway_with_catalog.client.get("/api/v1/sales/sale-1")
    _, _, metadata = catalog.calls[-1]
    assert "authorization" not in metadata


async def test_the_callers_bearer_token_is_forwarded_to_the_catalog(gateway_with_catalog, catalog):
    await gateway_with_catalog.add_user("seller@gavel.local", "demo-password", roles="seller")
    token = await gateway_with_catalog.token_for("seller@gavel.local", "demo-password")
    response = await gateway_with_catalog.client.get(
        "/api/v1/sales/sale-1", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    _, _, metadata = catalog.calls[-1]
    assert metadata["authorization"] == f"Bearer {token}"


async def test_a_token_the_catalog_rejects_is_401(gateway_with_catalog):
    response = await gateway_with_catalog.client.get(
        "/api/v1/sales/sale-1", headers={"Authorization": "Bearer forged.token.value"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


def _abort_with(code, message, *details):
    packed = []
    for detail in details:
        item = any_pb2.Any()
        item.Pack(detail)
        packed.append(item)
    status = rpc_status.to_status(status_pb2.Status(code=code, message=message, details=packed))

    async def abort(context):
        await context.abort(status.code, status.details, status.trailing_metadata)

    return abort


@pytest.mark.parametrize(
    ("failure", "http_status", "expected"),
    [
        pytest.param(
            InvalidArgument(
                [FieldViolation("page.page_size", "must be at most 500"), FieldViolation("query", "too long")]
            ),
            400,
            {
                "code": "INVALID_ARGUMENT",
                "message": "page.page_size: must be at most 500; query: too long",
                "field_violations": [
                    {"field": "page.page_size", "description": "must be at most 500"},
                    {"field": "query", "description": "too long"},
                ],
            },
            id="invalid-argument",
        ),
        pytest.param(
            NotFound("sale", "sale-1"), 404, {"code": "NOT_FOUND", "message": "sale 'sale-1' not found"}, id="not-found"
        ),
        pytest.param(
            FailedPrecondition(
                "INVALID_STATE", "the sale is cancelled", {"resource": "sale", "current_state": "cancelled"}
            ),
            409,
            {
                "code": "FAILED_PRECONDITION",
                "message": "the sale is cancelled",
                "reason": "INVALID_STATE",
                "metadata": {"resource": "sale", "current_state": "cancelled"},
            },
            id="failed-precondition",
        ),
        pytest.param(
            _abort_with(
                code_pb2.FAILED_PRECONDITION,
                "bid too low",
                error_details_pb2.ErrorInfo(
                    reason="BID_TOO_LOW", domain="gavel.dev", metadata={"min_amount_minor": "17750"}
                ),
            ),
            409,
            {
                "code": "FAILED_PRECONDITION",
                "message": "bid too low",
                "reason": "BID_TOO_LOW",
                "metadata": {"min_amount_minor": "17750"},
            },
            id="failed-precondition-raw-abort",
        ),
        pytest.param(
            PermissionDenied("only the owner sees a draft", reason="NOT_OWNER"),
            403,
            {"code": "PERMISSION_DENIED", "message": "only the owner sees a draft", "reason": "NOT_OWNER"},
            id="permission-denied",
        ),
        pytest.param(
            _abort_with(code_pb2.UNAUTHENTICATED, "the token has expired; log in again"),
            401,
            {"code": "UNAUTHENTICATED", "message": "the token has expired; log in again"},
            id="unauthenticated",
        ),
        pytest.param(
            ResourceExhausted("slow down"),
            429,
            {"code": "RESOURCE_EXHAUSTED", "message": "slow down"},
            id="rate-limited",
        ),
        pytest.param(
            Unavailable("catalog is starting"),
            503,
            {"code": "UNAVAILABLE", "message": "a Gavel service the request needs is unavailable; retry shortly"},
            id="unavailable",
        ),
        pytest.param(RuntimeError("boom"), 502, {"code": "INTERNAL"}, id="internal-becomes-bad-gateway"),
    ],
)
async def test_catalog_errors_become_http_errors_with_their_details(
    gateway_with_catalog, catalog, failure, http_status, expected
):
    catalog.fail_with = failure
    response = await gateway_with_catalog.client.get("/api/v1/sales/sale-1")
    assert response.status_code == http_status
    error = response.json()["error"]
    defaults = {"reason": "", "metadata": {}, "field_violations": []}
    if expected["code"] == "INTERNAL":
        assert error["code"] == "INTERNAL"
        assert error["message"].startswith("internal error (reference ")
    else:
        assert error == {**defaults, **expected}


async def test_an_rpc_the_catalog_does_not_implement_is_502(gateway_with_catalog):
    response = await gateway_with_catalog.client.get("/api/v1/products")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "UNIMPLEMENTED"


async def test_an_unreachable_catalog_is_503_with_a_retry_hint(gateway):
    response = await gateway.client.get("/api/v1/sales/sale-1")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "UNAVAILABLE"
    assert "127.0.0.1" not in response.text  # transport details stay in the log


@pytest.fixture
def spans(span_exporter):
    """Every finished span of this process (the gavel pytest plugin's recording provider)."""
    return span_exporter


async def test_an_http_request_and_the_catalog_call_it_makes_form_one_trace(spans, gateway_with_catalog):
    spans.clear()
    response = await gateway_with_catalog.client.get("/api/v1/sales/sale-1")
    assert response.status_code == 200
    finished = spans.get_finished_spans()
    http_server = next(s for s in finished if s.kind is SpanKind.SERVER and s.name.startswith("GET /api/v1/sales"))
    grpc_client = next(s for s in finished if s.kind is SpanKind.CLIENT and "CatalogService/GetSale" in s.name)
    grpc_server = next(s for s in finished if s.kind is SpanKind.SERVER and "CatalogService/GetSale" in s.name)
    trace_id = http_server.context.trace_id
    assert grpc_client.context.trace_id == trace_id
    assert grpc_server.context.trace_id == trace_id
    assert grpc_server.parent.span_id == grpc_client.context.span_id
    ancestors = {s.context.span_id: s.parent.span_id if s.parent else None for s in finished}
    node = grpc_client.parent.span_id
    while node is not None and node != http_server.context.span_id:
        node = ancestors.get(node)
    assert node == http_server.context.span_id, "the client span descends from the HTTP server span"
