"""Calls to the catalog with the room's service identity: the catalog's answer that a lot is
started (when its LotStarting has not arrived yet), the registration, staff and seat fallbacks,
and CloseLot once a lot has ended. The token is read per call (`token` is a provider)."""

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
LIVE_FORMATS = (res.FORMAT_ENGLISH, res.FORMAT_DUTCH, res.FORMAT_LUCKY)
STAFF_ROLES = {"crier": res.STAFF_ROLE_CRIER, "clerk": res.STAFF_ROLE_CLERK, "sale_admin": res.STAFF_ROLE_SALE_ADMIN}


class CatalogClient:
    def __init__(self, address: str, service_token: Callable[[], str]) -> None:
        self._address = address
        self._token = service_token  # read per call: service tokens live minutes and are renewed
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> cat_grpc.CatalogServiceAsyncStub:
        if self._channel is None:
            self._channel = channel(self._address)
        return cat_grpc.CatalogServiceStub(self._channel)

    @property
    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return bearer(self._token())

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    async def started_lot(self, lot_id: str) -> res.Lot | None:
        """The lot as published, iff the catalog says it is live; None otherwise (or unreachable)."""
        try:
            reply = await self._stub().GetLot(
                cat.GetLotRequest(lot_id=lot_id), metadata=self._metadata, timeout=LOOKUP_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                log.warning("catalog GetLot failed", lot_id=lot_id, code=exc.code().name)
            return None
        if reply.lot.state != res.LOT_STATE_LIVE or not reply.HasField("published"):
            return None
        return reply.published

    async def published_not_started(self, lot_id: str) -> bool:
        """The catalog published the lot and has not started it yet (a watcher may wait for it)."""
        try:
            reply = await self._stub().GetLot(
                cat.GetLotRequest(lot_id=lot_id), metadata=self._metadata, timeout=LOOKUP_TIMEOUT_S
            )
        except grpc.aio.AioRpcError:
            return False
        return reply.lot.state == res.LOT_STATE_SCHEDULED and reply.lot.format in LIVE_FORMATS

    async def registration_approved(self, sale_id: str, bidder_id: str) -> bool | None:
        try:
            reply = await self._stub().ListRegistrations(
                cat.ListRegistrationsRequest(sale_id=sale_id, bidder_id=bidder_id),
                metadata=self._metadata,
                timeout=LOOKUP_TIMEOUT_S,
            )
        except grpc.aio.AioRpcError as exc:
            log.info("catalog ListRegistrations failed", sale_id=sale_id, code=exc.code().name)
            return None
        return any(r.status == res.REGISTRATION_STATUS_APPROVED for r in reply.registrations)

    async def holds_staff_role(self, sale_id: str, subject: str, role: str) -> bool | None:
        try:
            reply = await self._stub().ListSaleStaff(
                cat.ListSaleStaffRequest(sale_id=sale_id), metadata=self._metadata, timeout=LOOKUP_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            log.info("catalog ListSaleStaff failed", sale_id=sale_id, code=exc.code().name)
            return None
        wanted = STAFF_ROLES[role]
        return any(a.user_id == subject and a.role == wanted for a in reply.staff)

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
