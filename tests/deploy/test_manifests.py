"""The Kubernetes overlays render, validate against the API schemas, and hold what ops rely on."""

from __future__ import annotations

from typing import Any

import pytest
from deploy_render import OVERLAYS, containers, workloads
from kubernetes_validate import utils as kubernetes_validate

# A current release (kubernetes-validate ships the schemas of every release up to its own).
KUBERNETES_VERSION = "1.35.0"
# Custom resources of operators the prod overlay expects; no schema for them ships with Kubernetes.
CUSTOM_KINDS = {("external-secrets.io/v1", "ExternalSecret"), ("monitoring.coreos.com/v1", "ServiceMonitor")}

Obj = dict[str, Any]


def _all(rendered: dict[str, list[Obj]]) -> list[tuple[str, Obj]]:
    return [(overlay, obj) for overlay in OVERLAYS for obj in rendered[overlay]]


def _name(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def test_both_overlays_render_every_component(rendered):
    for overlay in OVERLAYS:
        names = {_name(obj) for obj in workloads(rendered[overlay])}
        for component in ("catalog", "room-projector", "tender", "payment", "notify", "gateway"):
            assert f"Deployment/{component}" in names, overlay
        assert {"StatefulSet/room", "StatefulSet/nats"} <= names, overlay
    dev = {_name(obj) for obj in rendered["dev"]}
    prod = {_name(obj) for obj in rendered["prod"]}
    assert {"StatefulSet/postgres", "Deployment/payment-sandbox", "Deployment/mail-sandbox"} <= dev
    assert "Deployment/sms-sandbox" in dev
    assert not any("postgres" in name or "sandbox" in name for name in prod)


def test_every_object_validates_strictly_against_the_kubernetes_schemas(rendered):
    failures = []
    for overlay, obj in _all(rendered):
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            assert obj["metadata"]["name"], _name(obj)
            assert obj["spec"], _name(obj)
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{overlay} {_name(obj)}: {'.'.join(map(str, exc.path))}: {exc.message}")
    assert not failures, "\n".join(failures)


def test_custom_resources_are_only_the_expected_operators(rendered):
    kinds = {(obj["apiVersion"], obj["kind"]) for _, obj in _all(rendered)}
    unknown = {kind for kind in kinds if "." in kind[0].split("/")[0] and kind not in CUSTOM_KINDS}
    known_groups = ("apps", "policy", "autoscaling", "networking.k8s.io", "batch")
    assert {kind for kind in unknown if not kind[0].startswith(known_groups)} == set()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_is_locked_down_and_has_probes_and_resources(rendered, overlay):
    for workload in workloads(rendered[overlay]):
        name = _name(workload)
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["serviceAccountName"], name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert any(
            c["topologyKey"] == "topology.kubernetes.io/zone" for c in pod.get("topologySpreadConstraints", [])
        ), name
        volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
        claims = {claim["metadata"]["name"] for claim in workload["spec"].get("volumeClaimTemplates", [])}
        for container in containers(workload):
            where = f"{name} {container['name']}"
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) >= {"cpu", "memory"}, where
            # The only writable paths are scratch volumes or the workload's own claims.
            for mount in container.get("volumeMounts", []):
                if not mount.get("readOnly"):
                    volume = volumes.get(mount["name"], {})
                    assert "emptyDir" in volume or mount["name"] in claims, f"{where} {mount['mountPath']}"
        for container in containers(workload, init=False):
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in container, f"{name} {container['name']} has no {probe}"


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        present = expression["key"] in labels
        match expression["operator"]:
            case "In":
                ok = present and labels[expression["key"]] in expression["values"]
            case "NotIn":
                ok = not present or labels[expression["key"]] not in expression["values"]
            case "Exists":
                ok = present
            case _:
                ok = not present
        if not ok:
            return False
    return True


