"""`gavel up` as tests run it: its own var dir, free loopback ports for every listener, and what a
test needs around it (addresses, the supervisor's status file, the children's pids, stopping it)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SERVICES = ("catalog", "room", "tender", "payment", "notify")
WORKERS = ("room-projector",)
READY_LINE = "Ctrl-C stops everything"


def distinct_free_ports(count: int) -> list[int]:
    """`count` different free ports: held open together while chosen (one `free_port()` after
    another may hand out the same port twice, as each is released before the next is asked for)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class RunningCluster:
    def __init__(self, var_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.var_dir = var_dir
        names = (*SERVICES, *WORKERS)
        ports = iter(distinct_free_ports(2 * len(names) + 6))
        self.ports = {name: (next(ports), next(ports)) for name in names}
        self.http_port = next(ports)
        self.nats_port = next(ports)
        self.smtp_port, self.sms_port = next(ports), next(ports)
        payment_sandbox, payment_webhook = next(ports), next(ports)
        self.env = dict(os.environ)
        self.env.update(
            GAVEL_VAR_DIR=str(var_dir),
            GAVEL_EMBEDDED_NATS_PORT=str(self.nats_port),
            GAVEL_GATEWAY_HTTP_PORT=str(self.http_port),
            GAVEL_NOTIFY_SMTP_PORT=str(self.smtp_port),
            GAVEL_NOTIFY_SMS_SANDBOX_PORT=str(self.sms_port),
            GAVEL_PAYMENT_SANDBOX_PORT=str(payment_sandbox),
            GAVEL_PAYMENT_WEBHOOK_PORT=str(payment_webhook),
        )
        self.env.pop("GAVEL_NATS_URL", None)
        self.env.pop("GAVEL_DATABASE_URL", None)
        self.env.pop("GAVEL_KEYS_DIR", None)  # gavel up makes the cluster's own keys under var/keys
        self.env.pop("GAVEL_NOTIFY_SMS_URL", None)
        self.env.pop("GAVEL_PAYMENT_PROVIDER_URL", None)
        for name, (grpc_port, metrics_port) in self.ports.items():
            prefix = f"GAVEL_{name.upper().replace('-', '_')}_"
            self.env[prefix + "GRPC_PORT"] = str(grpc_port)
            self.env[prefix + "METRICS_PORT"] = str(metrics_port)
        self.env.update(extra_env or {})
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name][0]}"

    def http(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    @property
    def keys_dir(self) -> str:
        """The cluster's signing keys (`gavel up` generates them under var/keys)."""
        return str(self.var_dir / "keys")

    def nats_login(self, user: str = "ops") -> dict[str, object]:
        """NATS requires a login: connect options for one of the users `gavel up` made."""
        from gavel_kit import nats as gavel_nats

        return gavel_nats.client_options(self.var_dir / "secrets" / "nats" / f"{user}.json")

    def start(self, *args: str, timeout: float = 240) -> None:
        gavel = Path(sys.executable).parent / "gavel"
        self.process = subprocess.Popen(  # noqa: S603 — our own CLI
            [str(gavel), "up", *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                break
            self.output.append(line)
            if line.startswith(READY_LINE):
                return
        raise AssertionError("gavel up did not come up:\n" + "".join(self.output) + self.logs())

    def logs(self) -> str:
        return "".join(
            f"\n--- {p.name} ---\n" + "\n".join(p.read_text(errors="replace").splitlines()[-15:])
            for p in sorted((self.var_dir / "log").glob("*.log"))
        )

    def status(self) -> dict[str, Any]:
        """The supervisor's view: child name → pid, state, restarts, last exit."""
        status: dict[str, Any] = json.loads((self.var_dir / "run" / "gavel-up.json").read_text())
        return status

    def signal_child(self, name: str, signum: int) -> dict[str, Any]:
        """Send `signum` to one supervised child; returns its status entry from before."""
        before = self.status()[name]
        os.kill(before["pid"], signum)
        return dict(before)

    def interrupt(self, timeout: float = 60) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        remaining, _ = self.process.communicate(timeout=timeout)
        self.output.append(remaining)
        return self.process.returncode

    def all_ports(self) -> list[int]:
        extra = [self.http_port, self.nats_port, self.smtp_port, self.sms_port]
        return [p for pair in self.ports.values() for p in pair] + extra
