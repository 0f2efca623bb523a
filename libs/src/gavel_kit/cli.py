"""`gavel` — the operator and integrator CLI.

`gavel up` starts the local cluster; every other sub-command is contributed by a component through
the `gavel.cli` entry-point group (e.g. `gavel replay` from the room service), so this dispatcher
depends on no service.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points


def _commands() -> dict[str, str]:
    found = {ep.name: ep.value for ep in entry_points(group="gavel.cli")}
    found.setdefault("up", "gavel_kit.cluster:main")
    found.setdefault("keys", "gavel_kit.keyscli:main")
    return found


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    commands = _commands()
    if not args or args[0] in ("-h", "--help", "help"):
        print("usage: gavel <command> [options]\n\ncommands:")
        for name in sorted(commands):
            print(f"  {name}")
        print("\n`gavel <command> --help` describes a command.")
        return 0
    name, rest = args[0], args[1:]
    if name not in commands:
        print(f"gavel: unknown command {name!r}; try `gavel --help`", file=sys.stderr)
        return 2
    found = [ep for ep in entry_points(group="gavel.cli") if ep.name == name]
    if found:
        command = found[0].load()
    elif name == "keys":
        from gavel_kit import keyscli

        command = keyscli.main
    else:
        from gavel_kit import cluster

        command = cluster.main
    result = command(rest)
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
