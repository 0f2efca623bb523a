"""Signing keys: one Ed25519 private key per signer, and the JWKS of public keys every verifier reads.

A *signer* is the gateway (it alone signs user tokens, issuer `gavel`) or a service (it signs only
short-lived tokens for its own identity `svc:<name>`, issuer `svc:<name>`). The keys directory
(`GAVEL_KEYS_DIR`, default `<var>/keys`; `gavel up` and `gavel keys init` fill it) holds:

    jwks.json       {"keys": [{kty, crv, x, kid, alg, use, iss}, ...]}: every signer's public key(s);
                    `iss` is the issuer that key may sign for (a JWKS member of our own)
    <signer>.pem    the signer's current private key (PKCS#8 PEM, mode 0600): gateway.pem, room.pem, ...

In a deployment each process gets the JWKS and, at most, its own private key; a verifier never
needs a private key. Rotation (`gavel keys rotate <signer>`) first adds the new public key to the
JWKS, then replaces the private key, so every token signed with the new key can be verified the
moment it exists; the old public key stays until `gavel keys retire <kid>` (after one token
lifetime). Readers pick up changed files on their own (`Jwks`, `SigningKey`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "EdDSA"
GATEWAY = "gateway"
USER_ISSUER = "gavel"  # the `iss` of user tokens (GAVEL_JWT_ISSUER may change it)
SERVICE_PREFIX = "svc:"
GATEWAY_SERVICE = "gateway-svc"  # the gateway's own service identity (svc:gateway): a key apart from the user key
SIGNERS = (GATEWAY, GATEWAY_SERVICE, "catalog", "room", "tender", "payment", "notify")  # `gavel up` makes keys for
SECRETS = ("pseudonyms", "notify-links")  # deployment secrets: bidder pseudonyms, notify's signed links
RELOAD_EVERY_S = 1.0  # how often a reader looks whether its file changed


class KeyConfigError(RuntimeError):
    """A key or the JWKS is missing or unreadable: the process must not start (fail closed)."""


def service_issuer(service: str) -> str:
    return f"{SERVICE_PREFIX}{service}"


def issuer_of(signer: str, user_issuer: str = USER_ISSUER) -> str:
    """The issuer a signer's keys sign for: the user issuer for the gateway, `svc:<name>` otherwise."""
    if signer == GATEWAY:
        return user_issuer
    return service_issuer(GATEWAY if signer == GATEWAY_SERVICE else signer)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def thumbprint(key: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256) of an Ed25519 public key."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": _b64(_raw_public(key))}, separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode()).digest())


def kid_for(signer: str, key: Ed25519PublicKey) -> str:
    """`<signer>-<thumbprint prefix>`: stable for a key, and says whose it is when read in a log."""
    return f"{signer}-{thumbprint(key)[:16]}"


