"""Generate the Python stubs for protos/ into libs/src/gavel/ — the one copy every component imports.

`python -m gavel_kit.protogen` regenerates; `--check` regenerates into a temporary folder and fails
if the committed stubs differ (CI runs it through `make lint`).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parents[3]
PROTO_ROOT = REPO_ROOT / "protos"
OUTPUT_ROOT = REPO_ROOT / "libs" / "src"
GENERATED_PACKAGE = "gavel"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi", "__init__.py")


def proto_files() -> list[Path]:
    return sorted((PROTO_ROOT / GENERATED_PACKAGE).rglob("*.proto"))


def generate(output_root: Path) -> None:
    """Compile every .proto under protos/gavel into `output_root`, plus the __init__.py files protoc omits."""
    well_known = str(resources.files("grpc_tools") / "_proto")
    scripts = Path(sys.executable).parent  # the venv's bin/, where mypy-protobuf installs its plugins
    files = [str(path.relative_to(PROTO_ROOT)) for path in proto_files()]
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={scripts / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={scripts / 'protoc-gen-mypy_grpc'}",
        f"--python_out={output_root}",
        f"--grpc_python_out={output_root}",
        f"--mypy_out={output_root}",
        f"--mypy_grpc_out={output_root}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    package_root = output_root / GENERATED_PACKAGE
    for folder in [package_root, *(p for p in package_root.rglob("*") if p.is_dir())]:
        if folder.name == "__pycache__":
            continue
        init = folder / "__init__.py"
        if not init.exists():
            init.write_text("")
    (package_root / "py.typed").write_text("")


def generated_files(root: Path) -> set[Path]:
    package_root = root / GENERATED_PACKAGE
    return {
        path.relative_to(root)
        for path in package_root.rglob("*")
        if path.is_file() and (path.name.endswith(GENERATED_SUFFIXES) or path.name == "py.typed")
    }


def check() -> list[str]:
    """Return the generated files that are missing, extra or stale compared with a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        generate(fresh_root)
        fresh, committed = generated_files(fresh_root), generated_files(OUTPUT_ROOT)
        problems = [f"missing: {p}" for p in sorted(fresh - committed)]
        problems += [f"stale extra: {p}" for p in sorted(committed - fresh)]
        problems += [
            f"out of date: {p}"
            for p in sorted(fresh & committed)
            if not filecmp.cmp(fresh_root / p, OUTPUT_ROOT / p, shallow=False)
        ]
        return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed stubs are not current")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("generated stubs are not current: run `make protos`", file=sys.stderr)
            return 1
        return 0
    shutil.rmtree(OUTPUT_ROOT / GENERATED_PACKAGE, ignore_errors=True)
    generate(OUTPUT_ROOT)
    print(f"generated {len(generated_files(OUTPUT_ROOT))} files from {len(proto_files())} protos")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
