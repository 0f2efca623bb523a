"""Typed settings, read from the environment here and nowhere else.

Every default is the embedded local cluster of DESIGN.md ("Ports and endpoints"), so a service runs
with no configuration at all; every value can be overridden by an environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Fixed default ports (DESIGN.md); each is overridable.
DEFAULT_GRPC_PORTS = {"catalog": 50051, "room": 50052, "tender": 50053, "payment": 50054, "notify": 50055}
DEFAULT_METRICS_PORTS = {"catalog": 9101, "room": 9102, "tender": 9103, "payment": 9104, "notify": 9105}
DEFAULT_GATEWAY_PORT = 8080
# Worker processes that belong to a service (its database and options) but listen on their own ports.
DEFAULT_WORKER_PORTS = {"room-projector": (50062, 9112)}
DEFAULT_NATS_URL = "nats://127.0.0.1:14222"
GRPC_SERVICE_NAMES = {
    "catalog": "gavel.catalog.v1.CatalogService",
    "room": "gavel.room.v1.RoomService",
    "tender": "gavel.tender.v1.TenderService",
    "payment": "gavel.payment.v1.PaymentService",
    "notify": "gavel.notify.v1.NotifyService",
}
MAX_ACCESS_TOKEN_TTL_S = 300  # gavel_kit.auth.MAX_TOKEN_LIFETIME_S: demotions take effect within it


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a Gavel process reads from its environment."""

    service: str
    environment: str  # "dev" or "production"
    var_dir: Path
    grpc_host: str
    grpc_port: int
    metrics_host: str
    metrics_port: int
    database_url: str
    nats_url: str
    nats_credentials_file: Path | None  # {"user", "password"} for NATS; None: connect without
    keys_dir: Path  # gavel_kit.keys: jwks.json and the signers' private keys
    jwks_file: Path  # the public keys every token is verified with
    signing_key_file: Path  # this process's own private key (its service identity; the gateway's user key)
    jwt_issuer: str  # the `iss` of user tokens
    jwt_audience: str
    access_token_ttl_s: int  # user access tokens and service tokens, at most MAX_ACCESS_TOKEN_TTL_S
    reflection: bool
    log_format: str  # "json" or "console"
    log_level: str
    shutdown_grace_s: float
    event_loop: str  # "uvloop" (default) or "asyncio"
    gc_thresholds: tuple[int, int, int] | None  # None: CPython's own (gavel_kit.garbage says why not)
    service_addresses: Mapping[str, str]  # service name → host:port, for clients
    options: Mapping[str, str]  # every GAVEL_<SERVICE>_<NAME> variable, keyed by NAME
    process: str = ""  # a worker of the service (e.g. room-projector); "" for the service itself
    outbox_retention_s: float = 24 * 3600  # published outbox rows are kept this long (>> the dedupe window)
    idempotency_retention_s: float = 7 * 24 * 3600  # stored answers to request ids are kept this long
    nats_replicas: int = 1  # JetStream replicas of every stream and bucket Gavel creates (3 in production)

    def option(self, name: str, default: str) -> str:
        """A service-specific setting, `GAVEL_<SERVICE>_<name>` (e.g. catalog's LOT_START_LEAD_MINUTES)."""
        return self.options.get(name.upper()) or default

    @property
    def grpc_address(self) -> str:
        return f"{self.grpc_host}:{self.grpc_port}"

    @property
    def grpc_service_name(self) -> str:
        """The service this process serves; a worker serves only health (and reflection)."""
        return "" if self.process else GRPC_SERVICE_NAMES.get(self.service, "")

    @property
    def readiness_name(self) -> str:
        """The gRPC health name that reports readiness: the service's own, or a worker's process name
        (a worker serves no API; "" is liveness for both, docs/operations.md)."""
        return self.process or GRPC_SERVICE_NAMES.get(self.service, "")

    @property
    def process_name(self) -> str:
        """What logs, traces and NATS connections call this process."""
        return self.process or self.service


def _event_loop(value: str) -> str:
    value = value.strip().lower()
    if value not in EVENT_LOOPS:
        raise ValueError(f"GAVEL_EVENT_LOOP must be one of {', '.join(EVENT_LOOPS)}, not {value!r}")
    return value


