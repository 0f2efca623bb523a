"""What the manifests give each container is what the process reads (gavel_kit.settings and each
service's own options): its ports, where it finds the others, its environment, its drain time."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from deploy_render import OVERLAYS, ROOT, containers, workloads

from gavel_kit import settings as gavel_settings
from room.adapters import settings as room_settings

Obj = dict[str, Any]
GAVEL_IMAGE = re.compile(r"(?:^|/)gavel/(?P<service>[a-z]+)(?::|$)")
# The main.py commands (`python -m <svc>.main <command>`) each kind of process runs.
COMMANDS = {"serve": "", "migrate": "", "project": "room-projector"}
NATS_DRAIN_S = 5  # gavel_kit.service: the NATS drain after the gRPC grace period is bounded by 5 s
SANDBOXES = {"payment-sandbox", "mail-sandbox", "sms-sandbox"}  # PENDING issues 16/17: not checked here


def _dockerfile_env() -> dict[str, str]:
    """The ENV of the Dockerfile's runtime stage (what every container starts with)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    runtime = text.split(" AS runtime", 1)[1]
    env: dict[str, str] = {}
    for line in runtime.splitlines():
        if line.startswith("ENV "):
            env |= dict(pair.split("=", 1) for pair in line[4:].split())
    return env


def _shared_lookups(text: str) -> set[str]:
    """The NAMEs settings.py reads with its get("NAME"): GAVEL_<SVC>_NAME, else GAVEL_NAME."""
    return set(re.findall(r"(?<![.\w])get\(\"([A-Z_]+)\"", text))


def _read_names(path: Path) -> set[str]:
    """GAVEL_* names settings.py reads: its literals, and the shared form of its get() lookups."""
    text = path.read_text()
    return set(re.findall(r"\"(GAVEL_[A-Z_]+)\"", text)) | {f"GAVEL_{name}" for name in _shared_lookups(text)}


def _options_read(service: str) -> set[str]:
    """Every NAME a service's code reads with settings.option("NAME", …)."""
    names: set[str] = set()
    for path in (ROOT / "services" / service / "src").rglob("*.py"):
        names |= set(re.findall(r"option\(\s*\"([A-Z0-9_]+)\"", path.read_text()))
    return names


KIT_VARIABLES = _read_names(ROOT / "libs" / "src" / "gavel_kit" / "settings.py")
# GAVEL_<SVC>_<NAME> forms settings.py reads for every service.
PER_SERVICE = {"GRPC_PORT", "METRICS_PORT", "HTTP_PORT", "GRPC_HOST", "ADDR"} | _shared_lookups(
    (ROOT / "libs" / "src" / "gavel_kit" / "settings.py").read_text()
)


def _option_default(service: str, name: str) -> str:
    """The default a service's code gives settings.option(name, default)."""
    text = (ROOT / "services" / service / "src" / service / "main.py").read_text()
    match = re.search(rf"option\(\s*\"{name}\",\s*\"([^\"]*)\"", text)
    assert match, f"{service} reads no option {name}"
    return match.group(1)


# Listeners besides gRPC and metrics: payment's webhook receiver (GAVEL_PAYMENT_WEBHOOK_PORT).
EXTRA_PORTS: dict[str, dict[str, Any]] = {
    "payment": {"webhook": lambda s: int(s.option("WEBHOOK_PORT", _option_default("payment", "WEBHOOK_PORT")))},
}


def _config_maps(objects: list[Obj]) -> dict[str, dict[str, str]]:
    return {obj["metadata"]["name"]: obj.get("data", {}) for obj in objects if obj["kind"] == "ConfigMap"}


def _environment(container: Obj, objects: list[Obj]) -> dict[str, str]:
    """The container's environment as Kubernetes builds it; Secret and field values become stand-ins."""
    env = _dockerfile_env()
    maps = _config_maps(objects)
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= maps[source["configMapRef"]["name"]]
        elif "secretRef" in source:
            env |= _secret_data(objects, source["secretRef"]["name"])
    for item in container.get("env", []):
        if "value" in item:
            # $(VAR) refers to a variable defined earlier in the list, as the kubelet expands it.
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), item["value"])
        elif "secretKeyRef" in item["valueFrom"]:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = _secret_value(objects, ref["name"], ref["key"])
        elif "fieldRef" in item["valueFrom"]:
            env[item["name"]] = "pod-0"
    return env


def _secret_data(objects: list[Obj], name: str) -> dict[str, str]:
    """A rendered Secret's keys and values (dev); prod's come from an ExternalSecret: unknown here."""
    for obj in objects:
        if obj["kind"] == "Secret" and obj["metadata"]["name"] == name:
            return {key: base64.b64decode(value).decode() for key, value in obj["data"].items()}
    return {}


