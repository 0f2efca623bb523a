"""The gateway's client of gavel.catalog.v1.CatalogService, and the catalog's health probe.

Calls run over the traced channel of gavel_kit (the HTTP request's span is the parent of the gRPC
client span, and the catalog continues the same trace) and carry the caller's bearer token when
there is one; public reads work without. Failures surface as grpc.aio.AioRpcError, which the HTTP
layer maps to its error shape.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.adapters.readiness import NotReady
from gavel.catalog.v1 import catalog_service_pb2 as pb
from gavel.catalog.v1 import catalog_service_pb2_grpc
from gavel_kit.grpc.client import RECONNECT_OPTIONS

DEFAULT_TIMEOUT_S = 10.0


class CatalogClient:
    """Catalog reads on behalf of an HTTP caller (`token`: their bearer JWT, or None)."""

    def __init__(self, channel: grpc.aio.Channel, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._stub = catalog_service_pb2_grpc.CatalogServiceStub(channel)
        self._timeout_s = timeout_s

    def _metadata(self, token: str | None) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {token}"),) if token else ()

    async def list_sales(self, request: pb.ListSalesRequest, token: str | None) -> pb.ListSalesResponse:
        return await self._stub.ListSales(request, timeout=self._timeout_s, metadata=self._metadata(token))

    async def get_sale(self, sale_id: str, token: str | None) -> pb.GetSaleResponse:
        request = pb.GetSaleRequest(sale_id=sale_id)
        return await self._stub.GetSale(request, timeout=self._timeout_s, metadata=self._metadata(token))

    async def list_lots(self, request: pb.ListLotsRequest, token: str | None) -> pb.ListLotsResponse:
        return await self._stub.ListLots(request, timeout=self._timeout_s, metadata=self._metadata(token))

    async def get_lot(self, lot_id: str, token: str | None) -> pb.GetLotResponse:
        request = pb.GetLotRequest(lot_id=lot_id)
        return await self._stub.GetLot(request, timeout=self._timeout_s, metadata=self._metadata(token))

    async def get_schedule(self, request: pb.GetScheduleRequest, token: str | None) -> pb.GetScheduleResponse:
        return await self._stub.GetSchedule(request, timeout=self._timeout_s, metadata=self._metadata(token))

    async def get_product(self, product_id: str, token: str | None) -> pb.GetProductResponse:
        request = pb.GetProductRequest(product_id=product_id)
        return await self._stub.GetProduct(request, timeout=self._timeout_s, metadata=self._metadata(token))

    async def list_products(self, request: pb.ListProductsRequest, token: str | None) -> pb.ListProductsResponse:
        return await self._stub.ListProducts(request, timeout=self._timeout_s, metadata=self._metadata(token))


class GrpcHealthProbe:
    """Asks a service's grpc.health.v1 whether it is SERVING.

    Uses its own untraced channel: readiness probes run every few seconds and would otherwise fill
    the trace store with one-span traces.
    """

    def __init__(self, address: str, service: str, timeout_s: float = 2.0) -> None:
        self._channel = grpc.aio.insecure_channel(address, options=RECONNECT_OPTIONS)
        self._stub = health_pb2_grpc.HealthStub(self._channel)
        self._service = service
        self._timeout_s = timeout_s

    async def check(self) -> None:
        try:
            reply = await self._stub.Check(
                health_pb2.HealthCheckRequest(service=self._service), timeout=self._timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            raise NotReady(f"health check failed: {exc.code().name}") from None
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            raise NotReady(status)

    async def close(self) -> None:
        await self._channel.close()
