"""The NATS cluster's config: generated, valid for nats-server, a real 3-node cluster, and the
per-service users really allow what each service does and refuse what it must not do."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import nats
import pytest
from deploy_render import ROOT, containers, workloads
from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType
from secured_nats import SecuredNats, generator, secured_nats

from gavel_kit import natsserver
from gavel_kit.nats import StreamSpec, ensure_streams
from gavel_kit.streamread import read_subject

Obj = dict[str, Any]
AUTH = ROOT / "deploy" / "k8s" / "base" / "nats" / "auth.conf"


def _config_map(objects: list[Obj]) -> dict[str, str]:
    return next(
        o["data"] for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("nats-config")
    )


def _passwords(objects: list[Obj]) -> dict[str, str]:
    secret = next(o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"].startswith("gavel-nats-users"))
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def test_auth_conf_is_what_the_generator_writes():
    assert AUTH.read_text() == generator().render(), "run: python deploy/k8s/tools/nats_auth.py > " + str(AUTH)


def test_the_rendered_config_is_valid_for_nats_server(rendered, tmp_path):
    for name, text in _config_map(rendered["dev"]).items():
        (tmp_path / name).write_text(text)
    env = {**os.environ, "POD_NAME": "nats-0", **_passwords(rendered["dev"])}
    result = subprocess.run(
        [natsserver.binary(), "-t", "-c", str(tmp_path / "nats.conf")], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr


def test_three_servers_route_to_each_other_and_fsync_every_write(rendered):
    for overlay in ("dev", "prod"):
        objects = rendered[overlay]
        (nats_set,) = [w for w in workloads(objects) if w["metadata"]["name"] == "nats"]
        replicas, service = nats_set["spec"]["replicas"], nats_set["spec"]["serviceName"]
        assert replicas == 3
        assert nats_set["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
        conf = _config_map(objects)["nats.conf"]
        for ordinal in range(replicas):
            assert f"nats://nats-{ordinal}.{service}:6222" in conf
        assert "sync_interval: always" in conf
        assert "store_dir: /data/jetstream" in conf
        assert any(m["mountPath"] == "/data" for c in containers(nats_set) for m in c["volumeMounts"])


def test_every_nats_user_has_a_password_and_every_service_its_user(rendered):
    users = {user.name for user in generator().USERS}
    keys = set(_passwords(rendered["dev"]))
    assert keys == {generator().env_name(user) for user in (*users, "ops", "sys")}
    clients = set()
    for workload in workloads(rendered["dev"]):
        for container in containers(workload, init=False):
            for item in container.get("env", []):
                if item["name"] == "GAVEL_NATS_URL":
                    clients.add(item["value"].split("//", 1)[1].split(":", 1)[0])
    assert clients == users


# --- the permissions, against a real nats-server running auth.conf ---------------------------------


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredNats]:
    with secured_nats(tmp_path_factory.mktemp("nats-auth")) as server:
        yield server


class Violations:
    """The permission errors the server reports to one connection (asynchronously, as -ERR)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.event = asyncio.Event()

    async def record(self, exc: Exception) -> None:
        if "permissions violation" in str(exc).lower():
            self.seen.append(str(exc))
            self.event.set()

    async def wait(self) -> str:
        await asyncio.wait_for(self.event.wait(), 5)
        self.event.clear()
        return self.seen[-1]


@pytest.fixture
async def connect(secured: SecuredNats) -> AsyncIterator[Any]:
    opened: list[Client] = []

    async def open_as(user: str, violations: Violations | None = None) -> Client:
        nc = await nats.connect(
            secured.url(user),
            error_cb=(violations or Violations()).record,
            allow_reconnect=False,
        )
        opened.append(nc)
        return nc

    yield open_as
    for nc in opened:
        await nc.close()


