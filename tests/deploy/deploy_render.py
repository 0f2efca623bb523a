"""Render the kustomize overlays with kubectl, installing Debian's kubectl package when it is missing.

Used by the tests here (and by hand: `python tests/deploy/deploy_render.py dev`). A machine without kubectl
gets it with `apt-get update && apt-get install -y kubectl`; if that cannot happen the tests fail
with the reason rather than skip, since an unrendered overlay is an untested deployment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")


class KubectlUnavailable(RuntimeError):
    pass


def ensure_kubectl() -> str:
    """The path of kubectl, installed from Debian's packages first if there is none."""
    found = shutil.which("kubectl")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise KubectlUnavailable("kubectl is not installed and there is no apt-get to install it with")
    sudo: list[str] = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in ([apt, "update"], [apt, "install", "-y", "--no-install-recommends", "kubectl"]):
        result = subprocess.run([*sudo, *step], capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise KubectlUnavailable(f"`{' '.join(step)}` failed ({result.returncode}):\n{result.stderr[-2000:]}")
    found = shutil.which("kubectl")
    if not found:
        raise KubectlUnavailable("apt-get installed the kubectl package but no kubectl is on PATH")
    return found


def render(overlay: str) -> list[dict[str, Any]]:
    """Every object `kubectl kustomize deploy/k8s/overlays/<overlay>` renders."""
    result = subprocess.run(
        [ensure_kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {overlay} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def workloads(objects: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield obj


def containers(workload: dict[str, Any], *, init: bool = True) -> list[dict[str, Any]]:
    spec = workload["spec"]["template"]["spec"]
    return [*(spec.get("initContainers", []) if init else []), *spec["containers"]]


if __name__ == "__main__":
    sys.stdout.write(yaml.safe_dump_all(render(sys.argv[1] if len(sys.argv) > 1 else "dev")))
