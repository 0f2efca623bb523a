"""Composition root of the payment service: `python -m payment.main [serve|migrate]`."""

from __future__ import annotations

from gavel.payment.v1 import payment_service_pb2_grpc
from gavel_kit.service import Runtime, ServiceDefinition
from gavel_kit.service import main as run_service


async def wire(runtime: Runtime) -> None:
    # The process already runs with health, metrics, database and NATS, so the cluster has its final
    # shape; until its issue builds the use cases, every RPC answers UNIMPLEMENTED (the generated base).
    payment_service_pb2_grpc.add_PaymentServiceServicer_to_server(
        payment_service_pb2_grpc.PaymentServiceServicer(), runtime.server
    )


DEFINITION = ServiceDefinition(name="payment", wire=wire)


def main() -> int:
    return run_service(DEFINITION)


if __name__ == "__main__":
    raise SystemExit(main())
