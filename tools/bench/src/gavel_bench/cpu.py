"""CPU used by each process during the measured window (Linux /proc), to see what saturates.

On a small machine the cluster and the load generator share the CPUs, so the question "is the
server slow or is the client?" is answered by how busy each process was: 100 % is one whole CPU.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# `python -m <service>.main <command>`: the process's name ("" = the service's own name).
WORKER_COMMANDS = {"serve": "", "project": "room-projector"}
_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Tracked:
    name: str
    pid: int


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds the process has used so far (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S  # utime, stime (fields 14 and 15)


def cluster_processes(var_dir: Path) -> list[Tracked]:
    """The processes of a cluster started with this var dir: its services and its nats-server."""
    var = str(var_dir.resolve())
    wanted_env = f"GAVEL_VAR_DIR={var}".encode()
    found: list[Tracked] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = [part.decode(errors="replace") for part in (entry / "cmdline").read_bytes().split(b"\0") if part]
            if not argv:
                continue
            if "nats-server" in Path(argv[0]).name and any(var in part for part in argv):
                found.append(Tracked("nats-server", int(entry.name)))
                continue
            command = WORKER_COMMANDS.keys() & set(argv)
            if "-m" in argv and command and wanted_env in (entry / "environ").read_bytes().split(b"\0"):
                service = argv[argv.index("-m") + 1].removesuffix(".main")
                found.append(Tracked(WORKER_COMMANDS[command.pop()] or service, int(entry.name)))
        except (OSError, IndexError):
            continue
    return sorted(found, key=lambda t: (t.name, t.pid))


class CpuMeter:
    """CPU share of each tracked process between `start()` and `stop()`, in % of one CPU."""

    def __init__(self, tracked: Iterable[Tracked]) -> None:
        self.tracked = list(tracked)
        self._started: dict[int, float] = {}
        self._wall = 0.0

    def start(self) -> None:
        self._wall = time.monotonic()
        for process in self.tracked:
            used = cpu_seconds(process.pid)
            if used is not None:
                self._started[process.pid] = used

    def stop(self) -> dict[str, float]:
        elapsed = max(1e-6, time.monotonic() - self._wall)
        shares: dict[str, float] = {}
        for process in self.tracked:
            used, began = cpu_seconds(process.pid), self._started.get(process.pid)
            if used is None or began is None:
                continue
            name = process.name
            number = 2
            while name in shares:  # several room replicas
                name = f"{process.name}-{number}"
                number += 1
            shares[name] = round(100 * (used - began) / elapsed, 1)
        return shares


def rss_bytes(pid: int) -> int | None:
    """The process's resident memory now (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class MemoryMeter:
    """Resident memory of each tracked process, sampled every `every_s` during the window: a soak's
    question is whether it stays flat once the load has settled (the second half of the window)."""

    def __init__(self, tracked: Iterable[Tracked], every_s: float = 5.0) -> None:
        self.tracked = list(tracked)
        self.every_s = every_s
        self.samples: dict[str, list[tuple[float, int]]] = {}
        self._next = 0.0

    def poll(self, now: float) -> None:
        if now < self._next:
            return
        self._next = now + self.every_s
        for process in self.tracked:
            rss = rss_bytes(process.pid)
            if rss is not None:
                self.samples.setdefault(f"{process.name}:{process.pid}", []).append((now, rss))

    def summary(self, bids_per_s: float) -> dict[str, dict[str, float]]:
        """Per process: MB at the start, end and peak, and growth over the second half of its samples
        (MB per minute, and bytes per acknowledged bid at the run's rate)."""
        found: dict[str, dict[str, float]] = {}
        for name, samples in self.samples.items():
            if len(samples) < 4:
                continue
            half = samples[len(samples) // 2 :]
            (t1, r1), (t2, r2) = half[0], half[-1]
            per_s = (r2 - r1) / max(1e-6, t2 - t1)
            found[name] = {
                "start_mb": round(samples[0][1] / 2**20, 1),
                "end_mb": round(samples[-1][1] / 2**20, 1),
                "max_mb": round(max(r for _, r in samples) / 2**20, 1),
                "growth_mb_per_min_second_half": round(per_s * 60 / 2**20, 2),
                "growth_bytes_per_bid_second_half": round(per_s / bids_per_s, 1) if bids_per_s else 0.0,
            }
        return found
