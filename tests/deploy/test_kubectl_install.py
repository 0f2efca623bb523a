"""Without kubectl the tests install Debian's package, and say why when they cannot."""

from __future__ import annotations

import subprocess
from typing import Any

import deploy_render
import pytest


def test_a_machine_without_kubectl_or_apt_get_fails_loudly(monkeypatch):
    monkeypatch.setattr(deploy_render.shutil, "which", lambda name: None)
    with pytest.raises(deploy_render.KubectlUnavailable, match="no apt-get"):
        deploy_render.ensure_kubectl()


def test_kubectl_is_installed_with_apt_get_when_missing(monkeypatch):
    installed: list[list[str]] = []

    def which(name: str) -> str | None:
        if name == "apt-get":
            return "/usr/bin/apt-get"
        return "/usr/bin/kubectl" if any("install" in step for step in installed) else None

    def run(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        installed.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(deploy_render.shutil, "which", which)
    monkeypatch.setattr(deploy_render.subprocess, "run", run)
    monkeypatch.setattr(deploy_render.os, "geteuid", lambda: 0)
    assert deploy_render.ensure_kubectl() == "/usr/bin/kubectl"
    assert installed == [
        ["/usr/bin/apt-get", "update"],
        ["/usr/bin/apt-get", "install", "-y", "--no-install-recommends", "kubectl"],
    ]


def test_a_failed_install_says_what_failed(monkeypatch):
    monkeypatch.setattr(deploy_render.shutil, "which", lambda name: "/usr/bin/apt-get" if name == "apt-get" else None)
    monkeypatch.setattr(
        deploy_render.subprocess, "run", lambda argv, **_: subprocess.CompletedProcess(argv, 100, "", "E: no network")
    )
    monkeypatch.setattr(deploy_render.os, "geteuid", lambda: 0)
    with pytest.raises(deploy_render.KubectlUnavailable, match="E: no network"):
        deploy_render.ensure_kubectl()
