"""A real OTLP/gRPC trace collector on loopback, for tests that check spans cross process boundaries."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Set
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class SpanCollector(trace_service_pb2_grpc.TraceServiceServicer):
    """Receives OTLP exports; `services_by_trace` maps trace id (hex) → service names seen in it."""

    def __init__(self) -> None:
        self.services_by_trace: dict[str, set[str]] = defaultdict(set)
        self.span_names_by_trace: dict[str, list[str]] = defaultdict(list)
        self._server: grpc.aio.Server | None = None
        self._exported = threading.Condition()  # tests wait on it from their own thread
        self.port = 0

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            service = next(
                (a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"), "?"
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    trace_id = span.trace_id.hex()
                    self.services_by_trace[trace_id].add(service)
                    self.span_names_by_trace[trace_id].append(f"{service}:{span.name}")
        with self._exported:
            self._exported.notify_all()
        return trace_service_pb2.ExportTraceServiceResponse()

    def wait_for_trace_spanning(self, services: Set[str], timeout_s: float) -> str | None:
        """The id of a trace with spans from every one of `services`, waiting up to `timeout_s` for it."""

        def spanning() -> str | None:
            return next((t for t, seen in list(self.services_by_trace.items()) if services <= seen), None)

        with self._exported:
            return self._exported.wait_for(spanning, timeout_s)

    async def start(self) -> str:
        self._server = grpc.aio.server()
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0)
