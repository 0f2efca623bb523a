"""Composition root of the tender service: `python -m tender.main [serve|migrate]`."""

from __future__ import annotations

from gavel.tender.v1 import tender_service_pb2_grpc
from gavel_kit.service import Runtime, ServiceDefinition
from gavel_kit.service import main as run_service


async def wire(runtime: Runtime) -> None:
    # The process already runs with health, metrics, database and NATS, so the cluster has its final
    # shape; until its issue builds the use cases, every RPC answers UNIMPLEMENTED (the generated base).
    tender_service_pb2_grpc.add_TenderServiceServicer_to_server(
        tender_service_pb2_grpc.TenderServiceServicer(), runtime.server
    )


DEFINITION = ServiceDefinition(name="tender", wire=wire)


def main() -> int:
    return run_service(DEFINITION)


if __name__ == "__main__":
    raise SystemExit(main())
