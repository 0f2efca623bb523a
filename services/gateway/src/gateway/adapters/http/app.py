"""The FastAPI application: routes, error shape, metrics, tracing. Resources come from `lifespan`."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.middleware.cors import CORSMiddleware

from gateway.adapters.http import auth_routes, catalog_routes, errors, health_routes
from gateway.adapters.http.guards import GuardSettings, RequestGuards
from gateway.adapters.http.observability import ObservabilityMiddleware

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

DESCRIPTION = """\
Gavel's HTTP/JSON API for web and mobile clients.

Log in with `POST /api/v1/auth/login` and send the `access_token` as `Authorization: Bearer <token>`
(the same token works on every Gavel gRPC service). Catalog reads are public; with a token they show
what the caller may see and do. Errors share one shape: `{"error": {"code", "message", "reason",
"metadata", "field_violations"}}`, where `code` is the gRPC status name.
"""

# Probes and scrapes would otherwise make a one-span trace every few seconds.
UNTRACED_URLS = "/healthz,/readyz,/metrics"


def create_app(
    lifespan: Lifespan,
    *,
    version: str = "0.1.0",
    guards: GuardSettings | None = None,
    cors_origins: tuple[str, ...] = (),
) -> FastAPI:
    app = FastAPI(title="Gavel gateway", version=version, description=DESCRIPTION, lifespan=lifespan)
    errors.install(app)
    app.add_middleware(ObservabilityMiddleware)
    # Cross-origin calls only from the configured origins (none by default: same-origin only).
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(cors_origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        allow_credentials=False,
        max_age=600,
    )
    app.state.guards = guards or GuardSettings()
    app.add_middleware(RequestGuards, settings=app.state.guards)  # outermost: before anything reads a body
    app.include_router(health_routes.router)
    app.include_router(auth_routes.router)
    app.include_router(catalog_routes.router)
    # Outermost middleware: the server span is open while every other layer (and the catalog call) runs.
    FastAPIInstrumentor.instrument_app(app, excluded_urls=UNTRACED_URLS, exclude_spans=["receive", "send"])
    _document_validation_as_400(app)
    return app


def _document_validation_as_400(app: FastAPI) -> None:
    """FastAPI documents a 422 for every route with parameters; the gateway answers those with 400."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)  # builds and caches app.openapi_schema
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