def _policies(objects: list[Obj]) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] == "NetworkPolicy"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_traffic_is_denied_by_default_and_every_workload_has_its_own_policy(rendered, overlay):
    policies = _policies(rendered[overlay])
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")]
    assert any(set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"} and "egress" not in p["spec"] for p in deny)
    for workload in workloads(rendered[overlay]):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        own = [p for p in policies if p["spec"]["podSelector"] and _selects(p["spec"]["podSelector"], labels)]
        assert own, f"no NetworkPolicy selects {_name(workload)}"


def _peers(rule: Obj, key: str, pods: dict[str, dict[str, str]]) -> set[str] | None:
    """The workloads of this namespace a rule's peers name (None: a peer outside it, e.g. a namespace)."""
    names: set[str] = set()
    for peer in rule.get(key, []):
        if "namespaceSelector" in peer or "ipBlock" in peer:
            continue
        names |= {name for name, labels in pods.items() if _selects(peer["podSelector"], labels)}
    return names


def _allowed(objects: list[Obj]) -> set[tuple[str, str, int]]:
    """(source, destination, port) between this namespace's workloads that both sides' policies allow."""
    pods = {obj["metadata"]["name"]: obj["spec"]["template"]["metadata"]["labels"] for obj in workloads(objects)}
    ingress: set[tuple[str, str, int]] = set()
    egress: set[tuple[str, str, int]] = set()
    for policy in _policies(objects):
        selected = [name for name, labels in pods.items() if _selects(policy["spec"]["podSelector"], labels)]
        for rule in policy["spec"].get("ingress", []):
            sources = _peers(rule, "from", pods) or set()
            for port in rule.get("ports", []):
                ingress |= {(src, dst, port["port"]) for src in sources for dst in selected}
        for rule in policy["spec"].get("egress", []):
            targets = _peers(rule, "to", pods) or set()
            for port in rule.get("ports", []):
                egress |= {(src, dst, port["port"]) for src in selected for dst in targets if port["port"] != 53}
    return ingress & egress


SERVICES = ("catalog", "room", "room-projector", "tender", "payment", "notify")
REAL_PATHS = (
    {("gateway", svc, port) for svc, port in [("catalog", 50051), ("room", 50052), ("tender", 50053)]}
    | {("gateway", "payment", 50054), ("gateway", "notify", 50055)}
    | {("room", "catalog", 50051), ("room-projector", "catalog", 50051)}
    | {(svc, "nats", 4222) for svc in SERVICES}
    | {("nats", "nats", 6222)}
)


def test_the_network_allows_exactly_the_real_paths_between_workloads(rendered):
    database = {(svc, "postgres", 5432) for svc in (*SERVICES, "gateway")}
    sandboxes = {
        ("payment", "payment-sandbox", 8095),
        ("payment-sandbox", "payment", 8054),
        ("notify", "mail-sandbox", 2525),
    }
    sandboxes.add(("notify", "sms-sandbox", 8026))
    assert _allowed(rendered["dev"]) == REAL_PATHS | database | sandboxes
    assert _allowed(rendered["prod"]) == REAL_PATHS


def test_prometheus_may_scrape_every_metrics_port(rendered):
    for overlay in OVERLAYS:
        scrapable = set()
        for policy in _policies(rendered[overlay]):
            for rule in policy["spec"].get("ingress", []):
                if any(
                    peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                    == "monitoring"
                    for peer in rule["from"]
                ):
                    scrapable |= {port["port"] for port in rule["ports"]}
        for workload in workloads(rendered[overlay]):
            annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
            if annotations.get("prometheus.io/scrape") == "true":
                assert int(annotations["prometheus.io/port"]) in scrapable, _name(workload)


def test_autoscalers_and_disruption_budgets_point_at_real_workloads(rendered):
    for overlay in OVERLAYS:
        objects = rendered[overlay]
        by_kind = {(obj["kind"], obj["metadata"]["name"]) for obj in workloads(objects)}
        for hpa in (obj for obj in objects if obj["kind"] == "HorizontalPodAutoscaler"):
            target = hpa["spec"]["scaleTargetRef"]
            assert (target["kind"], target["name"]) in by_kind, _name(hpa)
        for pdb in (obj for obj in objects if obj["kind"] == "PodDisruptionBudget"):
            assert any(
                _selects(pdb["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])
                for w in workloads(objects)
            ), _name(pdb)
    hpas = {
        obj["spec"]["scaleTargetRef"]["name"] for obj in rendered["prod"] if obj["kind"] == "HorizontalPodAutoscaler"
    }
    assert hpas == {"room", "gateway"}


def test_every_secret_a_workload_reads_exists_in_its_overlay(rendered):
    for overlay in OVERLAYS:
        objects = rendered[overlay]
        provided = {obj["metadata"]["name"] for obj in objects if obj["kind"] == "Secret"}
        provided |= {obj["spec"]["target"]["name"] for obj in objects if obj["kind"] == "ExternalSecret"}
        for workload in workloads(objects):
            for container in containers(workload):
                refs = [
                    e["valueFrom"]["secretKeyRef"]["name"]
                    for e in container.get("env", [])
                    if "secretKeyRef" in e.get("valueFrom", {})
                ]
                refs += [e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e]
                for ref in refs:
                    assert ref in provided, f"{overlay} {_name(workload)} reads Secret {ref}"


def test_every_ingress_path_reaches_a_named_port_of_a_service(rendered):
    for overlay in OVERLAYS:
        objects = rendered[overlay]
        ports = {
            obj["metadata"]["name"]: {port["name"] for port in obj["spec"]["ports"]}
            for obj in objects
            if obj["kind"] == "Service"
        }
        for ingress in (obj for obj in objects if obj["kind"] == "Ingress"):
            assert ingress["spec"]["tls"], _name(ingress)
            for rule in ingress["spec"]["rules"]:
                for path in rule["http"]["paths"]:
                    backend = path["backend"]["service"]
                    assert backend["port"]["name"] in ports.get(backend["name"], set()), path["path"]
