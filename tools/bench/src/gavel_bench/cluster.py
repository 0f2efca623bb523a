"""The cluster a benchmark drives: one `gavel up --no-seed` it starts itself, or a running one.

A started cluster gets free loopback ports for every listener (so it never collides with a
developer's `gavel up` on the default ports), its own GAVEL_VAR_DIR under var/bench-<ts>/, and a
clean environment (no inherited GAVEL_* variable may point it at another NATS or database). It is
stopped like an operator would: SIGINT to `gavel up` (which drains the services, then NATS), and
SIGKILL to its process group if that takes too long.

Extra room replicas (`--room-replicas K`) are `python -m room.main serve` processes with their
own ports, replica id and var dir, on the same NATS and the same room database as the cluster's
room service; the failover run SIGKILLs and restarts them. The cluster's own room replica is never
killed, so the failover figures measure handover between replicas rather than `gavel up`'s
restarts (the fault suite measures those: docs/operations.md, "What survives what").
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from gavel_bench.access import ops_credentials, use_nats_credentials
from gavel_bench.processes import stop_popen
from gavel_kit import settings as gavel_settings
from gavel_kit.healthcheck import grpc_serving

LOOPBACK = "127.0.0.1"
GRPC_SERVICES = ("catalog", "room", "tender", "payment", "notify")
ROOM_SERVICE_NAME = "gavel.room.v1.RoomService"
READY_LINE = "Gavel is up."
STOP_GRACE_S = 45.0  # `gavel up` gives its services 20 s, then stops NATS
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Endpoints:
    """Where the benchmark finds the cluster."""

    catalog: str
    rooms: tuple[str, ...]
    nats_url: str
    keys_dir: str  # the cluster's signing keys (the gateway's signs the bench's tokens)


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """`count` distinct ports the kernel says are free right now (all bound at once, then released)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# The child asks the kernel for `signum` when its parent (this benchmark) dies, then becomes the real
# command (the request survives exec). Done in a tiny launcher rather than a preexec_fn because the
# benchmark has gRPC and queue threads running, and Python code between fork and exec is unsafe then.
_LAUNCHER = (
    "import ctypes, os, sys; "
    "ctypes.CDLL('libc.so.6').prctl({option}, {signum}); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


def with_parent_death_signal(argv: list[str], signum: int) -> list[str]:
    """`argv` (a `python …` command line) run so that it gets `signum` if the benchmark dies."""
    if not sys.platform.startswith("linux"):
        return argv
    launcher = _LAUNCHER.format(option=_PR_SET_PDEATHSIG, signum=int(signum))
    return [sys.executable, "-c", launcher, *argv[1:]]


def _clean_environment() -> dict[str, str]:
    """The inherited environment without GAVEL_* and OTEL_* settings, which belong to other clusters."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("GAVEL_", "OTEL_"))}


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class LocalCluster:
    """`gavel up --no-seed` on free ports with its own var dir; `start()` returns once it is up."""

    var_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def __post_init__(self) -> None:
        self.var_dir = self.var_dir.resolve()
        ports = iter(free_ports(2 * len(GRPC_SERVICES) + 8))
        env = _clean_environment()
        env["GAVEL_VAR_DIR"] = str(self.var_dir)
        env["GAVEL_HOST"] = LOOPBACK
        for name in GRPC_SERVICES:
            env[f"GAVEL_{name.upper()}_GRPC_PORT"] = str(next(ports))
            env[f"GAVEL_{name.upper()}_METRICS_PORT"] = str(next(ports))
        env["GAVEL_ROOM_PROJECTOR_GRPC_PORT"] = str(next(ports))
        env["GAVEL_ROOM_PROJECTOR_METRICS_PORT"] = str(next(ports))
        env["GAVEL_GATEWAY_HTTP_PORT"] = str(next(ports))
        env["GAVEL_EMBEDDED_NATS_PORT"] = str(next(ports))
        env["GAVEL_NOTIFY_SMTP_PORT"] = str(next(ports))  # notify's sandboxes, not the default ports
        env["GAVEL_NOTIFY_SMS_SANDBOX_PORT"] = str(next(ports))
        env["GAVEL_PAYMENT_SANDBOX_PORT"] = str(next(ports))  # and payment's
        env["GAVEL_PAYMENT_WEBHOOK_PORT"] = str(next(ports))
        env.pop("GAVEL_PAYMENT_PROVIDER_URL", None)
        env["PYTHONUNBUFFERED"] = "1"
        self.env = env

    @property
    def nats_url(self) -> str:
        return f"nats://{LOOPBACK}:{self.env['GAVEL_EMBEDDED_NATS_PORT']}"

    def address(self, service: str) -> str:
        return f"{LOOPBACK}:{self.env[f'GAVEL_{service.upper()}_GRPC_PORT']}"

    @property
    def room_database_url(self) -> str:
        return gavel_settings.default_database_url(self.var_dir, "room")

    def keys_dir(self) -> str:
        return str(self.var_dir / "keys")

    def endpoints(self) -> Endpoints:
        use_nats_credentials(ops_credentials(self.var_dir))
        return Endpoints(self.address("catalog"), (self.address("room"),), self.nats_url, self.keys_dir())

    def start(self, timeout_s: float = 240.0) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.var_dir / "gavel-up.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 — our own interpreter and CLI
                with_parent_death_signal(  # SIGINT: `gavel up` then stops its services in order
                    [sys.executable, "-m", "gavel_kit.cli", "up", "--no-seed", "--timeout", str(int(timeout_s))],
                    signal.SIGINT,
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,  # our Ctrl-C reaches only us; we stop it in order
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gavel up exited with {self.process.returncode}:\n{_tail(self.log_path)}")
            if READY_LINE in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.25)
        raise TimeoutError(f"gavel up was not ready within {timeout_s:.0f} s:\n{_tail(self.log_path)}")

    def stop(self) -> None:
        if self.process is not None:
            stop_popen(self.process, STOP_GRACE_S, group=True)


@dataclass
class RoomReplica:
    """One extra room replica process (its own ports, replica id and var dir)."""

    replica_id: str
    var_dir: Path
    env: dict[str, str]
    address: str
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with (self.var_dir / "room.log").open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 — our own interpreter and module
                with_parent_death_signal([sys.executable, "-m", "room.main", "serve"], signal.SIGKILL),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )

    def wait_serving(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise RuntimeError(
                    f"room replica {self.replica_id} exited with {code}:\n{_tail(self.var_dir / 'room.log')}"
                )
            if grpc_serving(self.address, ROOM_SERVICE_NAME):
                return
            time.sleep(0.2)
        raise TimeoutError(f"room replica {self.replica_id} was not SERVING within {timeout_s:.0f} s")

    def kill(self) -> None:
        """SIGKILL: the crash the failover run measures (no lease hand-back, no drain)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None:
            stop_popen(self.process, 15.0)


def room_replicas(
    count: int,
    var_dir: Path,
    base_env: dict[str, str],
    nats_url: str,
    room_database_url: str,
    keys_dir: str,
) -> list[RoomReplica]:
    """`count` extra room replicas configured like the cluster's (not started yet)."""
    replicas = []
    for index in range(1, count + 1):
        grpc_port, metrics_port = free_ports(2)
        env = dict(base_env)
        replica_dir = (var_dir / f"room-{index}").resolve()
        env.update(
            {
                "GAVEL_VAR_DIR": str(replica_dir),
                "GAVEL_NATS_URL": nats_url,
                "GAVEL_ROOM_DATABASE_URL": room_database_url,
                "GAVEL_KEYS_DIR": keys_dir,
                "GAVEL_NATS_CREDENTIALS_FILE": str(Path(keys_dir).parent / "secrets" / "nats" / "room.json"),
                "GAVEL_ROOM_GRPC_PORT": str(grpc_port),
                "GAVEL_ROOM_METRICS_PORT": str(metrics_port),
                "GAVEL_ROOM_REPLICA_ID": f"bench-room-{index}",
                "GAVEL_ROOM_PROJECTIONS": "false",  # the cluster's room-projector writes the reports
                "PYTHONUNBUFFERED": "1",
            }
        )
        replicas.append(RoomReplica(f"bench-room-{index}", replica_dir, env, f"{LOOPBACK}:{grpc_port}"))
    return replicas


def target_endpoints(
    catalog: str | None, rooms: list[str] | None, nats_url: str | None, keys_dir: str | None
) -> Endpoints:
    """A running cluster: explicit options, else what every Gavel process reads (GAVEL_* env, var/)."""
    settings = gavel_settings.load("cli")
    directory = Path(keys_dir) if keys_dir else settings.keys_dir
    if not (directory / "gateway.pem").exists():
        raise SystemExit(f"gavel bench: no gateway signing key in {directory}; pass --keys-dir")
    use_nats_credentials(settings.nats_credentials_file or ops_credentials(settings.var_dir))
    return Endpoints(
        catalog=catalog or settings.service_addresses["catalog"],
        rooms=tuple(rooms or [settings.service_addresses["room"]]),
        nats_url=nats_url or settings.nats_url,
        keys_dir=str(directory),
    )