def parse_gc_thresholds(text: str) -> tuple[int, int, int] | None:
    """Three positive integers `g0,g1,g2`, or `default` for CPython's own (700,10,10)."""
    text = text.strip()
    if text.lower() == "default":
        return None
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 3 or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise ValueError(f"GAVEL_GC_THRESHOLDS must be three positive integers like 2000,10,100, not {text!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def default_database_url(var_dir: Path, service: str) -> str:
    return f"sqlite+aiosqlite:///{var_dir / 'db' / f'{service}.sqlite'}"


EVENT_LOOPS = ("uvloop", "asyncio")
DEFAULT_GC_THRESHOLDS = "2000,10,100"


def load(service: str, environ: Mapping[str, str] | None = None, *, process: str = "") -> Settings:
    """Read the settings of `service` (catalog, room, …, gateway, cli) from `environ` (default os.environ).

    Per-service variables (`GAVEL_CATALOG_GRPC_PORT`) win over shared ones (`GAVEL_DATABASE_URL`).
    A worker `process` of the service (one of DEFAULT_WORKER_PORTS, e.g. room-projector) shares the
    service's database and options but has its own ports (`GAVEL_ROOM_PROJECTOR_GRPC_PORT`).
    """
    env = os.environ if environ is None else environ
    prefix = f"GAVEL_{service.upper()}_"
    if process and process not in DEFAULT_WORKER_PORTS:
        raise ValueError(f"unknown worker process {process!r}; known: {', '.join(DEFAULT_WORKER_PORTS)}")
    port_prefix = f"GAVEL_{process.upper().replace('-', '_')}_" if process else prefix

    def get(name: str, default: str) -> str:
        return env.get(prefix + name) or env.get("GAVEL_" + name) or default

    var_dir = Path(env.get("GAVEL_VAR_DIR") or Path.cwd() / "var").resolve()
    environment = env.get("GAVEL_ENV", "dev")
    keys_dir = Path(env.get("GAVEL_KEYS_DIR") or var_dir / "keys")
    ttl_s = int(env.get("GAVEL_ACCESS_TOKEN_TTL_S") or MAX_ACCESS_TOKEN_TTL_S)
    if not 0 < ttl_s <= MAX_ACCESS_TOKEN_TTL_S:
        raise ValueError(f"GAVEL_ACCESS_TOKEN_TTL_S must be 1 to {MAX_ACCESS_TOKEN_TTL_S} seconds, not {ttl_s}")
    credentials = get("NATS_CREDENTIALS_FILE", "")
    if not credentials:  # `gavel up` writes one per NATS user under var/secrets/nats
        default_credentials = var_dir / "secrets" / "nats" / f"{(process or service)}.json"
        credentials = str(default_credentials) if default_credentials.exists() else ""
    host = env.get("GAVEL_HOST", "127.0.0.1")
    addresses = {
        name: env.get(f"GAVEL_{name.upper()}_ADDR") or f"{host}:{env.get(f'GAVEL_{name.upper()}_GRPC_PORT') or port}"
        for name, port in DEFAULT_GRPC_PORTS.items()
    }
    if process:
        grpc_default, metrics_default = DEFAULT_WORKER_PORTS[process]
    else:
        grpc_default = DEFAULT_GATEWAY_PORT if service == "gateway" else DEFAULT_GRPC_PORTS.get(service, 0)
        metrics_default = DEFAULT_METRICS_PORTS.get(service, 0)
    return Settings(
        service=service,
        environment=environment,
        var_dir=var_dir,
        grpc_host=env.get(prefix + "GRPC_HOST") or host,
        grpc_port=int(env.get(port_prefix + "GRPC_PORT") or (env.get(port_prefix + "HTTP_PORT") or grpc_default)),
        metrics_host=env.get("GAVEL_METRICS_HOST", host),
        metrics_port=int(env.get(port_prefix + "METRICS_PORT") or metrics_default),
        database_url=get("DATABASE_URL", default_database_url(var_dir, service)),
        nats_url=env.get("GAVEL_NATS_URL") or DEFAULT_NATS_URL,
        nats_credentials_file=Path(credentials) if credentials else None,
        keys_dir=keys_dir,
        jwks_file=Path(env.get("GAVEL_JWKS_FILE") or keys_dir / "jwks.json"),
        signing_key_file=Path(get("SIGNING_KEY_FILE", str(keys_dir / f"{service}.pem"))),
        jwt_issuer=env.get("GAVEL_JWT_ISSUER", "gavel"),
        jwt_audience=env.get("GAVEL_JWT_AUDIENCE", "gavel"),
        access_token_ttl_s=ttl_s,
        reflection=_flag(env.get("GAVEL_GRPC_REFLECTION"), default=True),
        log_format=env.get("GAVEL_LOG_FORMAT", "json"),
        log_level=env.get("GAVEL_LOG_LEVEL", "INFO").upper(),
        shutdown_grace_s=float(env.get("GAVEL_SHUTDOWN_GRACE_S", "5")),
        event_loop=_event_loop(env.get("GAVEL_EVENT_LOOP", "uvloop")),
        gc_thresholds=parse_gc_thresholds(env.get("GAVEL_GC_THRESHOLDS", DEFAULT_GC_THRESHOLDS)),
        service_addresses=addresses,
        options={key[len(prefix) :]: value for key, value in env.items() if key.startswith(prefix)},
        process=process,
        outbox_retention_s=float(get("OUTBOX_RETENTION_S", str(24 * 3600))),
        idempotency_retention_s=float(get("IDEMPOTENCY_RETENTION_S", str(7 * 24 * 3600))),
        nats_replicas=_replicas(env.get("GAVEL_NATS_REPLICAS", "1")),
    )


def _replicas(text: str) -> int:
    value = int(text.strip() or "1")
    if not 1 <= value <= 5:
        raise ValueError(f"GAVEL_NATS_REPLICAS must be between 1 and 5, not {value}")
    return value
