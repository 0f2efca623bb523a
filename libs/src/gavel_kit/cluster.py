"""`gavel up`: the whole cluster on this machine, as separate processes, supervised.

Starts an embedded nats-server (JetStream, `sync_interval: always`, store under var/nats) unless
`--nats-url` points elsewhere, runs every service's migrations, starts the five gRPC services, the
room-projector worker (the room's reports, off the bid path) and the gateway, waits until each is
ready (readiness: gRPC health of its service name, the gateway's /readyz), seeds demo users and a
demo sale, and prints the URLs and credentials.

Then it supervises (`Supervisor`): a child that exits — crashed, killed, or stopped by someone
else — is started again after a backoff (0.5 s, doubling to 10 s) while the others keep running;
the embedded nats-server too, on the same port and store. A child that keeps exiting soon after it
started (`CRASH_LOOP_RESTARTS` times in a row, each within `STABLE_AFTER_S`) is reported as a crash
loop and left stopped; the rest of the cluster goes on. Every change is printed and written to
var/run/gavel-up.json (each child's pid, state, restarts, last exit).

Ctrl-C or SIGTERM stops the services gracefully (each drains within its grace period), then NATS;
children get SIGKILL from the kernel if this process dies hard (PR_SET_PDEATHSIG), so nothing is
orphaned.

Adding a process (a sandbox provider, an SMTP server, …) is one `ProcessSpec` entry in
`Cluster.processes`: a name, the command, extra environment, how to tell it is ready.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gavel_kit import demo, keys, natsperms, natsserver
from gavel_kit import settings as gavel_settings

GRPC_SERVICES = ("catalog", "room", "tender", "payment", "notify")
# Worker processes: name → (service whose settings it shares, `python -m <service>.main` command).
WORKERS = {"room-projector": ("room", "project")}
# Local stand-ins for outside providers (notify's mail and SMS, docs/notify.md): name → (`python -m`
# module, the variable naming its port, the default port). notify is pointed at them; `gavel outbox`
# and the SMS sandbox's page show what they received.
SANDBOXES = {
    "smtp-sandbox": ("notify.sandbox.smtp", "GAVEL_NOTIFY_SMTP_PORT", 2525),
    "sms-sandbox": ("notify.sandbox.sms", "GAVEL_NOTIFY_SMS_SANDBOX_PORT", 8026),
    # the card provider payment talks to (docs/payment.md "The sandbox provider")
    "payment-sandbox": ("payment.sandbox", "GAVEL_PAYMENT_SANDBOX_PORT", 8095),
}
EMBEDDED_NATS_PORT = 14222
_PR_SET_PDEATHSIG = 1

FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 10.0
STABLE_AFTER_S = 30.0  # a run this long resets the crash count
CRASH_LOOP_RESTARTS = 5  # exits in a row, each within STABLE_AFTER_S of starting, before giving up
POLL_S = 0.1
STOP_TIMEOUT_S = 20.0


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel SIGKILLs it if `gavel up` dies without cleaning up."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


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


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def grpc_ready(address: str, service: str) -> Callable[[], bool]:
    """Readiness of a gRPC process: its health reports SERVING for `service`."""

    def check() -> bool:
        try:
            with grpc.insecure_channel(address) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
                return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
        except grpc.RpcError:
            return False

    return check


def http_ready(url: str) -> Callable[[], bool]:
    """Readiness of an HTTP process: `url` answers 200."""

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 — loopback URL we built
                return bool(response.status == 200)
        except OSError:
            return False

    return check


def port_ready(host: str, port: int) -> Callable[[], bool]:
    """Readiness of a process that only listens (a sandbox server): its port accepts connections."""

    def check() -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex((host, port)) == 0

    return check


@dataclass(frozen=True)
class ProcessSpec:
    """One process `gavel up` runs and supervises."""

    name: str
    argv: list[str]
    ready: Callable[[], bool] | None = None  # None: running is enough
    env: Mapping[str, str] = field(default_factory=dict)  # on top of the cluster's environment


class Child:
    """A supervised process: its current run, its restarts, and what the supervisor decided."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = "stopped"  # starting, ready, restarting (waiting for its backoff), gave-up, stopped
        self.pid: int | None = None
        self.started_at = 0.0
        self.ready_at: float | None = None
        self.quick_exits = 0  # exits in a row that came soon after starting
        self.restarts = 0
        self.restart_at: float | None = None
        self.last_exit: str | None = None

    # What a kind of child does: start a run, tell whether it still runs, stop it.
    def launch(self) -> None:
        raise NotImplementedError

    def exit_status(self) -> int | None:
        """None while running, else the exit status (negative: killed by that signal)."""
        raise NotImplementedError

    def is_ready(self) -> bool:
        return True

    def terminate(self) -> None:
        raise NotImplementedError

    def wait(self, timeout_s: float) -> bool:
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError

    def log_tail(self) -> str:
        return ""

    def status(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "state": self.state,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "started_at": self.started_at,
            "ready_at": self.ready_at,
        }


