"""A nats-server of a benchmark's own (the cluster's config: JetStream, `sync_interval: always`),
its store in a temporary directory under the var dir, so the figures are for this machine's disk."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gavel_bench.cpu import Tracked
from gavel_kit import natsserver


@contextmanager
def own_nats_server(
    var_root: Path, name: str, say: Callable[[str], None], *, keep: bool = False
) -> Iterator[tuple[natsserver.NatsServer, Path, list[Tracked]]]:
    """The server, its store directory, and the processes to meter (it and this one); stopped and
    (unless `keep`) removed afterwards."""
    var_root.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=var_root)).resolve()
    say(f"• starting nats-server (JetStream, sync_interval: always), store under {data_dir}")
    server = natsserver.start(data_dir, server_name=f"gavel-{name}")
    try:
        yield server, data_dir, [Tracked("nats-server", server.process.pid), Tracked("bench", os.getpid())]
    finally:
        server.stop()
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)
