"""Liveness, readiness, metrics and the OpenAPI document."""

import pytest

pytestmark = pytest.mark.integration


async def test_healthz_is_200_even_when_no_dependency_is_reachable(gateway):
    response = await gateway.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_503_naming_the_catalog_when_the_catalog_is_unreachable(gateway):
    response = await gateway.client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["catalog"] != "ok"
    assert "UNAVAILABLE" in body["checks"]["catalog"]


async def test_readyz_is_200_when_the_database_answers_and_the_catalog_is_serving(gateway_with_catalog):
    response = await gateway_with_catalog.client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "catalog": "ok"}}


async def test_readyz_is_503_while_the_catalog_reports_not_serving(gateway_with_catalog, catalog):
    await catalog.health.set_serving(False)
    response = await gateway_with_catalog.client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["catalog"] == "NOT_SERVING"


async def test_readyz_is_503_naming_the_database_when_it_does_not_answer(gateway, tmp_path):
    (tmp_path / "gateway.sqlite").unlink()
    (tmp_path / "gateway.sqlite").mkdir()  # a directory where the database file was: SQLite cannot open it
    response = await gateway.client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "OperationalError"


async def test_metrics_serves_request_counts_and_latencies_by_route_and_status(gateway):
    await gateway.client.get("/healthz")
    await gateway.client.get("/api/v1/sales/does-not-matter/nothing-here")
    response = await gateway.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'gavel_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'gavel_http_requests_total{method="GET",route="<unmatched>",status="404"}' in text
    assert 'gavel_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/healthz",status="200"}' in text


async def test_the_openapi_document_lists_the_routes_with_summaries_and_their_error_statuses(gateway):
    response = await gateway.client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/healthz",
        "/readyz",
        "/api/v1/auth/login",
        "/api/v1/auth/register",
        "/api/v1/me",
        "/api/v1/sales",
        "/api/v1/sales/{sale_id}",
        "/api/v1/sales/{sale_id}/lots",
        "/api/v1/lots/{lot_id}",
        "/api/v1/schedule",
        "/api/v1/products/{product_id}",
    ):
        operation = paths[path]["get" if "auth" not in path else "post"]
        assert operation["summary"], path
        assert "422" not in operation["responses"], "validation errors are answered (and documented) as 400"
    docs = await gateway.client.get("/docs")
    assert docs.status_code == 200
