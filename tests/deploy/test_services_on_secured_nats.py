"""The real services start and work on NATS with the Kubernetes per-service users: each process
runs as its manifest runs it (its own user in GAVEL_NATS_URL, two room replicas, the projector),
and the server reports no permission violation. This is what proves the permission table against
the code rather than against a reading of docs/events.md."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import nats
import pytest
from secured_nats import SecuredNats, secured_nats

from gavel.room.v1 import room_service_pb2 as room_pb
from gavel.room.v1 import room_service_pb2_grpc as room_grpc
from gavel_kit.healthcheck import grpc_serving
from gavel_kit.settings import GRPC_SERVICE_NAMES
from gavel_kit.testing import identities
from gavel_kit.testing.plugin import free_port

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

# name → (NATS user, `python -m` arguments, settings prefix of its ports)
PROCESSES = {
    "catalog": ("catalog", ["catalog.main", "serve"], "CATALOG"),
    "room-0": ("room", ["room.main", "serve"], "ROOM"),
    "room-1": ("room", ["room.main", "serve"], "ROOM"),
    "room-projector": ("room-projector", ["room.main", "project"], "ROOM_PROJECTOR"),
    "tender": ("tender", ["tender.main", "serve"], "TENDER"),
    "payment": ("payment", ["payment.main", "serve"], "PAYMENT"),
    "notify": ("notify", ["notify.main", "serve"], "NOTIFY"),
}
START_S = 90


class Processes:
    def __init__(self, nats_server: SecuredNats, var_dir: Path) -> None:
        self.nats = nats_server
        self.var_dir = var_dir
        self.ports = {name: (free_port(), free_port()) for name in PROCESSES}
        self.webhook_port = free_port()
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def environment(self, name: str) -> dict[str, str]:
        user, _, prefix = PROCESSES[name]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GAVEL_", "OTEL_"))}
        grpc_port, metrics_port = self.ports[name]
        env |= {
            "GAVEL_VAR_DIR": str(self.var_dir),
            "GAVEL_NATS_URL": self.nats.url(user),
            f"GAVEL_{prefix}_GRPC_PORT": str(grpc_port),
            f"GAVEL_{prefix}_METRICS_PORT": str(metrics_port),
            "GAVEL_CATALOG_ADDR": f"127.0.0.1:{self.ports['catalog'][0]}",
            "GAVEL_ROOM_PROJECTIONS": "false",
            "GAVEL_ROOM_REPLICA_ID": name,
            "GAVEL_PAYMENT_WEBHOOK_PORT": str(self.webhook_port),
            "PYTHONUNBUFFERED": "1",
            **identities.default().env(),  # no key, no start (as the manifests mount them)
        }
        return env

    def migrate(self) -> None:
        """Each service's tables first (the two room replicas would otherwise race on one SQLite file)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GAVEL_")} | {"GAVEL_VAR_DIR": str(self.var_dir)}
        runs = {
            service: subprocess.Popen(
                [sys.executable, "-m", f"{service}.main", "migrate"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for service in ("catalog", "room", "tender", "payment", "notify")
        }
        for service, run in runs.items():
            _, stderr = run.communicate(timeout=120)
            assert run.returncode == 0, f"{service}: {stderr.decode()[-2000:]}"

    def start(self) -> None:
        for name, (_, args, _) in PROCESSES.items():
            with (self.var_dir / f"{name}.log").open("wb") as log:
                self.children[name] = subprocess.Popen(
                    [sys.executable, "-m", *args], env=self.environment(name), stdout=log, stderr=subprocess.STDOUT
                )

    def wait_serving(self) -> None:
        pending = set(PROCESSES)
        deadline = time.monotonic() + START_S
        while pending:
            for name in sorted(pending):
                child = self.children[name]
                assert child.poll() is None, f"{name} exited:\n{self.tail(name)}"
                module = PROCESSES[name][1][0].split(".")[0]
                service = "room-projector" if name == "room-projector" else GRPC_SERVICE_NAMES[module]
                if grpc_serving(f"127.0.0.1:{self.ports[name][0]}", service, timeout_s=1):
                    pending.discard(name)
            assert time.monotonic() < deadline, f"not SERVING: {pending}; {self.nats.violations()[:5]}"
            time.sleep(0.2)

    def tail(self, name: str) -> str:
        return "\n".join((self.var_dir / f"{name}.log").read_text(errors="replace").splitlines()[-20:])

    def stop(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.terminate()
        for child in self.children.values():
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    root = tmp_path_factory.mktemp("secured-cluster")
    with secured_nats(root) as server:
        processes = Processes(server, root / "var")
        processes.var_dir.mkdir()
        processes.migrate()
        processes.start()
        try:
            processes.wait_serving()
            yield processes
        finally:
            processes.stop()


async def _owners(cluster: Processes) -> dict[str, str]:
    nc = await nats.connect(cluster.nats.url("ops"))
    try:
        kv = await nc.jetstream().key_value("ROOM_OWNERS")
        owners: dict[str, str] = {}
        for key in await kv.keys():
            entry = await kv.get(key)
            owners[key] = (entry.value or b"").decode()
        return owners
    finally:
        await nc.close()


async def test_every_service_starts_and_the_room_replicas_share_the_partitions(cluster):
    deadline = time.monotonic() + 30
    while True:
        owners = await _owners(cluster)
        holders = {value for key, value in owners.items() if key.startswith("partition.")}
        if len([k for k in owners if k.startswith("partition.")]) == 64 and holders == {"room-0", "room-1"}:
            break
        assert time.monotonic() < deadline, owners
        await asyncio.sleep(0.2)
    assert cluster.nats.violations() == []


async def test_a_call_to_either_replica_is_answered_by_the_owner_over_nats(cluster):
    lot_ids = [f"lot-{n}" for n in range(8)]
    answers: dict[tuple[str, str], grpc.StatusCode] = {}
    # Each lot has one owner, so asking both replicas makes one of them forward every call.
    for name in ("room-0", "room-1"):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{cluster.ports[name][0]}") as channel:
            stub: Any = room_grpc.RoomServiceStub(channel)
            for lot_id in lot_ids:
                try:
                    await stub.GetLotState(room_pb.GetLotStateRequest(lot_id=lot_id), timeout=10)
                    answers[name, lot_id] = grpc.StatusCode.OK
                except grpc.aio.AioRpcError as exc:
                    answers[name, lot_id] = exc.code()
    # NOT_FOUND (no such lot) is the owner's answer; UNAVAILABLE would mean no owner answered.
    assert grpc.StatusCode.UNAVAILABLE not in answers.values(), answers
    assert cluster.nats.violations() == []
