"""The lucky draw: the room, not the seller, fixes the winning option, and can prove it did so early.

The room draws 32 secret bytes when it configures a lucky lot (outside the domain, with `secrets`)
and keeps them in the lot's log only (`LotConfigured`). Everything else is a pure function of
that secret, so a replay draws the same:

    option = HMAC-SHA256(secret, "gavel-lucky-v1:option:<lot_id>:<draw>") as a big-endian integer
             mod the number of options (bias below n / 2**256)
    nonce  = HMAC-SHA256(secret, "gavel-lucky-v1:nonce:<lot_id>:<draw>") in lowercase hex
    commitment = sha256("gavel-lucky-v1:<lot_id>:<draw>:<option>:<nonce>") in lowercase hex

A window opens with the commitment (public), the lot's close reveals option and nonce (public),
and anyone checks the commitment with `verify` or with `sha256sum`:

    printf '%s' "gavel-lucky-v1:$LOT_ID:$DRAW:$OPTION:$NONCE" | sha256sum

sha256 is preimage- and collision-resistant, so once the commitment is out the room cannot open it
as any other option; the nonce (256 bits the bidders do not know) keeps a handful of options from
being tried against the commitment before the close. The seed the catalog shows the seller plays
no part.
"""

from __future__ import annotations

import hashlib
import hmac
import re

SCHEME = "gavel-lucky-v1"
SECRET_BYTES = 32
MIN_SECRET_BYTES = 16
_NONCE = re.compile(r"[0-9a-f]{64}")
_COMMITMENT = _NONCE


def _mac(secret: bytes, purpose: str, lot_id: str, draw: int) -> bytes:
    return hmac.new(secret, f"{SCHEME}:{purpose}:{lot_id}:{draw}".encode(), hashlib.sha256).digest()


def drawn_option(secret: bytes, lot_id: str, draw: int, options: int) -> tuple[int, str]:
    """The winning option of draw `draw` (an index below `options`) and the nonce that hides it."""
    option = int.from_bytes(_mac(secret, "option", lot_id, draw), "big") % options
    return option, _mac(secret, "nonce", lot_id, draw).hex()


def commitment(lot_id: str, draw: int, option: int, nonce: str) -> str:
    """sha256 hex of the preimage the bidders can rebuild after the close."""
    return hashlib.sha256(preimage(lot_id, draw, option, nonce).encode()).hexdigest()


def preimage(lot_id: str, draw: int, option: int, nonce: str) -> str:
    return f"{SCHEME}:{lot_id}:{draw}:{option}:{nonce}"


def verify(lot_id: str, draw: int, option: int, nonce: str, published: str) -> bool:
    """Whether `published` (the commitment seen when the window opened) hides this option.

    The nonce must be the 64 hex characters the room reveals, so one preimage cannot be read two ways.
    """
    if draw < 1 or option < 0 or not _NONCE.fullmatch(nonce) or not _COMMITMENT.fullmatch(published):
        return False
    return hmac.compare_digest(commitment(lot_id, draw, option, nonce), published)
