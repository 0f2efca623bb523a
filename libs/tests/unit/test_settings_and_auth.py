import pytest

from gavel_kit import settings


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


def test_access_tokens_cannot_be_configured_to_live_longer_than_five_minutes():
    with pytest.raises(ValueError, match="300"):
        settings.load("gateway", {"GAVEL_ACCESS_TOKEN_TTL_S": "3600"})


def test_reflection_can_be_switched_off():
    assert settings.load("room", {"GAVEL_GRPC_REFLECTION": "false"}).reflection is False


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