def _secret_value(objects: list[Obj], name: str, key: str) -> str:
    for obj in objects:
        if obj["kind"] == "Secret" and obj["metadata"]["name"] == name:
            return base64.b64decode(obj["data"][key]).decode()
    return f"secret-{name}-{key}"  # prod: the ExternalSecret fills it in


def _gavel_containers(objects: list[Obj]) -> list[tuple[Obj, Obj, str, str]]:
    """(workload, container, service, process) of every container running a Gavel image's main.py."""
    found = []
    for workload in workloads(objects):
        if workload["metadata"]["name"] in SANDBOXES:
            continue
        for container in containers(workload):
            match = GAVEL_IMAGE.search(container["image"])
            if match:
                assert "command" not in container, "the image's entry point runs python -m <svc>.main"
                command = container.get("args", ["serve"])[0]
                assert command in COMMANDS, container["name"]
                found.append((workload, container, match["service"], COMMANDS[command]))
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_gavel_image_is_a_service_with_a_main(rendered, overlay):
    for _, _, service, process in _gavel_containers(rendered[overlay]):
        assert (ROOT / "services" / service / "src" / service / "main.py").exists(), service
        if process:
            assert process in gavel_settings.DEFAULT_WORKER_PORTS
            assert "def project" in (ROOT / "services" / service / "src" / service / "main.py").read_text() or (
                '"project"' in (ROOT / "services" / service / "src" / service / "main.py").read_text()
            )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_gavel_variable_in_the_manifests_is_one_the_process_reads(rendered, overlay):
    workers = tuple(f"GAVEL_{w.upper().replace('-', '_')}_" for w in gavel_settings.DEFAULT_WORKER_PORTS)
    for workload, container, _, _ in _gavel_containers(rendered[overlay]):
        for name in _environment(container, rendered[overlay]):
            if not name.startswith("GAVEL_") or name in KIT_VARIABLES:
                continue
            if name.startswith(workers):  # a worker's own ports
                assert name.endswith(("_GRPC_PORT", "_METRICS_PORT")), name
                continue
            owner, _, option = name[len("GAVEL_") :].partition("_")
            where = f"{overlay} {workload['metadata']['name']}/{container['name']}: {name}"
            known_service = owner.lower() in gavel_settings.DEFAULT_GRPC_PORTS or owner == "GATEWAY"
            assert known_service, f"{where} names no service"
            if option in PER_SERVICE:
                continue
            # Options are read by the service they are named for; others only ignore them.
            assert option in _options_read(owner.lower()), f"{where} is read by no code"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ports_probes_and_addresses_are_the_ones_the_settings_give(rendered, overlay):
    objects = rendered[overlay]
    services = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "Service"}
    for workload, container, service, process in _gavel_containers(objects):
        where = f"{overlay} {workload['metadata']['name']}/{container['name']}"
        env = _environment(container, objects)
        s = gavel_settings.load(service, env, process=process)
        # Reachable by probes and peers inside the pod network.
        assert s.grpc_host == "0.0.0.0", where  # noqa: S104
        # dev: the in-cluster PostgreSQL; prod: whatever the Secret holds, never the SQLite default.
        assert s.database_url.startswith("postgresql://" if overlay == "dev" else "secret-gavel-database-"), where
        assert s.environment == ("dev" if overlay == "dev" else "production"), where
        if container in workload["spec"]["template"]["spec"].get("initContainers", []):
            continue
        if service == "room":
            room = room_settings.from_kit(s)  # the room's own options parse and are in range
            if not process:
                assert room.replica_id == "pod-0", "the replica id is the pod name"
                assert room.projections is False, "reports run in room-projector"
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        if service == "gateway":
            assert ports == {"http": s.grpc_port}, where
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        else:
            extra = {name: port(s) for name, port in EXTRA_PORTS.get(service, {}).items()}
            assert ports == {"grpc": s.grpc_port, "metrics": s.metrics_port, **extra}, where
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert container[probe]["grpc"]["port"] == s.grpc_port, f"{where} {probe}"
            # Readiness asks for the readiness name (a worker's is its process name); liveness for "".
            assert container["readinessProbe"]["grpc"]["service"] == s.readiness_name, where
            assert container["livenessProbe"]["grpc"]["service"] == "", where
            annotations = workload["spec"]["template"]["metadata"]["annotations"]
            assert int(annotations["prometheus.io/port"]) == s.metrics_port, where
        # Every address a client dials is a Service of this overlay on that port.
        for name, address in s.service_addresses.items():
            host, port = address.rsplit(":", 1)
            assert host in services, f"{where}: {name} at {address}"
            assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, f"{where}: {address}"
        if service != "gateway":
            nats = urlsplit(s.nats_url)
            assert nats.hostname in services, where
            assert nats.port in {p["port"] for p in services[nats.hostname]["spec"]["ports"]}, where
            assert nats.username == (process or service), f"{where}: connects as its own NATS user"
        if service == "notify" and overlay == "dev":
            # notify's mail and SMS go to the sandboxes' Services.
            sms = urlsplit(s.option("SMS_URL", ""))
            for host, port in ((s.option("SMTP_HOST", ""), int(s.option("SMTP_PORT", "0"))), (sms.hostname, sms.port)):
                assert host in services, f"{where}: {host}"
                assert port in {p["port"] for p in services[host]["spec"]["ports"]}, f"{where}: {host}:{port}"
        # The pod outlives the drain: preStop, then in-flight RPCs (grace), then the NATS drain.
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        budget = workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert budget >= pre_stop + s.shutdown_grace_s + NATS_DRAIN_S, where


