"""What the gateway refuses or adds before a route runs, and the account abuse controls, over HTTP:
refresh rotation and reuse, throttling with Retry-After, body and depth caps, security headers,
CORS only for configured origins."""

import json

import pytest

from gateway.main import build_app, migrate, token_verifier
from gateway.main import gavel_settings as settings_module

pytestmark = pytest.mark.integration


async def login(gateway, email="ann@example.com", password="demo-password"):
    return await gateway.client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def test_a_refresh_token_rotates_and_a_reused_one_revokes_the_whole_login(gateway):
    await gateway.add_user("ann@example.com", "demo-password", roles="bidder")
    first = (await login(gateway)).json()
    rotated = await gateway.client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert token_verifier(gateway.settings).verify(second["access_token"]).subject == first["user"]["id"]
    reused = await gateway.client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert reused.json()["error"]["reason"] == "REFRESH_TOKEN_REUSED"
    after = await gateway.client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert after.status_code == 401  # the family is revoked: the newest token is dead too


async def test_a_refresh_reads_the_account_again_so_a_demotion_or_a_disable_takes_effect(gateway):
    user = await gateway.add_user("ann@example.com", "demo-password", roles="seller,bidder")
    first = (await login(gateway)).json()
    await gateway.add_user("ann@example.com", "demo-password", roles="bidder")  # demoted
    demoted = (await gateway.client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
    assert demoted["user"]["roles"] == ["bidder"]
    assert {r.value for r in token_verifier(gateway.settings).verify(demoted["access_token"]).roles} == {"bidder"}
    await gateway.disable_user(user.email)
    refused = await gateway.client.post("/api/v1/auth/refresh", json={"refresh_token": demoted["refresh_token"]})
    assert refused.status_code == 401
    assert (await login(gateway)).status_code == 401


async def test_repeated_wrong_passwords_lock_the_account_even_against_the_right_password(gateway):
    await gateway.add_user("ann@example.com", "demo-password", roles="bidder")
    statuses = [(await login(gateway, password="wrong-password")).status_code for _ in range(5)]
    assert statuses == [401] * 5
    locked = await login(gateway)  # the right password, during the lock-out
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    assert locked.json()["error"]["reason"] == "RATE_LIMITED"


async def test_logins_from_one_address_are_rate_limited(gateway):
    statuses = [(await login(gateway, email=f"nobody{i}@example.com")).status_code for i in range(31)]
    assert statuses[:30] == [401] * 30
    assert statuses[30] == 429


async def test_a_body_over_the_cap_is_413_before_it_is_read(gateway):
    big = b"{" + b" " * (65 * 1024) + b"}"
    response = await gateway.client.post(
        "/api/v1/auth/login", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413

    async def chunks():  # no Content-Length: counted as it streams
        for _ in range(100):
            yield b" " * 1024

    streamed = await gateway.client.post(
        "/api/v1/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


async def test_deeply_nested_json_is_400_not_a_crash(gateway):
    deep = "[" * 5000 + "]" * 5000
    response = await gateway.client.post(
        "/api/v1/auth/login", content=deep, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_ARGUMENT"


async def test_every_answer_carries_security_headers_and_token_answers_are_not_cached(gateway):
    await gateway.add_user("ann@example.com", "demo-password", roles="bidder")
    answer = await login(gateway)
    headers = answer.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in headers  # plain HTTP here
    health = await gateway.client.get("/healthz")
    assert health.headers["x-content-type-options"] == "nosniff"
    docs = await gateway.client.get("/docs")
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]


async def test_hsts_is_sent_over_tls(gateway):
    response = await gateway.client.get("https://gateway.test/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_cors_answers_only_configured_origins(tmp_path):
    import httpx

    from gavel_kit.testing import identities

    env = {
        "GAVEL_VAR_DIR": str(tmp_path),
        "GAVEL_GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gateway.sqlite'}",
        "GAVEL_CATALOG_ADDR": "127.0.0.1:1",
        "GAVEL_NATS_URL": "nats://127.0.0.1:1",
        "GAVEL_GATEWAY_CORS_ORIGINS": "https://app.gavel.example",
        **identities.default().env(),
    }
    settings = settings_module.load("gateway", env)
    await migrate(settings)
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            preflight = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
            allowed = await client.options(
                "/api/v1/auth/login", headers={"origin": "https://app.gavel.example", **preflight}
            )
            other = await client.options("/api/v1/auth/login", headers={"origin": "https://evil.example", **preflight})
    assert allowed.headers["access-control-allow-origin"] == "https://app.gavel.example"
    assert "access-control-allow-origin" not in other.headers


async def test_an_oversized_page_token_or_a_far_date_is_400_not_500(gateway):
    response = await gateway.client.get("/api/v1/schedule?date=9999-12-31&view=week")
    assert response.status_code == 400
    assert [v["field"] for v in response.json()["error"]["field_violations"]] == ["date"]
    assert json.loads((await gateway.client.get("/api/v1/sales?page_size=-1")).text)["error"]["code"] == (
        "INVALID_ARGUMENT"
    )
