"""`python -m gavel_kit.healthcheck SERVICE [--process NAME] [--ready]`: exit 0 if the local process is healthy.

The container image's HEALTHCHECK (Dockerfile) for runtimes without native gRPC probes: it asks the
process's own listener, found from the same settings the process reads (GAVEL_<SVC>_GRPC_PORT, …).
By default it asks for liveness (health of "", or the gateway's /healthz); `--ready` asks for the
readiness name (the service's, or a worker's process name; the gateway's /readyz). Kubernetes does
not need it: its gRPC and HTTP probes do the same.
"""

from __future__ import annotations

import argparse
import sys
import urllib.request
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gavel_kit import settings as gavel_settings

TIMEOUT_S = 2.0


def _local(host: str) -> str:
    # A listener bound to every interface is asked on loopback.
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104


def grpc_serving(address: str, service: str, timeout_s: float = TIMEOUT_S) -> bool:
    """True if the gRPC health service at `address` reports `service` SERVING."""
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


def http_ok(url: str, timeout_s: float = TIMEOUT_S) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 — a loopback URL we built
            return bool(response.status == 200)
    except OSError:
        return False


def check(settings: gavel_settings.Settings, *, ready: bool = False) -> bool:
    host = _local(settings.grpc_host)
    if settings.service == "gateway":
        return http_ok(f"http://{host}:{settings.grpc_port}/{'readyz' if ready else 'healthz'}")
    return grpc_serving(f"{host}:{settings.grpc_port}", settings.readiness_name if ready else "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gavel-healthcheck", description=__doc__.splitlines()[0])
    parser.add_argument("service", help="catalog, room, tender, payment, notify or gateway")
    parser.add_argument("--process", default="", help="a worker of the service, e.g. room-projector")
    parser.add_argument("--ready", action="store_true", help="readiness (the service name) instead of liveness")
    args = parser.parse_args(argv)
    healthy = check(gavel_settings.load(args.service, process=args.process), ready=args.ready)
    if not healthy:
        print(f"{args.process or args.service}: not {'ready' if args.ready else 'alive'}", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
