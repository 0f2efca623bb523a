"""Login, registration and /me over HTTP, against a real SQLite database."""

import pytest

from gateway.main import token_verifier

pytestmark = pytest.mark.integration


async def test_login_with_the_right_password_returns_a_bearer_token_and_the_user(gateway):
    user = await gateway.add_user("Seller@Gavel.local", "demo-password", "Sam Seller", "seller,bidder")
    response = await gateway.client.post(
        "/api/v1/auth/login", json={"email": "seller@gavel.local", "password": "demo-password"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == gateway.settings.access_token_ttl_s <= 300
    assert body["refresh_token"]
    assert body["refresh_expires_in"] > 3600
    assert body["user"] == {
        "id": user.id,
        "email": "seller@gavel.local",
        "display_name": "Sam Seller",
        "roles": ["bidder", "seller"],
    }
    principal = token_verifier(gateway.settings).verify(body["access_token"])
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
    assert response.status_code == 202
    token = await gateway.token_for("nora@example.com", "long-enough")
    me = await gateway.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["email"] == "nora@example.com"
    assert me.json()["roles"] == ["bidder"]


async def test_registration_cannot_grant_roles_other_than_bidder(gateway):
    response = await gateway.client.post(
        "/api/v1/auth/register",
        json={"email": "sneaky@example.com", "password": "long-enough", "roles": ["site_admin"]},
    )
    assert response.status_code == 202
    token = await gateway.token_for("sneaky@example.com", "long-enough")
    me = await gateway.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["roles"] == ["bidder"]


async def test_registering_a_taken_email_answers_exactly_as_a_new_one_and_changes_nothing(gateway):
    await gateway.add_user("ann@example.com", "demo-password", roles="seller")
    taken = await gateway.client.post(
        "/api/v1/auth/register", json={"email": "ANN@example.com", "password": "long-enough"}
    )
    new = await gateway.client.post(
        "/api/v1/auth/register", json={"email": "bob@example.com", "password": "long-enough"}
    )
    assert (taken.status_code, taken.json()) == (new.status_code, new.json()) == (202, new.json())
    assert await gateway.token_for("ann@example.com", "demo-password")  # the account is untouched


async def test_registration_reports_every_bad_field(gateway):
    response = await gateway.client.post("/api/v1/auth/register", json={"email": "nope", "password": "short"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert {v["field"] for v in error["field_violations"]} == {"email", "password"}