def public_jwk(signer: str, key: Ed25519PublicKey, issuer: str) -> dict[str, str]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64(_raw_public(key)),
        "kid": kid_for(signer, key),
        "alg": ALGORITHM,
        "use": "sig",
        "iss": issuer,
    }


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600 from the first byte (never readable by others, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _write_public(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def load_secret(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError:
        raise KeyConfigError(f"no secret at {path}: `gavel up` (or `gavel keys init`) generates it") from None
    if len(data) < 32:
        raise KeyConfigError(f"the secret {path} is shorter than 32 bytes")
    return data


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyConfigError(
            f"no signing key at {path}: `gavel up` generates keys under var/keys (or run `gavel keys init`); "
            "set GAVEL_KEYS_DIR or GAVEL_<SERVICE>_SIGNING_KEY_FILE to use keys elsewhere"
        ) from None
    except OSError as exc:
        raise KeyConfigError(f"cannot read the signing key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError:
        raise KeyConfigError(f"{path} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyConfigError(f"{path} is not an Ed25519 key")
    return key


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True, slots=True)
class PublicKey:
    kid: str
    issuer: str
    key: Ed25519PublicKey


def parse_jwks(document: object) -> dict[str, PublicKey]:
    """kid → key for every usable Ed25519 signing key; anything else in the set is refused loudly."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeyConfigError('a JWKS must be {"keys": [...]}')
    found: dict[str, PublicKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict):
            raise KeyConfigError("a JWKS entry must be an object")
        kid, issuer, x = entry.get("kid"), entry.get("iss"), entry.get("x")
        if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519" or entry.get("alg", ALGORITHM) != ALGORITHM:
            raise KeyConfigError(f"JWKS key {kid!r}: only Ed25519 (OKP, EdDSA) keys are accepted")
        if not (isinstance(kid, str) and kid and isinstance(issuer, str) and issuer and isinstance(x, str)):
            raise KeyConfigError(f"JWKS key {kid!r}: needs kid, iss and x")
        try:
            key = Ed25519PublicKey.from_public_bytes(_unb64(x))
        except ValueError:
            raise KeyConfigError(f"JWKS key {kid!r}: x is not an Ed25519 public key") from None
        found[kid] = PublicKey(kid, issuer, key)
    return found


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


class Jwks:
    """The public keys of a JWKS file, re-read when the file changes (looked at most once a second,
    and only when a token names a kid not known yet or the last look is older than that)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: dict[str, PublicKey] = {}
        self._stamp: tuple[int, int] | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        stamp = _stamp(self.path)
        if stamp is None:
            raise KeyConfigError(
                f"no JWKS at {self.path}: `gavel up` generates it under var/keys (or run `gavel keys init`); "
                "set GAVEL_JWKS_FILE or GAVEL_KEYS_DIR to use one elsewhere"
            )
        try:
            document = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise KeyConfigError(f"cannot read the JWKS {self.path}: {exc}") from None
        self._keys = parse_jwks(document)
        self._stamp = stamp

    def refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked_at < RELOAD_EVERY_S:
            return
        with self._lock:
            self._checked_at = now
            if _stamp(self.path) == self._stamp:
                return
            with contextlib.suppress(KeyConfigError):  # half-written or removed: keep the keys we have
                self._load()

    def get(self, kid: str) -> PublicKey | None:
        found = self._keys.get(kid)
        if found is None:
            self.refresh()
            found = self._keys.get(kid)
        return found

    def kids(self) -> list[str]:
        return sorted(self._keys)


class SigningKey:
    """A signer's current private key from its PEM file, re-read when the file changes (rotation)."""

    def __init__(self, path: Path, signer: str) -> None:
        self.path = path
        self.signer = signer
        self._key = load_private_key(path)
        self._stamp = _stamp(path)
        self._checked_at = time.monotonic()
        self.kid = kid_for(signer, self._key.public_key())

    def current(self) -> tuple[str, Ed25519PrivateKey]:
        now = time.monotonic()
        if now - self._checked_at >= RELOAD_EVERY_S:
            self._checked_at = now
            stamp = _stamp(self.path)
            if stamp is not None and stamp != self._stamp:
                try:
                    self._key = load_private_key(self.path)
                except KeyConfigError:
                    pass  # mid-rotation: keep signing with the key we have
                else:
                    self._stamp = stamp
                    self.kid = kid_for(self.signer, self._key.public_key())
        return self.kid, self._key


class KeyStore:
    """Creates, rotates and retires the keys of a keys directory (operators: `gavel up`, `gavel keys`)."""

    def __init__(self, directory: Path, user_issuer: str = USER_ISSUER) -> None:
        self.directory = directory
        self.jwks_path = directory / "jwks.json"
        self.user_issuer = user_issuer

    def private_path(self, signer: str) -> Path:
        return self.directory / f"{signer}.pem"

    def _read_jwks(self) -> list[dict[str, str]]:
        if not self.jwks_path.exists():
            return []
        document = json.loads(self.jwks_path.read_text())
        parse_jwks(document)  # refuse to extend a set we could not verify with
        keys: list[dict[str, str]] = document["keys"]
        return keys

    def _write_jwks(self, keys: Iterable[Mapping[str, str]]) -> None:
        _write_public(self.jwks_path, json.dumps({"keys": list(keys)}, indent=2) + "\n")

    def secret_path(self, name: str) -> Path:
        return self.directory / f"{name}.key"

    def ensure_secret(self, name: str) -> bytes:
        """A 32-byte deployment secret (e.g. the room's pseudonym key), created once, mode 0600."""
        path = self.secret_path(name)
        if not path.exists():
            _write_private(path, os.urandom(32))
        return path.read_bytes()

    def ensure(self, signers: Iterable[str]) -> list[str]:
        """Give every signer a private key and its public key a place in the JWKS (idempotent), and
        the deployment's secrets (SECRETS). Returns the signers that got a new key."""
        for secret in SECRETS:
            self.ensure_secret(secret)
        keys = self._read_jwks()
        known = {entry["kid"] for entry in keys}
        created = []
        for signer in signers:
            path = self.private_path(signer)
            if path.exists():
                public = load_private_key(path).public_key()
            else:
                private = Ed25519PrivateKey.generate()
                public = private.public_key()
                created.append(signer)
            entry = public_jwk(signer, public, issuer_of(signer, self.user_issuer))
            if entry["kid"] not in known:
                keys.append(entry)
                known.add(entry["kid"])
                self._write_jwks(keys)  # the public key is published before its private key is usable
            if not path.exists():
                _write_private(path, _pem(private))
        return created

    def rotate(self, signer: str) -> str:
        """A new key for `signer`: published in the JWKS first, then made current. Returns its kid."""
        private = Ed25519PrivateKey.generate()
        entry = public_jwk(signer, private.public_key(), issuer_of(signer, self.user_issuer))
        self._write_jwks([*self._read_jwks(), entry])
        _write_private(self.private_path(signer), _pem(private))
        return entry["kid"]

    def retire(self, kid: str) -> None:
        """Drop a public key from the JWKS; tokens it signed stop verifying. A signer's current key
        cannot be retired (rotate first)."""
        keys = self._read_jwks()
        if kid not in {entry["kid"] for entry in keys}:
            raise KeyConfigError(f"no key {kid!r} in {self.jwks_path}")
        for path in self.directory.glob("*.pem"):
            signer = path.stem
            if kid_for(signer, load_private_key(path).public_key()) == kid:
                raise KeyConfigError(f"{kid} is the current key of {signer}: rotate it first")
        self._write_jwks([entry for entry in keys if entry["kid"] != kid])

    def listing(self) -> list[tuple[str, str, bool]]:
        """(kid, issuer, current) for every key in the JWKS."""
        current = set()
        for path in self.directory.glob("*.pem"):
            current.add(kid_for(path.stem, load_private_key(path).public_key()))
        return [(entry["kid"], entry["iss"], entry["kid"] in current) for entry in self._read_jwks()]
