"""`gavel keys`: create, list, rotate and retire the signing keys of a keys directory (docs/security.md).

gavel keys init              a key for the gateway and every service (kept if present)
gavel keys list              kid, issuer and whether it is a signer's current key
gavel keys rotate SIGNER     a new current key for SIGNER (gateway, catalog, room, …)
gavel keys retire KID        drop an old public key (after one token lifetime)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gavel_kit import keys
from gavel_kit import settings as gavel_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gavel keys", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys-dir", default=None, help="default: GAVEL_KEYS_DIR or <GAVEL_VAR_DIR>/keys")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init")
    commands.add_parser("list")
    rotate = commands.add_parser("rotate")
    rotate.add_argument("signer", choices=keys.SIGNERS)
    retire = commands.add_parser("retire")
    retire.add_argument("kid")
    args = parser.parse_args(argv)
    settings = gavel_settings.load("cli")
    store = keys.KeyStore(Path(args.keys_dir) if args.keys_dir else settings.keys_dir, settings.jwt_issuer)
    try:
        if args.command == "init":
            created = store.ensure(keys.SIGNERS)
            print(f"keys in {store.directory}; new: {', '.join(created) or 'none'}")
        elif args.command == "list":
            for kid, issuer, current in store.listing():
                print(f"{kid:<40} {issuer:<16} {'current' if current else 'old'}")
        elif args.command == "rotate":
            print(store.rotate(args.signer))
        else:
            store.retire(args.kid)
            print(f"retired {args.kid}")
    except keys.KeyConfigError as exc:
        print(f"gavel keys: {exc}", file=sys.stderr)
        return 2
    return 0
