"""OpenTelemetry tracing configured by the standard OTEL_* variables, and trace context for NATS.

`OTEL_TRACES_EXPORTER` picks the exporter (`otlp` when `OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, else `none`; `console` also works); the OTLP exporter
itself reads its endpoint, headers and timeouts from the standard variables, and the batch processor
reads `OTEL_BSP_*`. `OTEL_SERVICE_NAME` defaults to `gavel-<service>`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

_provider: TracerProvider | None = None


def _exporter_name() -> str:
    explicit = os.environ.get("OTEL_TRACES_EXPORTER")
    if explicit:
        return explicit.split(",")[0].strip().lower()
    has_endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return "otlp" if has_endpoint else "none"


def configure(service: str) -> TracerProvider | None:
    """Install the global tracer provider once per process and return it (None: tracing is off)."""
    global _provider
    if _provider is not None:
        return _provider
    exporter_name = _exporter_name()
    if exporter_name == "none":
        # No SDK provider: spans stay non-recording (cheap on the bid path) while incoming trace
        # context still propagates to outgoing gRPC calls and NATS headers.
        return None
    name = os.environ.get("OTEL_SERVICE_NAME") or f"gavel-{service}"
    resource = Resource.create({"service.name": name, "service.namespace": "gavel"}).merge(
        OTELResourceDetector().detect()
    )
    provider = TracerProvider(resource=resource)
    exporter: SpanExporter | None = None
    match exporter_name:
        case "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        case "console":
            exporter = ConsoleSpanExporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def shutdown() -> None:
    """Flush buffered spans; call on graceful stop."""
    if _provider is not None:
        _provider.shutdown()


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def inject_headers(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Write the current trace context (`traceparent`, `tracestate`) into NATS message headers."""
    propagate.inject(headers)
    return headers


@contextmanager
def extracted_context(headers: Mapping[str, str] | None) -> Iterator[None]:
    """Make the trace context carried by a NATS message current for the block."""
    token = attach_remote_context(dict(headers or {}))
    try:
        yield
    finally:
        detach(token)


def tracing_enabled() -> bool:
    """Whether this process records spans: an SDK tracer provider is installed (by `configure`
    when an exporter is set, or by a test)."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def grpc_server_interceptor() -> object:
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return aio_server_interceptor()


TRACE_CONTEXT_KEYS = ("traceparent", "tracestate")


def attach_remote_context(carrier: Mapping[str, str]) -> object:
    """Make a caller's trace context current (returns the token for `detach`)."""
    return context.attach(propagate.extract(carrier))


def detach(token: object) -> None:
    context.detach(token)  # type: ignore[arg-type]


def grpc_client_interceptors() -> list[object]:
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors())
