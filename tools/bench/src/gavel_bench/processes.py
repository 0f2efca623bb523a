"""Stopping what the benchmark starts: SIGINT first (a clean shutdown), SIGKILL if that hangs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any


def stop_popen(process: subprocess.Popen[bytes], grace_s: float, *, group: bool = False) -> None:
    """SIGINT, then SIGKILL (to its whole process group when `group`) if it has not exited in `grace_s`."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    try:
        process.wait(grace_s)
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)


def stop_child(process: Any, grace_s: float = 10.0) -> None:
    """Join a multiprocessing child that should be finishing; SIGINT, then SIGKILL, if it does not."""
    if process.pid is None:  # never started
        return
    process.join(grace_s)
    if process.is_alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGINT)
        process.join(5)
    if process.is_alive():
        process.kill()
        process.join(5)
