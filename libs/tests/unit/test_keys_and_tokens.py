"""Signed identities: only the gateway's key makes user tokens, a service's key only its own identity,
verifiers hold public keys only, keys rotate without a restart, and malformed claims are refused."""

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gavel_core.auth import Role
from gavel_core.errors import Unauthenticated
from gavel_kit import keys
from gavel_kit.auth import ServiceCredential, TokenSigner, TokenVerifier
from gavel_kit.keys import KeyConfigError, KeyStore, SigningKey


@pytest.fixture
def store(tmp_path):
    store = KeyStore(tmp_path / "keys")
    store.ensure(keys.SIGNERS)
    return store


def gateway_signer(store):
    return TokenSigner(SigningKey(store.private_path("gateway"), "gateway"), "gavel")


def verifier(store):
    return TokenVerifier(keys.Jwks(store.jwks_path), user_issuer="gavel")


def test_a_user_token_from_the_gateway_round_trips_subject_roles_and_issue_time(store):
    principal = verifier(store).verify(gateway_signer(store).issue("user-1", [Role.SELLER, Role.BIDDER], "Sam"))
    assert (principal.subject, principal.roles, principal.display_name) == (
        "user-1",
        {Role.SELLER, Role.BIDDER},
        "Sam",
    )
    assert abs(principal.issued_at - time.time()) < 5
    assert principal.credential
    assert "credential" not in repr(principal)


def test_tokens_name_their_key_audience_and_issuer_and_live_at_most_five_minutes(store):
    token = gateway_signer(store).issue("user-1", [Role.BIDDER])
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "EdDSA"
    assert header["kid"].startswith("gateway-")
    assert (claims["iss"], claims["aud"]) == ("gavel", "gavel")
    assert claims["exp"] - claims["iat"] <= 300
    with pytest.raises(ValueError, match="300"):
        gateway_signer(store).issue("user-1", [Role.BIDDER], ttl_s=3600)


def test_the_keys_directory_holds_private_keys_only_for_their_owner_and_public_keys_in_the_jwks(store):
    for signer in keys.SIGNERS:
        assert store.private_path(signer).stat().st_mode & 0o777 == 0o600
    document = json.loads(store.jwks_path.read_text())
    services = {"svc:gateway" if s == keys.GATEWAY_SERVICE else f"svc:{s}" for s in keys.SIGNERS[1:]}
    assert {entry["iss"] for entry in document["keys"]} == {"gavel", *services}
    assert all("d" not in entry for entry in document["keys"])  # no private part in the JWKS


def test_a_token_signed_by_a_key_outside_the_jwks_is_refused(store, tmp_path):
    other = KeyStore(tmp_path / "elsewhere")
    other.ensure(["gateway"])
    forged = gateway_signer(other).issue("user-1", [Role.SITE_ADMIN])
    with pytest.raises(Unauthenticated, match="does not know"):
        verifier(store).verify(forged)


def test_a_service_key_cannot_mint_a_user_token_or_another_services_identity(store):
    room_key = SigningKey(store.private_path("room"), "room")
    as_user = TokenSigner(room_key, "svc:room").issue("user-1", [Role.SITE_ADMIN])
    as_catalog = TokenSigner(room_key, "svc:room").issue("svc:catalog", [Role.SERVICE])
    claiming_gateway = TokenSigner(room_key, "gavel").issue("user-1", [Role.BIDDER])
    for token in (as_user, as_catalog, claiming_gateway):
        with pytest.raises(Unauthenticated):
            verifier(store).verify(token)


def test_the_gateway_key_cannot_mint_a_service_identity(store):
    for subject, roles in (("svc:catalog", [Role.SERVICE]), ("user-1", [Role.SERVICE, Role.BIDDER])):
        with pytest.raises(Unauthenticated, match="service identity"):
            verifier(store).verify(gateway_signer(store).issue(subject, roles))


def test_a_service_credential_is_short_lived_verified_as_the_service_and_renewed(store, monkeypatch):
    credential = ServiceCredential(SigningKey(store.private_path("room"), "room"), "room", ttl_s=30)
    first = credential.token
    assert credential.token == first  # cached while fresh
    principal = verifier(store).verify(first)
    assert (principal.subject, principal.roles) == ("svc:room", {Role.SERVICE})
    later = time.time() + 25
    monkeypatch.setattr("gavel_kit.auth.time.time", lambda: later)
    assert credential.token != first  # renewed with a third of its life left


@pytest.mark.parametrize(
    "claims",
    [
        {"roles": 7},
        {"roles": [1, 2]},
        {"roles": "bidder"},
        {"sub": 12},
        {"sub": ""},
        {"sub": "x" * 500},
        {"name": {"a": 1}},
        {"exp": "tomorrow"},
        {"iat": None},
        {"aud": "someone-else"},
    ],
)
def test_malformed_claims_are_unauthenticated_never_an_internal_error(store, claims):
    now = int(time.time())
    base = {"iss": "gavel", "aud": "gavel", "sub": "user-1", "roles": ["bidder"], "iat": now, "exp": now + 60}
    signing = SigningKey(store.private_path("gateway"), "gateway")
    kid, private = signing.current()
    token = jwt.encode({**base, **claims}, private, algorithm="EdDSA", headers={"kid": kid})
    with pytest.raises(Unauthenticated):
        verifier(store).verify(token)