def test_each_service_and_its_port_point_at_a_workload_listening_there(rendered):
    for overlay in OVERLAYS:
        objects = rendered[overlay]
        for svc in (obj for obj in objects if obj["kind"] == "Service"):
            selector = svc["spec"]["selector"]
            pods = [
                w for w in workloads(objects) if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
            ]
            assert pods, f"{overlay} Service {svc['metadata']['name']} selects nothing"
            named = {p["name"]: p["containerPort"] for w in pods for c in containers(w, init=False) for p in c["ports"]}
            for port in svc["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                assert target in named if isinstance(target, str) else target in named.values(), (
                    f"{overlay} Service {svc['metadata']['name']} port {port['name']}"
                )
                if isinstance(target, str):
                    assert named[target] == port["port"], f"{overlay} {svc['metadata']['name']}: port = containerPort"


def test_prod_replicates_streams_three_times_and_traces_to_the_collector(rendered):
    config = {
        overlay: next(data for name, data in _config_maps(rendered[overlay]).items() if name.startswith("gavel-config"))
        for overlay in OVERLAYS
    }
    prod = config["prod"] | {"GAVEL_JWT_SECRET": "x" * 40}  # from the Secret, required in production
    assert gavel_settings.load("room", prod).nats_replicas == 3
    assert config["prod"]["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4317")
    assert gavel_settings.load("room", config["dev"]).nats_replicas == 1
    assert config["dev"]["OTEL_TRACES_EXPORTER"] == "none"


def test_the_notify_sandboxes_run_modules_of_the_notify_image_on_their_container_ports(rendered):
    for workload in workloads(rendered["dev"]):
        if workload["metadata"]["name"] not in ("mail-sandbox", "sms-sandbox"):
            continue
        (container,) = containers(workload)
        assert GAVEL_IMAGE.search(container["image"])["service"] == "notify"
        python, dash_m, module, *args = container["command"]
        assert (python, dash_m) == ("python", "-m")
        assert (ROOT / "services" / "notify" / "src" / Path(*module.split(".")).with_suffix(".py")).exists(), module
        port = int(args[args.index("--port") + 1])
        assert [p["containerPort"] for p in container["ports"]] == [port]
        assert args[args.index("--host") + 1] == "0.0.0.0"  # noqa: S104 — reachable from notify's pod


def test_the_payment_sandbox_gets_only_variables_it_reads_and_shares_payments_secrets(rendered):
    objects = rendered["dev"]
    reads = set(re.findall(r"\"(GAVEL_[A-Z_]+)\"", (ROOT / "services/payment/src/payment/sandbox.py").read_text()))
    (sandbox,) = [w for w in workloads(objects) if w["metadata"]["name"] == "payment-sandbox"]
    (container,) = containers(sandbox)
    env = _environment(container, objects)
    assert {name for name in env if name.startswith("GAVEL_")} - set(_dockerfile_env()) <= reads
    assert int(env["GAVEL_PAYMENT_SANDBOX_PORT"]) == container["ports"][0]["containerPort"]
    (payment,) = [w for w in workloads(objects) if w["metadata"]["name"] == "payment"]
    payment_env = _environment(containers(payment, init=False)[0], objects)
    for shared in ("GAVEL_PAYMENT_PROVIDER_KEY", "GAVEL_PAYMENT_WEBHOOK_SECRET"):
        assert env[shared] == payment_env[shared]
    webhook = urlsplit(env["GAVEL_PAYMENT_SANDBOX_WEBHOOK_URL"])
    assert (webhook.hostname, webhook.port, webhook.path) == ("payment", 8054, "/webhooks/provider")
    provider = urlsplit(payment_env["GAVEL_PAYMENT_PROVIDER_URL"])
    assert (provider.hostname, provider.port) == ("payment-sandbox", container["ports"][0]["containerPort"])
