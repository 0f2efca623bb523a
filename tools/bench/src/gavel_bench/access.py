"""How the benchmark gets in: NATS as the read-only `ops` user, tokens signed with the gateway's key.

The benchmark is an operator's tool run on the cluster's machine: it reads `var/secrets/nats/ops.json`
(look, never touch: gavel_kit.natsperms) and mints its bidders' tokens with `var/keys/gateway.pem`
instead of logging thousands of accounts in through the gateway. Both are operator credentials.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nats.aio.client import Client

from gavel_kit import nats as gavel_nats

OPS_USER = "ops"
_credentials: Path | None = None


def use_nats_credentials(path: Path | None) -> None:
    """Log in to NATS with this credentials file from now on (None: no credentials)."""
    global _credentials
    _credentials = path if path is not None and path.exists() else None


def ops_credentials(var_dir: Path) -> Path:
    return var_dir / "secrets" / "nats" / f"{OPS_USER}.json"


async def connect_nats(url: str, **options: Any) -> Client:
    client = Client()
    await client.connect(url, **{**gavel_nats.client_options(_credentials), **options})
    return client
