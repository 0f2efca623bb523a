"""What the figures were measured on (they mean little without it)."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from gavel_kit import natsserver


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError):
        pass
    return None


def _package(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _nats_server_version() -> str | None:
    try:
        result = subprocess.run(  # noqa: S603 — the venv's own nats-server binary
            [natsserver.binary(), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None


def code_revision() -> str | None:
    """Which Gavel was measured: GAVEL_BENCH_REVISION if set (a snapshot without .git), else the git
    commit of the checkout the room service is imported from, with "-dirty" for uncommitted changes."""
    given = os.environ.get("GAVEL_BENCH_REVISION")
    if given:
        return given
    try:
        import room

        where = Path(room.__file__).resolve().parent
        commit = subprocess.run(  # noqa: S603
            ["git", "-C", str(where), "rev-parse", "--short=12", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        changes = subprocess.run(  # noqa: S603
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if changes else "")


def machine_info() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "grpcio": _package("grpcio"),
        "nats_py": _package("nats-py"),
        "nats_server": _nats_server_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