class ProcessChild(Child):
    def __init__(self, spec: ProcessSpec, env: Mapping[str, str], log_dir: Path) -> None:
        super().__init__(spec.name)
        self.spec = spec
        self._env = {**env, **spec.env}
        self.log_path = log_dir / f"{spec.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 — our own interpreter and modules
                self.spec.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env,
                start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
                preexec_fn=_die_with_parent,
            )
        self.pid = self.process.pid

    def exit_status(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def is_ready(self) -> bool:
        return self.spec.ready is None or self.spec.ready()

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float) -> bool:
        if self.process is None:
            return True
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def log_tail(self) -> str:
        return _tail(self.log_path)


class EmbeddedNats(Child):
    """The embedded nats-server: started again on the same port and store when it dies."""

    def __init__(self, data_dir: Path, host: str, port: int) -> None:
        super().__init__("nats-server")
        self._data_dir = data_dir
        self._host = host
        self._port = port
        self.server: natsserver.NatsServer | None = None

    @property
    def url(self) -> str:
        return f"nats://{self._host}:{self._port}"

    def launch(self) -> None:
        self.server = natsserver.start(  # returns once it listens; authentication and per-service permissions
            self._data_dir, host=self._host, port=self._port, users=_nats_users(self._data_dir.parent)
        )
        self.pid = self.server.process.pid

    def exit_status(self) -> int | None:
        return None if self.server is None else self.server.process.poll()

    def terminate(self) -> None:
        if self.server is not None and self.server.process.poll() is None:
            self.server.process.terminate()

    def wait(self, timeout_s: float) -> bool:
        if self.server is None:
            return True
        try:
            self.server.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        if self.server is not None:
            self.server.kill()

    def log_tail(self) -> str:
        return _tail(self._data_dir / "nats-server.log")


def _describe_exit(status: int) -> str:
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-status).name}"
        return f"killed by signal {-status}"
    return f"exit status {status}"


class Supervisor:
    """Keeps the children running: restarts with backoff, gives up on a crash loop, stops in order."""

    def __init__(self, children: list[Child], status_path: Path, say: Callable[[str], None] = print) -> None:
        self.children = children
        self._status_path = status_path
        self._say = say

    def start(self, child: Child) -> None:
        child.state = "starting"
        child.started_at = time.monotonic()
        child.ready_at = None
        child.restart_at = None
        try:
            child.launch()
        except Exception as exc:  # e.g. nats-server refusing to start: counts as a quick exit
            child.last_exit = f"could not start: {exc}"
            self._exited(child, time.monotonic())
        self.write_status()

    def _exited(self, child: Child, now: float) -> None:
        quick = now - child.started_at < STABLE_AFTER_S
        child.quick_exits = child.quick_exits + 1 if quick else 1
        child.pid = None
        if child.quick_exits >= CRASH_LOOP_RESTARTS:
            child.state = "gave-up"
            self._say(
                f"gavel up: {child.name} is in a crash loop ({child.quick_exits} exits in a row, each within "
                f"{STABLE_AFTER_S:g} s of starting; last: {child.last_exit}); giving up on it. Last log lines:\n"
                + child.log_tail()
            )
            return
        delay = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (child.quick_exits - 1))
        child.state = "restarting"
        child.restart_at = now + delay
        self._say(f"gavel up: {child.name} exited ({child.last_exit}); restarting it in {delay:g} s")

    def step(self) -> None:
        """One round: notice exits, start what is due, notice readiness."""
        now = time.monotonic()
        changed = False
        for child in self.children:
            if child.state in ("starting", "ready"):
                status = child.exit_status()
                if status is not None:
                    child.last_exit = _describe_exit(status)
                    self._exited(child, now)
                    changed = True
                elif child.state == "starting" and child.is_ready():
                    child.state = "ready"
                    child.ready_at = time.monotonic()
                    if child.restarts:
                        took = child.ready_at - child.started_at
                        self._say(f"gavel up: {child.name} ready again ({took:.1f} s after its restart)")
                    changed = True
            elif child.state == "restarting" and child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                self.start(child)
        if changed:
            self.write_status()

    def stop(self) -> None:
        """SIGTERM to every child (NATS last), wait for each to drain, SIGKILL what does not."""
        services = [c for c in self.children if not isinstance(c, EmbeddedNats)]
        for group in (services, [c for c in self.children if isinstance(c, EmbeddedNats)]):
            for child in group:
                child.terminate()
            deadline = time.monotonic() + STOP_TIMEOUT_S
            for child in group:
                if not child.wait(max(0.1, deadline - time.monotonic())):
                    child.kill()
                child.state = "stopped"
                child.pid = None
        self.write_status()

    def write_status(self) -> None:
        status = {child.name: child.status() for child in self.children}
        with contextlib.suppress(OSError):
            self._status_path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._status_path.with_suffix(".tmp")
            temporary.write_text(json.dumps(status, indent=2))
            temporary.replace(self._status_path)


