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


def _config_maps(objects: list[Obj]) -> dict[str, dict[str, str]]:
    return {obj["metadata"]["name"]: obj.get("data", {}) for obj in objects if obj["kind"] == "ConfigMap"}


def _environment(container: Obj, objects: list[Obj]) -> dict[str, str]:
    """The container's environment as Kubernetes builds it; Secret and field values become stand-ins."""
    env = _dockerfile_env()
    maps = _config_maps(objects)
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= maps[source["configMapRef"]["name"]]
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
            assert ports == {"grpc": s.grpc_port, "metrics": s.metrics_port}, where
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert container[probe]["grpc"]["port"] == s.grpc_port, f"{where} {probe}"
            # Readiness asks for the service name (a worker serves only ""); liveness asks for "".
            assert container["readinessProbe"]["grpc"]["service"] == s.grpc_service_name, where
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
