"""Keys, tokens and NATS users for tests, made the way `gavel up` makes them.

- `default()`: one keys directory per test process (every signer has a key, as under `var/keys`);
  the pytest plugin points `GAVEL_KEYS_DIR` at it, so services started by a test (in-process or as
  subprocesses inheriting the environment) verify the tokens it mints.
- `Identities.user_token(subject, *roles)` / `.bearer(...)`: a user token signed with the gateway's
  key, as a login would get; `.service_token(name)`: a service's own token.
- `start_nats(directory)`: a nats-server with the generated auth config (every Gavel user with its
  permissions, plus a `gavel-test` superuser for the tests' own observers and publishers).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from gavel_core.auth import Role
from gavel_kit import natsperms, natsserver
from gavel_kit.auth import MAX_TOKEN_LIFETIME_S, ServiceCredential, TokenSigner
from gavel_kit.keys import GATEWAY, GATEWAY_SERVICE, SIGNERS, KeyStore, SigningKey

SUPERUSER = "gavel-test"
RENEW_BEFORE_S = 60


class LiveBearer(Sequence[tuple[str, str]]):
    """gRPC call metadata with a bearer token that is minted again before it expires, so a module
    may build its callers once (tokens live at most 5 minutes; a test session lasts longer)."""

    def __init__(self, identities: Identities, subject: str, roles: tuple[Role, ...]) -> None:
        self._identities = identities
        self._subject = subject
        self._roles = roles
        self._pair: tuple[str, str] = ("authorization", "")
        self._renew_at = 0.0

    def _current(self) -> tuple[str, str]:
        now = time.monotonic()
        if now >= self._renew_at:
            token = self._identities.user_token(self._subject, *self._roles)
            self._pair = ("authorization", f"Bearer {token}")
            self._renew_at = now + MAX_TOKEN_LIFETIME_S - RENEW_BEFORE_S
        return self._pair

    @overload
    def __getitem__(self, index: int) -> tuple[str, str]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[str, str]]: ...
    def __getitem__(self, index: int | slice) -> tuple[str, str] | Sequence[tuple[str, str]]:
        return (self._current(),)[index]

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter((self._current(),))

    def __add__(self, other: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        return (self._current(), *other)


class Identities:
    def __init__(self, directory: Path, signers: Iterable[str] = SIGNERS) -> None:
        self.directory = directory
        self.store = KeyStore(directory)
        self.store.ensure(signers)
        self._gateway = TokenSigner(SigningKey(self.store.private_path(GATEWAY), GATEWAY), "gavel")

    def env(self) -> dict[str, str]:
        """The settings a service needs to find these keys."""
        return {"GAVEL_KEYS_DIR": str(self.directory)}

    def user_token(self, subject: str, *roles: Role, name: str = "", ttl_s: int = MAX_TOKEN_LIFETIME_S) -> str:
        return self._gateway.issue(subject, roles, name or subject, ttl_s=ttl_s)

    def bearer(self, subject: str, *roles: Role) -> LiveBearer:
        """Call metadata for this user, renewed as it nears expiry."""
        return LiveBearer(self, subject, roles)

    def service_token(self, service: str) -> str:
        signer = GATEWAY_SERVICE if service == GATEWAY else service  # the gateway's service key is its own
        return ServiceCredential(SigningKey(self.store.private_path(signer), signer), service).token


_default: Identities | None = None


def default() -> Identities:
    """This test process's keys (created on first use in a temporary directory)."""
    global _default
    if _default is None:
        _default = Identities(Path(tempfile.mkdtemp(prefix="gavel-test-keys-")))
    return _default


def user_token(subject: str, *roles: Role) -> str:
    return default().user_token(subject, *roles)


def service_token(service: str) -> str:
    return default().service_token(service)


@dataclass
class AuthenticatedNats:
    server: natsserver.NatsServer
    credentials: dict[str, Path]  # NATS user → credentials file

    @property
    def url(self) -> str:
        """The server's URL as the `gavel-test` superuser (for the tests' own clients)."""
        user, password = natsserver.read_credentials(self.credentials[SUPERUSER])
        return self.server.url.replace("nats://", f"nats://{user}:{password}@", 1)

    def stop(self) -> None:
        self.server.stop()

    def __getattr__(self, name: str) -> object:  # process, port, store_dir, log_path: the server's
        return getattr(self.server, name)


def start_nats(directory: Path, server_name: str = "gavel-test") -> AuthenticatedNats:
    """A nats-server requiring authentication: every user of `natsperms.TABLE` plus the superuser."""
    credentials = natsserver.write_credentials(directory / "credentials", [*natsperms.USERS, SUPERUSER])
    users = natsserver.users_for(credentials, superusers=[SUPERUSER])
    server = natsserver.start(directory, server_name=server_name, users=users)
    return AuthenticatedNats(server, credentials)
