"""Composition root of the room service: `python -m room.main [serve|migrate]`."""

from __future__ import annotations

from gavel.room.v1 import room_service_pb2_grpc
from gavel_kit.service import Runtime, ServiceDefinition
from gavel_kit.service import main as run_service


async def wire(runtime: Runtime) -> None:
    # The process already runs with health, metrics, database and NATS, so the cluster has its final
    # shape; until its issue builds the use cases, every RPC answers UNIMPLEMENTED (the generated base).
    room_service_pb2_grpc.add_RoomServiceServicer_to_server(room_service_pb2_grpc.RoomServiceServicer(), runtime.server)


DEFINITION = ServiceDefinition(name="room", wire=wire)


def main() -> int:
    return run_service(DEFINITION)


if __name__ == "__main__":
    raise SystemExit(main())
