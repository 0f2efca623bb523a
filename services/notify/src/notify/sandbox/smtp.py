"""A local SMTP server (aiosmtpd) that keeps every mail it receives as an .eml file.

`python -m notify.sandbox.smtp [--host 127.0.0.1] [--port 2525] [--dir var/outbox/mail]`; `gavel up`
starts it and points notify at it. Tests use `MailSink` in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import socket
import ssl
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from notify.sandbox.store import StoredMail, outbox_dir, read_mail

DEFAULT_PORT = 2525


class _Keep:
    def __init__(self, directory: Path, on_mail: Any = None) -> None:
        self.directory = directory
        self._numbers = itertools.count()
        self._on_mail = on_mail

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{time.time_ns()}-{next(self._numbers):06d}.eml"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(envelope.original_content or envelope.content)
        temporary.rename(path)  # readers never see half a mail
        if self._on_mail is not None:
            self._on_mail(path)
        return "250 Message accepted for delivery"


class MailSink:
    """An aiosmtpd server on `host:port` (0: any free port) keeping mails in `directory`."""

    def __init__(
        self, directory: Path, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
    ) -> None:
        self.directory = directory
        self._tls = tls  # offer STARTTLS with this context, and require it
        self._arrived = asyncio.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handler = _Keep(directory, self._notify)
        self.host = host
        self.port = port or _free_port(host)
        self._controller: Controller | None = None

    def _notify(self, path: Path) -> None:
        if self._loop is not None:  # handle_DATA runs on the controller's thread
            asyncio.run_coroutine_threadsafe(self._wake(), self._loop)

    async def _wake(self) -> None:
        async with self._arrived:
            self._arrived.notify_all()

    def start(self) -> MailSink:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        options: dict[str, Any] = {"tls_context": self._tls, "require_starttls": True} if self._tls else {}
        # A controller per start: stopping one closes its event loop.
        self._controller = Controller(self._handler, hostname=self.host, port=self.port, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def mails(self) -> list[StoredMail]:
        return [read_mail(path) for path in sorted(self.directory.glob("*.eml"))] if self.directory.is_dir() else []

    async def wait_for(self, count: int, within_s: float = 15) -> list[StoredMail]:
        """The first `count` mails, waiting for them to arrive."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.mails()) >= count), within_s)
        return self.mails()[:count]


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="notify.sandbox.smtp", description="Local SMTP server keeping every mail")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--dir", type=Path, default=outbox_dir() / "mail")
    args = parser.parse_args(argv)
    sink = MailSink(args.dir, args.host, args.port).start()
    print(f"SMTP sandbox on {args.host}:{sink.port}, mails kept in {args.dir}", flush=True)
    stop = asyncio.Event()

    async def wait() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    try:
        asyncio.run(wait())
    finally:
        sink.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