def test_a_token_living_longer_than_five_minutes_is_refused_even_if_signed_by_the_gateway(store):
    now = int(time.time())
    kid, private = SigningKey(store.private_path("gateway"), "gateway").current()
    claims = {"iss": "gavel", "aud": "gavel", "sub": "user-1", "roles": ["bidder"], "iat": now, "exp": now + 86400}
    with pytest.raises(Unauthenticated, match="at most"):
        verifier(store).verify(jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": kid}))


@pytest.mark.parametrize("algorithm", ["HS256", "none"])
def test_other_algorithms_are_refused(store, algorithm):
    kid = json.loads(store.jwks_path.read_text())["keys"][0]["kid"]
    key = "x" * 40 if algorithm == "HS256" else None
    token = jwt.encode({"sub": "user-1", "roles": ["site_admin"]}, key, algorithm=algorithm, headers={"kid": kid})
    with pytest.raises(Unauthenticated):
        verifier(store).verify(token)


def test_rotation_publishes_the_new_key_first_and_old_tokens_verify_until_the_old_key_is_retired(store):
    check = verifier(store)
    signer = gateway_signer(store)
    old_token = signer.issue("user-1", [Role.BIDDER])
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    new_kid = store.rotate("gateway")
    fresh = TokenSigner(SigningKey(store.private_path("gateway"), "gateway"), "gavel").issue("user-1", [Role.BIDDER])
    assert jwt.get_unverified_header(fresh)["kid"] == new_kid != old_kid
    check.jwks.refresh(force=True)
    assert check.verify(fresh).subject == "user-1"  # the running verifier picked the new key up
    assert check.verify(old_token).subject == "user-1"
    with pytest.raises(KeyConfigError, match="current key"):
        store.retire(new_kid)
    store.retire(old_kid)
    later = verifier(store)
    with pytest.raises(Unauthenticated):
        later.verify(old_token)
    assert [(kid, current) for kid, iss, current in store.listing() if iss == "gavel"] == [(new_kid, True)]


def test_a_running_signer_picks_up_its_rotated_key(store, monkeypatch):
    signing = SigningKey(store.private_path("gateway"), "gateway")
    before = signing.kid
    new_kid = store.rotate("gateway")
    monkeypatch.setattr("gavel_kit.keys.RELOAD_EVERY_S", 0.0)
    assert signing.current()[0] == new_kid != before


def test_no_key_no_start(tmp_path):
    with pytest.raises(KeyConfigError, match="gavel up"):
        keys.Jwks(tmp_path / "nothing" / "jwks.json")
    with pytest.raises(KeyConfigError, match="gavel up"):
        SigningKey(tmp_path / "nothing" / "room.pem", "room")


def test_a_jwks_with_a_non_ed25519_key_is_refused(tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "iss": "gavel"}]}))
    with pytest.raises(KeyConfigError, match="Ed25519"):
        keys.Jwks(path)


def test_a_verified_token_is_answered_from_memory_but_a_revocation_still_applies(store, monkeypatch):
    check = verifier(store)
    token = gateway_signer(store).issue("user-1", [Role.BIDDER])
    first = check.verify(token)
    decoded = []
    monkeypatch.setattr("gavel_kit.auth.jwt.decode", lambda *a, **k: decoded.append(1) or {})
    assert check.verify(token) is first
    assert not decoded
    check.revocations = lambda subject, issued_at: subject == "user-1" and issued_at <= first.issued_at
    with pytest.raises(Unauthenticated, match="revoked"):
        check.verify(token)


def test_a_tampered_copy_of_a_verified_token_is_still_rejected(store):
    check = verifier(store)
    token = gateway_signer(store).issue("user-1", [Role.BIDDER])
    check.verify(token)
    header, payload, signature = token.split(".")
    forged = ".".join([header, payload, signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")])
    with pytest.raises(Unauthenticated):
        check.verify(forged)


def test_authorization_header_must_be_bearer(store):
    with pytest.raises(Unauthenticated):
        verifier(store).principal_from_authorization("Basic abc")


def test_an_ed25519_key_of_another_deployment_with_a_known_kid_is_refused(store):
    kid = next(entry["kid"] for entry in json.loads(store.jwks_path.read_text())["keys"] if entry["iss"] == "gavel")
    now = int(time.time())
    claims = {"iss": "gavel", "aud": "gavel", "sub": "user-1", "roles": ["site_admin"], "iat": now, "exp": now + 60}
    token = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid})
    with pytest.raises(Unauthenticated, match="Signature"):
        verifier(store).verify(token)
