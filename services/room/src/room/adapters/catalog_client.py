"""Calls to the catalog with the room's service identity: the fallbacks for a lot's terms and a
bidder's seat when their events have not arrived, and CloseLot once a lot has ended."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from gavel.catalog.v1 import catalog_service_pb2 as cat
from gavel.catalog.v1 import catalog_service_pb2_grpc as cat_grpc
from gavel.catalog.v1 import resources_pb2 as res
from gavel_kit.grpc.client import bearer, channel
from gavel_kit.logging import get_logger

log = get_logger("room.catalog")

LOOKUP_TIMEOUT_S = 1.0
CLOSE_TIMEOUT_S = 5.0


class CatalogClient:
    def __init__(self, address: str, service_token: Callable[[], str]) -> None:
        self._address = address
        self._token = service_token  # read per call: service tokens live minutes and are renewed
        self._channel: grpc.aio.Channel | None = None

    @property
    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return bearer(self._token())

    def _stub(self) -> cat_grpc.CatalogServiceAsyncStub:
        if self._channel is None:
            self._channel = channel(self._address)
        return cat_grpc.CatalogServiceStub(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    async def get_lot(self, lot_id: str) -> res.Lot | None:
        """The lot with its secrets (the room calls as a service); None if the catalog has none."""
        try:
            reply = await self._stub().GetLot(
                cat.GetLotRequest(lot_id=lot_id), metadata=self._metadata, timeout=LOOKUP_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                log.warning("catalog GetLot failed", lot_id=lot_id, code=exc.code().name)
            return None
        return reply.lot

    async def is_seated(self, lot_id: str, bidder_id: str) -> bool | None:
        """Whether the catalog seated the bidder in this lot; None if it could not be asked."""
        try:
            reply = await self._stub().GetSeat(
                cat.GetSeatRequest(lot_id=lot_id, bidder_id=bidder_id),
                metadata=self._metadata,
                timeout=LOOKUP_TIMEOUT_S,
            )
        except grpc.aio.AioRpcError as exc:
            log.info("catalog GetSeat failed", lot_id=lot_id, code=exc.code().name)
            return None
        return bool(reply.seated)

    async def close_lot(self, request: cat.CloseLotRequest) -> None:
        """Report a lot's outcome (idempotent by request id); raises grpc.aio.AioRpcError."""
        await self._stub().CloseLot(request, metadata=self._metadata, timeout=CLOSE_TIMEOUT_S)

    async def start_lot(self, lot_id: str) -> None:
        """Mark a lot live in the catalog (idempotent by request id); raises grpc.aio.AioRpcError."""
        request = cat.StartLotRequest(request_id=f"{lot_id}:start", lot_id=lot_id)
        await self._stub().StartLot(request, metadata=self._metadata, timeout=CLOSE_TIMEOUT_S)