CATALOG = StreamSpec("CATALOG", ["gavel.catalog.>"], extra={"allow_direct": True})
ROOM_EVENTS = StreamSpec("ROOM_EVENTS", ["gavel.room.lot.>"], extra={"allow_direct": True})
PAYMENT_EVENTS = StreamSpec("PAYMENT_EVENTS", ["gavel.payment.>"])


@pytest.mark.integration
async def test_each_service_can_do_its_own_work(connect):
    catalog, room, payment, notify = [await connect(u) for u in ("catalog", "room", "payment", "notify")]
    # Owners create and update their streams, and publish their events.
    await ensure_streams(catalog.jetstream(), [CATALOG])
    await ensure_streams(room.jetstream(), [ROOM_EVENTS])
    await ensure_streams(payment.jetstream(), [PAYMENT_EVENTS])
    await catalog.jetstream().publish("gavel.catalog.lot_scheduled.lot-1", b"terms")
    await payment.jetstream().publish("gavel.payment.bidder.banned.b-1", b"banned")
    ack = await room.jetstream().publish("gavel.room.lot.lot-1", b"batch")
    # The room reads a lot's log back by direct get, as a new owner does.
    assert [m.sequence for m in await read_subject(room, "ROOM_EVENTS", "gavel.room.lot.lot-1")] == [ack.seq]
    # The room's lease and active-lot buckets.
    kv = await room.jetstream().create_key_value(
        KeyValueConfig(bucket="ROOM_OWNERS", history=1, storage=StorageType.MEMORY, direct=True)
    )
    revision = await kv.create("partition.0", b"room-0")
    assert (await kv.get("partition.0")).revision == revision
    await kv.update("partition.0", b"room-1", revision)
    # Durable consumers on the streams others own: the room on the catalog's, notify on payment's.
    for nc, stream, durable in ((room, "CATALOG", "room-lot-terms"), (notify, "PAYMENT_EVENTS", "notify-payments")):
        subscription = await nc.jetstream().pull_subscribe(">", durable=durable, stream=stream)
        (message,) = await subscription.fetch(1, timeout=5)
        await message.ack_sync()
    # The room's ordered consumer of bans and bid limits.
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def on_ban(msg: Any) -> None:
        if not received.done():
            received.set_result(msg.data)

    ordered = await room.jetstream().subscribe("gavel.payment.bidder.>", ordered_consumer=True, cb=on_ban)
    assert await asyncio.wait_for(received, 5) == b"banned"
    await ordered.unsubscribe()
    # Room replicas forward calls to a partition's owner and answer them.
    owner = await connect("room")

    async def answer(msg: Any) -> None:
        await msg.respond(b"answer")

    await owner.subscribe("gavel.room.cmd.7", queue="room-owners", cb=answer)
    await owner.flush()
    assert (await room.request("gavel.room.cmd.7", b"call", timeout=5)).data == b"answer"


@pytest.mark.integration
async def test_a_service_cannot_write_what_another_owns_or_reach_the_rooms_internal_subjects(connect):
    owner = await connect("room")
    await ensure_streams(owner.jetstream(), [ROOM_EVENTS])
    for user in ("catalog", "payment", "notify", "tender", "room-projector"):
        violations = Violations()
        nc = await connect(user, violations)
        # Forwarded calls carry a caller the owner trusts: only room replicas may send them.
        await nc.publish("gavel.room.cmd.3", b"forged")
        assert "gavel.room.cmd.3" in await violations.wait()
        # Nobody but the room appends to a lot's log.
        await nc.publish("gavel.room.lot.lot-1", b"forged")
        assert "gavel.room.lot.lot-1" in await violations.wait()
        # Nor deletes a stream.
        await nc.publish("$JS.API.STREAM.DELETE.ROOM_EVENTS", b"")
        assert "$js.api.stream.delete.room_events" in await violations.wait()  # the server lowercases it
    violations = Violations()
    notify = await connect("notify", violations)
    await notify.publish("gavel.catalog.sale_published.s-1", b"forged")
    assert "gavel.catalog.sale_published.s-1" in await violations.wait()
