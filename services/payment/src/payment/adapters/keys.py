"""The provider's API key and webhook secret: from the environment, else generated once under
`<var>/secrets/` (what `gavel up` and the sandbox read too, so they agree). Never in the source."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

API_KEY_FILE = "payment-provider-key"
WEBHOOK_SIGNING_FILE = "payment-webhook-secret"


def read_or_create(var_dir: Path, name: str, env_value: str = "") -> str:
    if env_value:
        return env_value
    path = var_dir / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip()
