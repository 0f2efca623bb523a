"""Login, registration and /me over HTTP, against a real SQLite database."""

import pytest

from gavel_kit.auth import TokenCodec

pytestmark = pytest.mark.integration


async def test_login_with_the_right_password_returns_a_bearer_token_and_the_user(gateway):
    user = await gateway.add_user("Seller@Gavel.local", "demo-password", "Sam Seller", "seller,bidder")
    response = await gateway.client.post(
        "/api/v1/auth/login", json={"email": "seller@gavel.local", "password": "demo-password"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == gateway.settings.jwt_ttl_s
    assert body["user"] == {
        "id": user.id,
        "email": "seller@gavel.local",
        "display_name": "Sam Seller",
        "roles": ["bidder", "seller"],
    }
    codec = TokenCodec(gateway.settings.jwt_secret, gateway.settings.jwt_issuer)
    principal = codec.verify(body["access_token"])
    assert principal.subject == user.id
    assert {role.value for role in principal.roles} == {"bidder", "seller"}


@pytest.mark.parametrize(
    ("email", "password"), [("seller@gavel.local", "wrong-password"), ("nobody@gavel.local", "demo-password")]
)
async def test_login_with_wrong_credentials_is_401_with_a_clear_error(gateway, email, password):
    await gateway.add_user("seller@gavel.local", "demo-password", roles="seller")
    response = await gateway.client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "error": {
            "code": "UNAUTHENTICATED",
            "message": "wrong email or password",
            "reason": "INVALID_CREDENTIALS",
            "metadata": {},
            "field_violations": [],
        }
    }


async def test_a_login_without_a_password_is_400_naming_the_missing_field(gateway):
    response = await gateway.client.post("/api/v1/auth/login", json={"email": "a@b.co"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert [v["field"] for v in error["field_violations"]] == ["password"]


async def test_me_returns_the_account_of_the_bearer_token(gateway):
    user = await gateway.add_user("crier@gavel.local", "demo-password", "Cleo Crier", "crier")
    token = await gateway.token_for("crier@gavel.local", "demo-password")
    response = await gateway.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {
        "id": user.id,
        "email": "crier@gavel.local",
        "display_name": "Cleo Crier",
        "roles": ["crier"],
    }


@pytest.mark.parametrize("header", [None, "Bearer not-a-jwt", "Basic dXNlcjpwYXNz"])
async def test_me_without_a_valid_bearer_token_is_401(gateway, header):
    headers = {"Authorization": header} if header else {}
    response = await gateway.client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_a_new_bidder_registers_and_can_log_in_at_once(gateway):
    response = await gateway.client.post(
        "/api/v1/auth/register", json={"email": "Nora@Example.com", "password": "long-enough", "display_name": "Nora"}
    )
    assert response.status_code == 201
    assert response.json()["user"]["roles"] == ["bidder"]
    token = await gateway.token_for("nora@example.com", "long-enough")
    me = await gateway.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["email"] == "nora@example.com"


async def test_registration_cannot_grant_roles_other_than_bidder(gateway):
    response = await gateway.client.post(
        "/api/v1/auth/register",
        json={"email": "sneaky@example.com", "password": "long-enough", "roles": ["site_admin"]},
    )
    assert response.status_code == 201
    assert response.json()["user"]["roles"] == ["bidder"]


async def test_registering_a_taken_email_is_409_already_exists(gateway):
    await gateway.add_user("ann@example.com", "demo-password", roles="seller")
    response = await gateway.client.post(
        "/api/v1/auth/register", json={"email": "ANN@example.com", "password": "long-enough"}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "ALREADY_EXISTS"


async def test_registration_reports_every_bad_field(gateway):
    response = await gateway.client.post("/api/v1/auth/register", json={"email": "nope", "password": "short"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert {v["field"] for v in error["field_violations"]} == {"email", "password"}
