"""`gavel up`: the whole cluster on this machine, as separate processes, on embedded defaults.

Starts an embedded nats-server (JetStream, `sync_interval: always`, store under var/nats) unless
`--nats-url` points elsewhere, runs every service's migrations, starts the five gRPC services, the
room-projector worker (the room's reports, off the bid path) and the gateway, waits until each
reports SERVING, seeds demo users and a demo sale, and prints the
URLs and credentials. Ctrl-C or SIGTERM stops the services gracefully, then NATS; children get
SIGKILL from the kernel if this process dies hard (PR_SET_PDEATHSIG), so nothing is orphaned.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gavel_kit import demo, keys, natsperms, natsserver
from gavel_kit import settings as gavel_settings

GRPC_SERVICES = ("catalog", "room", "tender", "payment", "notify")
# Worker processes: name → (service whose settings it shares, `python -m <service>.main` command).
WORKERS = {"room-projector": ("room", "project")}
EMBEDDED_NATS_PORT = 14222
_PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel SIGKILLs it if `gavel up` dies without cleaning up."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _ensure_keys(var_dir: Path) -> None:
    """Signing keys for the gateway and every service, and the JWKS, under var/keys (kept across runs)."""
    directory = Path(os.environ.get("GAVEL_KEYS_DIR") or var_dir / "keys")
    created = keys.KeyStore(directory, os.environ.get("GAVEL_JWT_ISSUER", keys.USER_ISSUER)).ensure(keys.SIGNERS)
    if created:
        print(f"• generated signing keys under {directory} for: {', '.join(created)}")


def _nats_users(var_dir: Path) -> list[natsperms.User]:
    """A NATS user per process kind, credentials under var/secrets/nats (never in argv or env)."""
    return natsserver.users_for(natsserver.write_credentials(var_dir / "secrets" / "nats", natsperms.USERS))


def _start(name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> Child:
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 — our own interpreter and modules
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
            preexec_fn=_die_with_parent,
        )
    return Child(name, process, log_path)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _grpc_serving(address: str, service: str) -> bool:
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 — loopback URL we built
            return bool(response.status == 200)
    except OSError:
        return False


class Cluster:
    def __init__(self, args: argparse.Namespace) -> None:
        base = gavel_settings.load("cli")
        self.var_dir = base.var_dir
        self.host = os.environ.get("GAVEL_HOST", "127.0.0.1")
        self.log_dir = self.var_dir / "log"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.nats: natsserver.NatsServer | None = None
        self.nats_url = args.nats_url or os.environ.get("GAVEL_NATS_URL") or ""
        self.database_url = args.database_url or os.environ.get("GAVEL_DATABASE_URL") or ""
        self.children: list[Child] = []
        self.seed = not args.no_seed
        self.timeout_s = args.timeout
        self.nats_port = int(os.environ.get("GAVEL_EMBEDDED_NATS_PORT") or EMBEDDED_NATS_PORT)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["GAVEL_VAR_DIR"] = str(self.var_dir)
        env["GAVEL_NATS_URL"] = self.nats_url
        _ensure_keys(self.var_dir)
        env.setdefault("GAVEL_LOG_FORMAT", "json")
        env["PYTHONUNBUFFERED"] = "1"
        env["GAVEL_ROOM_PROJECTIONS"] = "false"  # the room-projector process writes the room's reports
        if self.database_url:
            env["GAVEL_DATABASE_URL"] = self.database_url
        return env

    def check_ports(self, settings: Mapping[str, gavel_settings.Settings]) -> None:
        busy = [
            f"{name} {port}"
            for name, s in settings.items()
            for port in (s.grpc_port, s.metrics_port)
            if port and not _port_free(s.grpc_host, port)
        ]
        if busy:
            raise SystemExit(f"gavel up: ports already in use ({', '.join(busy)}) — is another cluster running?")

    def start(self) -> None:
        env = self.environment()
        settings = {name: gavel_settings.load(name, env) for name in (*GRPC_SERVICES, "gateway")}
        settings |= {name: gavel_settings.load(service, env, process=name) for name, (service, _) in WORKERS.items()}
        self.check_ports(settings)
        if not self.nats_url:
            if not _port_free(self.host, self.nats_port):
                raise SystemExit(f"gavel up: port {self.nats_port} is busy; stop the other cluster or pass --nats-url")
            print(f"• starting embedded nats-server (JetStream, fsync always) on {self.host}:{self.nats_port}")
            self.nats = natsserver.start(
                self.var_dir / "nats", host=self.host, port=self.nats_port, users=_nats_users(self.var_dir)
            )
            self.nats_url = self.nats.url
            env["GAVEL_NATS_URL"] = self.nats_url
        print("• running migrations")
        for name in (*GRPC_SERVICES, "gateway"):
            result = subprocess.run(  # noqa: S603
                [sys.executable, "-m", f"{name}.main", "migrate"], env=env, capture_output=True, check=False
            )
            if result.returncode != 0:
                sys.stderr.write(result.stderr.decode(errors="replace")[-4000:])
                raise SystemExit(f"gavel up: migrations of {name} failed")
        print("• starting services: " + ", ".join((*GRPC_SERVICES, *WORKERS, "gateway")))
        for name in (*GRPC_SERVICES, "gateway"):
            self.children.append(_start(name, [sys.executable, "-m", f"{name}.main", "serve"], env, self.log_dir))
        for name, (service, command) in WORKERS.items():
            self.children.append(_start(name, [sys.executable, "-m", f"{service}.main", command], env, self.log_dir))
        self.wait_ready(settings)
        if self.seed:
            print("• seeding demo users and a demo sale")
            self.credentials = demo.seed(env, settings)
        else:
            self.credentials = {}
        self.print_banner(settings)

    def wait_ready(self, settings: Mapping[str, gavel_settings.Settings]) -> None:
        pending = set(settings)
        deadline = time.monotonic() + self.timeout_s
        while pending and time.monotonic() < deadline:
            for child in self.children:
                if child.process.poll() is not None:
                    raise SystemExit(
                        f"gavel up: {child.name} exited with {child.process.returncode}; last log lines:\n"
                        + _tail(child.log_path)
                    )
            for name in sorted(pending):
                s = settings[name]
                if name == "gateway":
                    ok = _http_ok(f"http://{s.grpc_host}:{s.grpc_port}/healthz")
                else:
                    ok = _grpc_serving(f"{s.grpc_host}:{s.grpc_port}", s.grpc_service_name)  # "": a worker
                if ok:
                    pending.discard(name)
                    print(f"  ✓ {name} SERVING on {s.grpc_host}:{s.grpc_port}")
            time.sleep(0.2)
        if pending:
            raise SystemExit(
                f"gavel up: not ready after {self.timeout_s}s: {', '.join(sorted(pending))} (see {self.log_dir})"
            )

    def print_banner(self, settings: Mapping[str, gavel_settings.Settings]) -> None:
        gateway = settings["gateway"]
        lines = [
            "",
            "Gavel is up.",
            f"  web / HTTP API   http://{gateway.grpc_host}:{gateway.grpc_port}/   (OpenAPI: /docs, health: /healthz)",
        ]
        for name in GRPC_SERVICES:
            s = settings[name]
            lines.append(
                f"  {name:<8} gRPC   {s.grpc_host}:{s.grpc_port}   metrics http://{s.metrics_host}:{s.metrics_port}/metrics"
            )
        for name in WORKERS:
            s = settings[name]
            lines.append(
                f"  {name:<16} metrics http://{s.metrics_host}:{s.metrics_port}/metrics (health {s.grpc_port})"
            )
        lines.append(f"  NATS             {self.nats_url}")
        lines.append(f"  data and logs    {self.var_dir}")
        if self.credentials:
            lines.append("  demo users (email / password):")
            for role, (email, password) in self.credentials.items():
                lines.append(f"    {role:<11} {email} / {password}")
        lines.append("Ctrl-C stops everything.")
        print("\n".join(lines), flush=True)

    def stop(self) -> None:
        for child in self.children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for child in self.children:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(remaining)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait(5)
        if self.nats is not None:
            self.nats.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gavel up", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nats-url", default="", help="use this NATS (JetStream) server instead of the embedded one")
    parser.add_argument(
        "--database-url", default="", help="PostgreSQL URL for every service (default: SQLite under var/db)"
    )
    parser.add_argument("--no-seed", action="store_true", help="do not create the demo users and sale")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for every service to be SERVING")
    args = parser.parse_args(argv)
    cluster = Cluster(args)
    stop_requested = False

    def request_stop(signum: int, _: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        cluster.start()
        while not stop_requested:
            for child in cluster.children:
                if child.process.poll() is not None:
                    print(f"gavel up: {child.name} exited with {child.process.returncode}:\n{_tail(child.log_path)}")
                    stop_requested = True
            time.sleep(0.3)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        cluster.stop()
        return 1
    print("\nstopping…", flush=True)
    cluster.stop()
    print("stopped.")
    return 0