class Cluster:
    def __init__(self, args: argparse.Namespace) -> None:
        base = gavel_settings.load("cli")
        self.var_dir = base.var_dir
        self.host = os.environ.get("GAVEL_HOST", "127.0.0.1")
        self.log_dir = self.var_dir / "log"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.nats: EmbeddedNats | None = None
        self.nats_url = args.nats_url or os.environ.get("GAVEL_NATS_URL") or ""
        self.database_url = args.database_url or os.environ.get("GAVEL_DATABASE_URL") or ""
        self.seed = not args.no_seed
        self.timeout_s = args.timeout
        self.nats_port = int(os.environ.get("GAVEL_EMBEDDED_NATS_PORT") or EMBEDDED_NATS_PORT)
        self.supervisor = Supervisor([], self.var_dir / "run" / "gavel-up.json")
        self.credentials: dict[str, tuple[str, str]] = {}
        self.stop_requested = False
        self.outbox_url = ""
        self.sandbox_ports: dict[str, int] = {}
        self.provider_url = ""

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

    def settings(self, env: Mapping[str, str]) -> dict[str, gavel_settings.Settings]:
        found = {name: gavel_settings.load(name, env) for name in (*GRPC_SERVICES, "gateway")}
        found |= {name: gavel_settings.load(service, env, process=name) for name, (service, _) in WORKERS.items()}
        return found

    def processes(self, settings: Mapping[str, gavel_settings.Settings]) -> list[ProcessSpec]:
        """Every process of the cluster besides NATS, in start order (one entry each)."""

        def python(*args: str) -> list[str]:
            return [sys.executable, "-m", *args]

        specs = [  # the sandboxes first: notify is pointed at them
            ProcessSpec(
                name,
                python(module, "--host", self.host, "--port", str(self.sandbox_ports[name])),
                port_ready(self.host, self.sandbox_ports[name]),
            )
            for name, (module, _, _) in SANDBOXES.items()
        ]
        specs += [
            ProcessSpec(
                name,
                python(f"{name}.main", "serve"),
                grpc_ready(settings[name].grpc_address, settings[name].readiness_name),
            )
            for name in GRPC_SERVICES
        ]
        gateway = settings["gateway"]
        specs.append(
            ProcessSpec("gateway", python("gateway.main", "serve"), http_ready(f"http://{gateway.grpc_address}/readyz"))
        )
        specs += [
            ProcessSpec(
                name,
                python(f"{service}.main", command),
                grpc_ready(settings[name].grpc_address, settings[name].readiness_name),
            )
            for name, (service, command) in WORKERS.items()
        ]
        return specs

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
        settings = self.settings(env)
        self.check_ports(settings)
        if not self.nats_url:
            if not _port_free(self.host, self.nats_port):
                raise SystemExit(f"gavel up: port {self.nats_port} is busy; stop the other cluster or pass --nats-url")
            print(f"• starting embedded nats-server (JetStream, fsync always) on {self.host}:{self.nats_port}")
            self.nats = EmbeddedNats(self.var_dir / "nats", self.host, self.nats_port)
            self.supervisor.children.append(self.nats)
            self.supervisor.start(self.nats)
            if self.nats.state != "starting":
                raise SystemExit(f"gavel up: nats-server did not start ({self.nats.last_exit})")
            self.nats_url = self.nats.url
            env["GAVEL_NATS_URL"] = self.nats_url
        self.prepare_sandboxes(env)
        print("• running migrations")
        for name in (*GRPC_SERVICES, "gateway"):
            result = subprocess.run(  # noqa: S603
                [sys.executable, "-m", f"{name}.main", "migrate"], env=env, capture_output=True, check=False
            )
            if result.returncode != 0:
                sys.stderr.write(result.stderr.decode(errors="replace")[-4000:])
                raise SystemExit(f"gavel up: migrations of {name} failed")
        specs = self.processes(settings)
        print("• starting services: " + ", ".join(spec.name for spec in specs))
        for spec in specs:
            child = ProcessChild(spec, env, self.log_dir)
            self.supervisor.children.append(child)
            self.supervisor.start(child)
        self.wait_ready(settings)
        if self.seed and not self.stop_requested:
            print("• seeding demo users and a demo sale")
            self.credentials = demo.seed(env, settings)
        self.print_banner(settings)

    def prepare_sandboxes(self, env: dict[str, str]) -> None:
        """Pick the sandboxes' ports and point notify at them."""
        ports: dict[str, int] = {}
        for name, (_, variable, default) in SANDBOXES.items():
            if env.get(variable):
                ports[name] = int(env[variable])
                if not _port_free(self.host, ports[name]):
                    raise SystemExit(f"gavel up: port {ports[name]} ({name}) is busy — is another cluster running?")
            else:  # the usual port, or any free one when another cluster (a test, a bench run) holds it
                ports[name] = default if _port_free(self.host, default) else _free_port(self.host)
                env[variable] = str(ports[name])
        env.setdefault("GAVEL_NOTIFY_SMS_URL", f"http://{self.host}:{ports['sms-sandbox']}")
        self.outbox_url = f"http://{self.host}:{ports['sms-sandbox']}/"
        self.sandbox_ports = ports
        self.provider_url = env.setdefault(
            "GAVEL_PAYMENT_PROVIDER_URL", f"http://{self.host}:{ports['payment-sandbox']}"
        )

    def wait_ready(self, settings: Mapping[str, gavel_settings.Settings]) -> None:
        """Until every child is ready (children that exit meanwhile are restarted); a child that
        gives up fails the start."""
        announced: set[str] = set()
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline and not self.stop_requested:
            self.supervisor.step()
            for child in self.supervisor.children:
                if child.state == "gave-up":
                    raise SystemExit(f"gavel up: {child.name} could not start (see {self.log_dir})")
                if child.state == "ready" and child.name not in announced and child.name in settings:
                    announced.add(child.name)
                    s = settings[child.name]
                    print(f"  ✓ {child.name} ready on {s.grpc_host}:{s.grpc_port}")
            if all(child.state == "ready" for child in self.supervisor.children):
                return
            time.sleep(POLL_S)
        if self.stop_requested:
            return
        pending = sorted(c.name for c in self.supervisor.children if c.state != "ready")
        raise SystemExit(f"gavel up: not ready after {self.timeout_s}s: {', '.join(pending)} (see {self.log_dir})")

    def supervise(self) -> None:
        while not self.stop_requested:
            self.supervisor.step()
            time.sleep(POLL_S)

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
        lines.append(f"  outbox           {self.outbox_url} or `gavel outbox` (what notify sent: mail and SMS)")
        lines.append(f"  card sandbox     {self.provider_url} (test cards: docs/payment.md)")
        lines.append(f"  data and logs    {self.var_dir}")
        if self.credentials:
            lines.append("  demo users (email / password):")
            for role, (email, password) in self.credentials.items():
                lines.append(f"    {role:<11} {email} / {password}")
        lines.append("Supervising: a process that exits is started again (var/run/gavel-up.json).")
        lines.append("Ctrl-C stops everything.")
        print("\n".join(lines), flush=True)

    def stop(self) -> None:
        self.supervisor.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gavel up", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nats-url", default="", help="use this NATS (JetStream) server instead of the embedded one")
    parser.add_argument(
        "--database-url", default="", help="PostgreSQL URL for every service (default: SQLite under var/db)"
    )
    parser.add_argument("--no-seed", action="store_true", help="do not create the demo users and sale")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for every service to be ready")
    args = parser.parse_args(argv)
    cluster = Cluster(args)

    def request_stop(signum: int, _: object) -> None:
        cluster.stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        cluster.start()
        cluster.supervise()
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        cluster.stop()
        return 1
    print("\nstopping…", flush=True)
    cluster.stop()
    print("stopped.")
    return 0
