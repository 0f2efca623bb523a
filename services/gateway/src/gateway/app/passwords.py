"""Password hashing policy: scrypt (stdlib hashlib) with a per-user random salt, compared in constant time.

Encoded form (PHC-like, parameters travel with the hash so the policy can be raised later and old
hashes are upgraded on the next successful login): `$scrypt$ln=15,r=8,p=1$<salt b64>$<hash b64>`.

The default cost (N=2**15, r=8, p=1: 32 MiB and about 0.1 s per hash on a small machine) is a trade
between resistance to offline guessing and what a burst of logins costs the gateway; both numbers
are recorded per hash, so raising them needs no migration.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from gavel_core.errors import Violations

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
_SCHEME = "scrypt"
# Refuse to verify against parameters far above any policy we would set: a tampered row must not be
# able to make one login allocate gigabytes.
_MAX_LOG2_N = 20
_MAX_R = 16
_MAX_P = 16


@dataclass(frozen=True, slots=True)
class ScryptCost:
    log2_n: int = 15
    r: int = 8
    p: int = 1
    salt_bytes: int = 16
    key_bytes: int = 32

    @property
    def maxmem(self) -> int:
        # scrypt needs 128 * r * N bytes (plus a little); OpenSSL's default ceiling is 32 MiB.
        return 128 * self.r * (1 << self.log2_n) * 2 + 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


class PasswordHasher:
    """Hashes and verifies passwords. CPU bound (hashlib releases the GIL): call it from a thread."""

    def __init__(self, cost: ScryptCost | None = None) -> None:
        self.cost = cost or ScryptCost()
        self._decoy: str | None = None

    def hash(self, password: str) -> str:
        salt = secrets.token_bytes(self.cost.salt_bytes)
        key = self._derive(password, salt, self.cost)
        c = self.cost
        return f"${_SCHEME}$ln={c.log2_n},r={c.r},p={c.p}${_b64(salt)}${_b64(key)}"

    def verify(self, password: str, encoded: str) -> bool:
        """True when `password` matches `encoded`; False for a wrong password or a malformed hash."""
        parsed = _parse(encoded)
        if parsed is None:
            return False
        cost, salt, expected = parsed
        actual = self._derive(password, salt, cost)
        return hmac.compare_digest(actual, expected)

    def needs_rehash(self, encoded: str) -> bool:
        """True when `encoded` was made with other parameters than the current policy."""
        parsed = _parse(encoded)
        if parsed is None:
            return True
        cost, salt, key = parsed
        wanted = self.cost
        return (cost.log2_n, cost.r, cost.p, len(salt), len(key)) != (
            wanted.log2_n,
            wanted.r,
            wanted.p,
            wanted.salt_bytes,
            wanted.key_bytes,
        )

    def burn(self, password: str) -> None:
        """Spend the time a verification costs without any account: keeps a login for an unknown email
        as slow as one with a wrong password, so response times do not reveal which emails exist."""
        if self._decoy is None:
            self._decoy = self.hash(secrets.token_urlsafe(16))
        self.verify(password, self._decoy)

    @staticmethod
    def _derive(password: str, salt: bytes, cost: ScryptCost) -> bytes:
        return hashlib.scrypt(
            password.encode("utf-8"),
            salt=salt,
            n=1 << cost.log2_n,
            r=cost.r,
            p=cost.p,
            maxmem=cost.maxmem,
            dklen=cost.key_bytes,
        )


def _parse(encoded: str) -> tuple[ScryptCost, bytes, bytes] | None:
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != _SCHEME:
        return None
    try:
        params = dict(item.split("=", 1) for item in parts[2].split(","))
        log2_n, r, p = int(params["ln"]), int(params["r"]), int(params["p"])
        salt, key = _unb64(parts[3]), _unb64(parts[4])
    except (ValueError, KeyError, binascii.Error):
        return None
    if not (1 <= log2_n <= _MAX_LOG2_N and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P and salt and key):
        return None
    return ScryptCost(log2_n=log2_n, r=r, p=p, salt_bytes=len(salt), key_bytes=len(key)), salt, key


def check_new_password(password: str, violations: Violations, field: str = "password") -> None:
    """The self-service password policy: long enough to resist guessing, short enough to hash cheaply."""
    if len(password) < MIN_PASSWORD_LENGTH:
        violations.add(field, f"must be at least {MIN_PASSWORD_LENGTH} characters")
    elif len(password) > MAX_PASSWORD_LENGTH:
        violations.add(field, f"must be at most {MAX_PASSWORD_LENGTH} characters")
