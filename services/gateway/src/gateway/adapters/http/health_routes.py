"""Probes and metrics: /healthz (liveness), /readyz (readiness), /metrics (Prometheus)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.responses import Response

from gateway.adapters.http.deps import ServicesDep
from gateway.adapters.http.observability import render_metrics
from gateway.adapters.http.schemas import Liveness, Readiness
from gateway.adapters.readiness import NotReady, ReadinessCheck
from gavel_kit.logging import get_logger

log = get_logger("gateway.readiness")
router = APIRouter(tags=["operations"])

READINESS_TIMEOUT_S = 3.0


@router.get(
    "/healthz", summary="Liveness: the process is up", description="Touches no dependency; 200 while the process runs."
)
async def healthz() -> Liveness:
    return Liveness()


async def _probe(name: str, check: ReadinessCheck) -> str:
    """'ok', or a short reason. Details (addresses, driver messages) go to the log, not to the
    unauthenticated caller."""
    try:
        await asyncio.wait_for(check(), timeout=READINESS_TIMEOUT_S)
    except TimeoutError:
        reason = f"no answer within {READINESS_TIMEOUT_S:g}s"
    except NotReady as exc:
        reason = str(exc)
    except Exception as exc:
        log.warning("readiness check failed", dependency=name, error=repr(exc))
        reason = type(exc).__name__
    else:
        return "ok"
    log.info("not ready", dependency=name, reason=reason)
    return reason


@router.get(
    "/readyz",
    summary="Readiness: the gateway's dependencies answer",
    description="200 when the database answers SELECT 1 and the catalog's gRPC health says SERVING; "
    "503 naming each dependency that is not ready otherwise.",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is not ready"}},
)
async def readyz(services: ServicesDep) -> JSONResponse:
    names = list(services.readiness)
    results = await asyncio.gather(*(_probe(name, services.readiness[name]) for name in names))
    checks = dict(zip(names, results, strict=True))
    ready = all(result == "ok" for result in results)
    body = Readiness(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics() -> Response:
    return render_metrics()
