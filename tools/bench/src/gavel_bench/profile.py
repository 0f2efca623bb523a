"""Where the room's time goes under load: py-spy on the room process during the measured window.

Optional (`--profile-room S`): py-spy is not a dependency of Gavel (`.venv/bin/pip install py-spy`
to use it). It samples the running room replica from outside (`--nonblocking`: the process is not
paused, so the load is not disturbed) and writes the raw stacks; the summary in the JSON lists the
frames with the largest share of samples, by self time (the frame itself was running) and
inclusive time (the frame was on the stack). Samples of idle threads are not recorded, so the
shares are of the time the process was busy.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

SAMPLES_PER_S = 100
TOP_FRAMES = 60


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def find_room_process(var_dir: Path) -> int | None:
    """The pid of the room replica `gavel up` started with this var dir (Linux /proc)."""
    wanted = f"GAVEL_VAR_DIR={var_dir.resolve()}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            if b"room.main" not in command or b"serve" not in command:
                continue
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                return int(entry.name)
        except OSError:
            continue
    return None


def start(pid: int, seconds: float, raw_path: Path) -> subprocess.Popen[bytes] | None:
    binary = py_spy()
    if binary is None:
        return None
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    command = [binary, "record", "-p", str(pid), "-d", str(max(1, int(seconds))), "-r", str(SAMPLES_PER_S)]
    command += ["-f", "raw", "-o", str(raw_path), "--nonblocking"]
    return subprocess.Popen(  # noqa: S603 — py-spy from the venv or PATH, on our own child
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )


def summarize(raw_path: Path, top: int = TOP_FRAMES) -> dict[str, Any]:
    """Top frames by self and inclusive share of the samples in a py-spy raw (collapsed) file."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        own[frames[-1]] += samples
        for frame in set(frames):
            anywhere[frame] += samples

    def shares(counter: Counter[str]) -> list[list[Any]]:
        return [[round(100 * n / total, 1), frame] for frame, n in counter.most_common(top)] if total else []

    return {"samples": total, "self_percent": shares(own), "inclusive_percent": shares(anywhere)}
