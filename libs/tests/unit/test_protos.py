"""The generated stubs are the one copy of the API: every proto compiles, imports, and is current."""

import importlib
import pkgutil

import gavel
from gavel.common.v1 import auth_pb2
from gavel_kit import protogen
from gavel_kit.settings import GRPC_SERVICE_NAMES


def test_the_committed_stubs_match_a_fresh_generation():
    assert protogen.check() == []


def test_every_generated_module_imports():
    names = [m.name for m in pkgutil.walk_packages(gavel.__path__, "gavel.") if m.name.endswith(("_pb2", "_pb2_grpc"))]
    assert len(names) >= 2 * len(protogen.proto_files())
    for name in names:
        importlib.import_module(name)


def test_every_fixed_service_name_exists_and_every_rpc_declares_who_may_call_it():
    from google.protobuf import descriptor_pool

    for svc in GRPC_SERVICE_NAMES:
        importlib.import_module(f"gavel.{svc}.v1.{svc}_service_pb2")
    pool = descriptor_pool.Default()
    for full_name in GRPC_SERVICE_NAMES.values():
        service = pool.FindServiceByName(full_name)
        assert service.methods, full_name
        for method in service.methods:
            assert method.GetOptions().HasExtension(auth_pb2.access), f"{method.full_name} has no access policy"


def test_every_failed_precondition_reason_raised_in_the_code_is_documented_in_errors_proto():
    import re
    from pathlib import Path

    from gavel.common.v1 import errors_pb2

    documented = {name.removeprefix("ERROR_REASON_") for name in errors_pb2.ErrorReason.DESCRIPTOR.values_by_name}
    root = Path(protogen.REPO_ROOT)
    raised: set[str] = set()
    for path in [*root.glob("services/*/src/**/*.py"), *root.glob("libs/src/gavel_kit/**/*.py")]:
        text = path.read_text()
        raised |= set(re.findall(r'FailedPrecondition\(\s*"([A-Z_]+)"', text))
        raised |= set(re.findall(r'reason="([A-Z_]+)"', text))
    assert raised - documented == set()
