"""The Kubernetes NATS config forms a real 3-server JetStream cluster, and with the prod overlay's
GAVEL_NATS_REPLICAS=3 the room's stream and KV buckets are replicated on all three: an
acknowledged append survives losing a server. Three nats-servers on loopback stand in for the pods."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from gavel_kit import natsserver
from gavel_kit import settings as gavel_settings
from gavel_kit.nats import ensure_streams
from room.adapters.event_log import STREAM_SPEC
from room.adapters.leases import ACTIVE_BUCKET, OWNERS_BUCKET, REPLICAS_BUCKET, KvActiveLots, KvLeaseStore

pytestmark = pytest.mark.integration
SERVERS = 3


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _on_loopback(conf: str, ordinal: int, data: Path, client: list[int], cluster: list[int], http: list[int]) -> str:
    """The pod's nats.conf with its listeners, routes and paths moved to this machine."""
    routes = "\n".join(f"    nats://127.0.0.1:{port}" for port in cluster)
    conf = re.sub(r"routes: \[.*?\]", f"routes: [\n{routes}\n  ]", conf, flags=re.S)
    conf = conf.replace("listen: 0.0.0.0:4222", f"listen: 127.0.0.1:{client[ordinal]}")
    conf = conf.replace("listen: 0.0.0.0:6222", f"listen: 127.0.0.1:{cluster[ordinal]}")
    conf = conf.replace("http: 0.0.0.0:8222", f"http: 127.0.0.1:{http[ordinal]}")
    conf = conf.replace("/var/run/nats/nats.pid", str(data / "nats.pid"))
    conf = conf.replace("store_dir: /data/jetstream", f'store_dir: "{data / "jetstream"}"')
    # This machine's disk may be smaller than the pod's volume.
    return conf.replace("max_file_store: 20GB", "max_file_store: 1GB")


@pytest.fixture(scope="module")
def cluster(rendered: dict[str, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    objects = rendered["prod"]
    files = next(
        o["data"] for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("nats-config")
    )
    config = next(
        o["data"] for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("gavel-config")
    )
    dev = rendered["dev"]
    secret = next(o for o in dev if o["kind"] == "Secret" and o["metadata"]["name"].startswith("gavel-nats-users"))
    passwords = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    client, routes, http = _free_ports(SERVERS), _free_ports(SERVERS), _free_ports(SERVERS)
    processes = []
    root = tmp_path_factory.mktemp("nats-cluster")
    for ordinal in range(SERVERS):
        data = root / f"nats-{ordinal}"
        data.mkdir()
        (data / "auth.conf").write_text(files["auth.conf"])
        (data / "nats.conf").write_text(_on_loopback(files["nats.conf"], ordinal, data, client, routes, http))
        log = (data / "nats.log").open("wb")
        env = {**os.environ, **passwords, "POD_NAME": f"nats-{ordinal}"}
        processes.append(
            subprocess.Popen([natsserver.binary(), "-c", str(data / "nats.conf")], stdout=log, stderr=log, env=env)
        )
        log.close()
    urls = [f"nats://room:{passwords['NATS_ROOM_PASSWORD']}@127.0.0.1:{port}" for port in client]
    try:
        yield processes, urls, config
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(20)


async def _js_ready(nc: Client, deadline_s: float = 30) -> None:
    """Wait until the cluster has elected its JetStream meta leader."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            await nc.jetstream().account_info()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture
async def room_nc(cluster: Any) -> AsyncIterator[Client]:
    _, urls, _ = cluster
    nc = await nats.connect(servers=urls, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    await _js_ready(nc)
    yield nc
    await nc.close()


async def test_the_rooms_stream_and_buckets_get_three_replicas_and_survive_a_lost_server(cluster, room_nc):
    processes, _, config = cluster
    replicas = gavel_settings.load("room", config | {"GAVEL_JWT_SECRET": "x" * 40}).nats_replicas
    assert replicas == 3
    js = room_nc.jetstream()
    # What the room's runtime and adapters create at start, with the setting they read.
    await ensure_streams(js, [replace(STREAM_SPEC, replicas=replicas)])
    leases = KvLeaseStore(room_nc, js, ttl_s=1.2, replicas=replicas)
    assert await leases.heartbeat("room-0", None) is not None
    await leases.owners.open()  # created on the first claim
    await KvActiveLots(room_nc, js, replicas).check_partition_count(64)
    for stream in (STREAM_SPEC.name, *(f"KV_{b}" for b in (REPLICAS_BUCKET, OWNERS_BUCKET, ACTIVE_BUCKET))):
        info = await js.stream_info(stream)
        assert info.config.num_replicas == 3, stream
        assert info.cluster is not None
        assert len(info.cluster.replicas or []) == 2, stream  # the leader plus two followers
    before = await js.publish("gavel.room.lot.lot-1", b"batch-1")
    # Lose the stream's leader: the other two elect a new one and keep acknowledging appends.
    leader = (await js.stream_info(STREAM_SPEC.name)).cluster.leader
    victim = processes[int(leader.rsplit("-", 1)[1])]
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    after = await _publish_until_acknowledged(js, "gavel.room.lot.lot-1", b"batch-2")
    assert after.seq == before.seq + 1
    message = await js.get_msg(STREAM_SPEC.name, before.seq)
    assert message.data == b"batch-1"


async def _publish_until_acknowledged(js: Any, subject: str, payload: bytes) -> Any:
    deadline = time.monotonic() + 30
    while True:
        try:
            return await js.publish(subject, payload, timeout=2, headers={"Nats-Msg-Id": "lot-1:2"})
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
