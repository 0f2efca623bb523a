"""A nats-server on loopback running the Kubernetes auth.conf (accounts, one user per process)."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy_render import K8S

from gavel_kit import natsserver

AUTH = K8S / "base" / "nats" / "auth.conf"
PASSWORD = "test-password"


@functools.cache
def generator() -> Any:
    """deploy/k8s/tools/nats_auth.py, the table auth.conf is written from."""
    spec = importlib.util.spec_from_file_location("nats_auth", K8S / "tools" / "nats_auth.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@dataclass
class SecuredNats:
    host_port: str
    log_path: Path

    def url(self, user: str) -> str:
        return f"nats://{user}:{PASSWORD}@{self.host_port}"

    def violations(self) -> list[str]:
        return [line for line in self.log_path.read_text().splitlines() if "Violation" in line]


@contextmanager
def secured_nats(data: Path) -> Iterator[SecuredNats]:
    """JetStream with `sync_interval: always`, as in the cluster; every user's password is PASSWORD."""
    (data / "auth.conf").write_text(AUTH.read_text())
    (data / "nats.conf").write_text(
        f'listen: 127.0.0.1:-1\njetstream {{\n  store_dir: "{data / "js"}"\n  sync_interval: always\n}}\n'
        "include ./auth.conf\n"
    )
    users = [user.name for user in generator().USERS] + ["ops", "sys"]
    env = {**os.environ, **{generator().env_name(user): PASSWORD for user in users}}
    log_path = data / "nats.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [natsserver.binary(), "-c", str(data / "nats.conf")], stdout=log, stderr=log, env=env
        )
    try:
        yield SecuredNats(f"127.0.0.1:{_port(log_path, process)}", log_path)
    finally:
        process.terminate()
        process.wait(10)


def _port(log: Path, process: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        text = log.read_text()
        match = re.search(r"Listening for client connections on [\d.]+:(\d+)", text)
        if match and "Server is ready" in text:
            return int(match.group(1))
        time.sleep(0.05)
    raise TimeoutError(log.read_text())
