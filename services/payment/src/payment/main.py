"""Composition root of the payment service: `python -m payment.main [serve|migrate]`."""

from __future__ import annotations

from gavel_kit.service import Runtime, ServiceDefinition
from gavel_kit.service import main as run_service


async def wire(runtime: Runtime) -> None:
    """The process already runs with health, metrics, database and NATS, so the cluster has its final
    shape; until its issue builds the use cases no servicer is registered, so every RPC of the
    service answers UNIMPLEMENTED (health and reflection still name it)."""


DEFINITION = ServiceDefinition(name="payment", wire=wire)


def main() -> int:
    return run_service(DEFINITION)


if __name__ == "__main__":
    raise SystemExit(main())
