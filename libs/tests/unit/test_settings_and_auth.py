import pytest

from gavel_core.auth import Role
from gavel_core.errors import Unauthenticated
from gavel_kit import settings
from gavel_kit.auth import TokenCodec

SECRET = "x" * 40


def test_defaults_are_the_fixed_ports_of_the_design():
    catalog = settings.load("catalog", {})
    assert (catalog.grpc_port, catalog.metrics_port) == (50051, 9101)
    assert settings.load("notify", {}).grpc_port == 50055
    assert settings.load("gateway", {}).grpc_port == 8080
    assert catalog.nats_url == "nats://127.0.0.1:14222"
    assert catalog.database_url.startswith("sqlite+aiosqlite:///")
    assert catalog.grpc_service_name == "gavel.catalog.v1.CatalogService"


def test_per_service_variables_win_over_shared_ones():
    env = {"GAVEL_DATABASE_URL": "postgresql://shared/db", "GAVEL_ROOM_DATABASE_URL": "postgresql://room/db"}
    assert settings.load("room", env).database_url == "postgresql://room/db"
    assert settings.load("catalog", env).database_url == "postgresql://shared/db"


def test_a_worker_shares_its_service_database_and_options_but_has_its_own_ports():
    env = {"GAVEL_VAR_DIR": "/srv/gavel", "GAVEL_ROOM_PARTITIONS": "128", "GAVEL_ROOM_PROJECTOR_GRPC_PORT": "6000"}
    room, projector = settings.load("room", env), settings.load("room", env, process="room-projector")
    assert projector.database_url == room.database_url == "sqlite+aiosqlite:////srv/gavel/db/room.sqlite"
    assert projector.option("PARTITIONS", "64") == "128"
    assert (room.grpc_port, room.metrics_port) == (50052, 9102)
    assert (projector.grpc_port, projector.metrics_port) == (6000, 9112)
    assert (projector.process_name, projector.grpc_service_name) == ("room-projector", "")


def test_an_unknown_worker_is_refused():
    with pytest.raises(ValueError, match="room-projector"):
        settings.load("room", {}, process="room-janitor")


def test_production_refuses_to_start_without_a_jwt_secret():
    with pytest.raises(RuntimeError):
        settings.load("catalog", {"GAVEL_ENV": "production"})


def test_reflection_can_be_switched_off():
    assert settings.load("room", {"GAVEL_GRPC_REFLECTION": "false"}).reflection is False


def test_a_token_round_trips_subject_and_roles():
    codec = TokenCodec(SECRET)
    principal = codec.verify(codec.issue("user-1", [Role.SELLER, Role.BIDDER], "Sam"))
    assert principal.subject == "user-1"
    assert principal.roles == {Role.SELLER, Role.BIDDER}


def test_a_token_signed_with_another_secret_is_rejected():
    token = TokenCodec("y" * 40).issue("user-1", [Role.BIDDER])
    with pytest.raises(Unauthenticated):
        TokenCodec(SECRET).verify(token)


def test_an_expired_token_is_rejected():
    codec = TokenCodec(SECRET)
    with pytest.raises(Unauthenticated, match="expired"):
        codec.verify(codec.issue("user-1", [Role.BIDDER], ttl_s=-10))


def test_a_token_verified_once_is_answered_from_memory_until_it_expires(monkeypatch):
    codec = TokenCodec(SECRET)
    token = codec.issue("user-1", [Role.BIDDER], ttl_s=60)
    first = codec.verify(token)
    decoded = []
    monkeypatch.setattr("gavel_kit.auth.jwt.decode", lambda *a, **k: decoded.append(1) or {})
    assert codec.verify(token) is first
    assert not decoded
    monkeypatch.setattr("gavel_kit.auth.time.time", lambda: 10**12)
    with pytest.raises(KeyError):  # past its expiry it is decoded again (the stub's empty claims fail)
        codec.verify(token)
    assert decoded


def test_a_tampered_copy_of_a_verified_token_is_still_rejected():
    codec = TokenCodec(SECRET)
    token = codec.issue("user-1", [Role.BIDDER])
    codec.verify(token)
    header, payload, signature = token.split(".")
    forged = ".".join([header, payload, signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")])
    with pytest.raises(Unauthenticated):
        codec.verify(forged)


def test_authorization_header_must_be_bearer():
    with pytest.raises(Unauthenticated):
        TokenCodec(SECRET).principal_from_authorization("Basic abc")


def test_services_run_on_uvloop_unless_told_otherwise():
    assert settings.load("room", {}).event_loop == "uvloop"
    assert settings.load("room", {"GAVEL_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    with pytest.raises(ValueError, match="GAVEL_EVENT_LOOP"):
        settings.load("room", {"GAVEL_EVENT_LOOP": "trio"})


def test_services_collect_garbage_rarely_unless_told_otherwise():
    assert settings.load("room", {}).gc_thresholds == (2_000, 10, 100)
    assert settings.load("room", {"GAVEL_GC_THRESHOLDS": " 700, 10,10 "}).gc_thresholds == (700, 10, 10)
    assert settings.load("room", {"GAVEL_GC_THRESHOLDS": "default"}).gc_thresholds is None
    for wrong in ("700,10", "700,0,10", "a,b,c"):
        with pytest.raises(ValueError, match="GAVEL_GC_THRESHOLDS"):
            settings.load("room", {"GAVEL_GC_THRESHOLDS": wrong})


def test_streams_have_one_replica_unless_the_deployment_asks_for_more():
    assert settings.load("room", {}).nats_replicas == 1
    assert settings.load("room", {"GAVEL_NATS_REPLICAS": "3"}).nats_replicas == 3


@pytest.mark.parametrize("value", ["0", "6", "-1"])
def test_a_stream_replica_count_outside_one_to_five_is_refused(value):
    with pytest.raises(ValueError, match="GAVEL_NATS_REPLICAS"):
        settings.load("room", {"GAVEL_NATS_REPLICAS": value})
