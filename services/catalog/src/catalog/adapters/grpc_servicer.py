"""gavel.catalog.v1.CatalogService over the catalog's use cases: mapping only, no business rules.

Every RPC takes the caller from `gavel_kit.auth.current_principal()` (the auth interceptor has
verified the token and the proto's access option), maps the request to a command
(`catalog.adapters.mapping`), runs the use case and maps the result back. Errors are the use
cases' `gavel_core.errors`, raised through: the error interceptor turns them into statuses.

Mutating RPCs run in `gavel_kit.db.run_idempotent`, keyed by (caller, full method name,
request_id): the change, its events (outbox) and the serialized answer commit together, and a
repeat returns the stored answer. Reads run in their own transaction (`catalog.app.runner.run`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar, cast

import grpc
from google.protobuf.message import Message

from catalog.adapters import mapping
from catalog.adapters.unit_of_work import SqlCatalogUnitOfWork
from catalog.app import lots, products, registrations, reservations, rooms, sales, schedule, staff
from catalog.app.ports import CatalogUnitOfWork, DepositChecker, IdGenerator
from catalog.app.runner import run
from catalog.domain.validation import require_id
from gavel.catalog.v1 import catalog_service_pb2 as pb
from gavel.catalog.v1 import catalog_service_pb2_grpc
from gavel_core.auth import Principal
from gavel_kit.auth import current_principal
from gavel_kit.db import SqlUnitOfWork, run_idempotent
from gavel_kit.lotwire import Collector

SERVICE = "gavel.catalog.v1.CatalogService"

R = TypeVar("R", bound=Message)
T = TypeVar("T")
C = TypeVar("C")
Context = grpc.aio.ServicerContext[Any, Any] | None
Action = Callable[[CatalogUnitOfWork, Principal, datetime], Awaitable[T]]


def method(name: str) -> str:
    """The full gRPC method name, as the idempotency store scopes request ids by it."""
    return f"/{SERVICE}/{name}"


class CatalogServicer(catalog_service_pb2_grpc.CatalogServiceServicer):
    def __init__(
        self,
        uow_factory: Callable[[], SqlCatalogUnitOfWork],
        *,
        ids: IdGenerator,
        deposits: DepositChecker,
        clock: Callable[[], datetime],
    ) -> None:
        self._uow_factory = uow_factory
        self._ids = ids
        self._deposits = deposits
        self._clock = clock

    # -- plumbing -----------------------------------------------------------------------------------

    async def _mutate(
        self, name: str, request: Any, principal: Principal, response_type: type[R], action: Action[R]
    ) -> R:
        """Run `action` once per (caller, method, request_id); return the first answer on repeats."""
        require_id("request_id", request.request_id)

        async def attempt(uow: SqlUnitOfWork) -> bytes:
            reply = await action(cast(SqlCatalogUnitOfWork, uow), principal, self._clock())
            return reply.SerializeToString(deterministic=True)

        answer = await run_idempotent(
            self._uow_factory,
            caller=principal.subject,
            method=method(name),
            request_id=request.request_id,
            request_bytes=request.SerializeToString(deterministic=True),
            action=attempt,
        )
        return response_type.FromString(answer)

    @staticmethod
    def _command(request: Any, to_command: Callable[[Any], C]) -> C:
        """The use case's command for a mutating request, its request_id checked with the rest."""
        parse = Collector()
        parse(require_id, "request_id", request.request_id)
        command = parse(to_command, request)
        parse.done()
        return cast(C, command)

    async def _read(self, action: Action[T]) -> T:
        principal = current_principal()
        now = self._clock()
        return await run(self._uow_factory(), lambda uow: action(uow, principal, now))

    # -- products -----------------------------------------------------------------------------------

    async def CreateProduct(self, request: pb.CreateProductRequest, context: Context) -> pb.CreateProductResponse:
        principal = current_principal()
        command = self._command(request, mapping.create_product)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.CreateProductResponse:
            product = await products.create_product(uow, caller, command, ids=self._ids, now=now)
            return pb.CreateProductResponse(product=mapping.product_message(product))

        return await self._mutate("CreateProduct", request, principal, pb.CreateProductResponse, action)

    async def UpdateProduct(self, request: pb.UpdateProductRequest, context: Context) -> pb.UpdateProductResponse:
        principal = current_principal()
        command = self._command(request, mapping.update_product)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.UpdateProductResponse:
            product = await products.update_product(uow, caller, command, now=now)
            return pb.UpdateProductResponse(product=mapping.product_message(product))

        return await self._mutate("UpdateProduct", request, principal, pb.UpdateProductResponse, action)

    async def GetProduct(self, request: pb.GetProductRequest, context: Context) -> pb.GetProductResponse:
        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.GetProductResponse:
            product = await products.get_product(uow, request.product_id)
            return pb.GetProductResponse(product=mapping.product_message(product))

        return await self._read(action)

    async def ListProducts(self, request: pb.ListProductsRequest, context: Context) -> pb.ListProductsResponse:
        query = mapping.list_products(request)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.ListProductsResponse:
            page = await products.list_products(uow, query)
            return pb.ListProductsResponse(
                products=[mapping.product_message(p) for p in page.items], page=mapping.page_info(page)
            )

        return await self._read(action)

    # -- sales --------------------------------------------------------------------------------------

    async def CreateSale(self, request: pb.CreateSaleRequest, context: Context) -> pb.CreateSaleResponse:
        principal = current_principal()
        command = self._command(request, mapping.create_sale)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.CreateSaleResponse:
            sale = await sales.create_sale(uow, caller, command, ids=self._ids, now=now)
            return pb.CreateSaleResponse(sale=mapping.sale_message(sale))

        return await self._mutate("CreateSale", request, principal, pb.CreateSaleResponse, action)

    async def UpdateSale(self, request: pb.UpdateSaleRequest, context: Context) -> pb.UpdateSaleResponse:
        principal = current_principal()
        command = self._command(request, mapping.update_sale)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.UpdateSaleResponse:
            sale = await sales.update_sale(uow, caller, command, now=now)
            return pb.UpdateSaleResponse(sale=mapping.sale_message(sale))

        return await self._mutate("UpdateSale", request, principal, pb.UpdateSaleResponse, action)

    async def GetSale(self, request: pb.GetSaleRequest, context: Context) -> pb.GetSaleResponse:
        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.GetSaleResponse:
            sale = await sales.get_sale(uow, caller, request.sale_id)
            return pb.GetSaleResponse(sale=mapping.sale_message(sale))

        return await self._read(action)

    async def ListSales(self, request: pb.ListSalesRequest, context: Context) -> pb.ListSalesResponse:
        query = mapping.list_sales(request)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.ListSalesResponse:
            page = await sales.list_sales(uow, caller, query)
            return pb.ListSalesResponse(
                sales=[mapping.sale_message(s) for s in page.items], page=mapping.page_info(page)
            )

        return await self._read(action)

    async def PublishSale(self, request: pb.PublishSaleRequest, context: Context) -> pb.PublishSaleResponse:
        principal = current_principal()

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.PublishSaleResponse:
            published = await sales.publish_sale(uow, caller, request.sale_id, ids=self._ids, now=now)
            return pb.PublishSaleResponse(
                sale=mapping.sale_message(published.sale), lots=mapping.lot_messages(published.lots)
            )

        return await self._mutate("PublishSale", request, principal, pb.PublishSaleResponse, action)

    async def CancelSale(self, request: pb.CancelSaleRequest, context: Context) -> pb.CancelSaleResponse:
        principal = current_principal()
        command = self._command(request, mapping.cancel_sale)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.CancelSaleResponse:
            sale = await sales.cancel_sale(uow, caller, command, ids=self._ids, now=now)
            return pb.CancelSaleResponse(sale=mapping.sale_message(sale))

        return await self._mutate("CancelSale", request, principal, pb.CancelSaleResponse, action)

    # -- lots ---------------------------------------------------------------------------------------

    async def AddLot(self, request: pb.AddLotRequest, context: Context) -> pb.AddLotResponse:
        principal = current_principal()
        command = self._command(request, mapping.add_lot)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.AddLotResponse:
            views = await lots.add_lot(uow, caller, command, ids=self._ids, now=now)
            return pb.AddLotResponse(lots=mapping.lot_messages(views))

        return await self._mutate("AddLot", request, principal, pb.AddLotResponse, action)

    async def UpdateLot(self, request: pb.UpdateLotRequest, context: Context) -> pb.UpdateLotResponse:
        principal = current_principal()
        command = self._command(request, mapping.update_lot)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.UpdateLotResponse:
            views = await lots.update_lot(uow, caller, command, now=now)
            return pb.UpdateLotResponse(lots=mapping.lot_messages(views))

        return await self._mutate("UpdateLot", request, principal, pb.UpdateLotResponse, action)

    async def RemoveLot(self, request: pb.RemoveLotRequest, context: Context) -> pb.RemoveLotResponse:
        principal = current_principal()

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.RemoveLotResponse:
            await lots.remove_lot(uow, caller, request.lot_id, now=now)
            return pb.RemoveLotResponse()

        return await self._mutate("RemoveLot", request, principal, pb.RemoveLotResponse, action)

    async def GetLot(self, request: pb.GetLotRequest, context: Context) -> pb.GetLotResponse:
        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.GetLotResponse:
            reply = pb.GetLotResponse(lot=mapping.lot_message(await lots.get_lot(uow, caller, request.lot_id)))
            published = await rooms.published_lot(uow, caller, request.lot_id)
            if published is not None:
                reply.published.CopyFrom(mapping.published_lot_message(published))
            return reply

        return await self._read(action)

    async def WithdrawLot(self, request: pb.WithdrawLotRequest, context: Context) -> pb.WithdrawLotResponse:
        principal = current_principal()
        command = self._command(request, mapping.withdraw_lot)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.WithdrawLotResponse:
            views = await lots.withdraw_lot(uow, caller, command, ids=self._ids, now=now)
            return pb.WithdrawLotResponse(lots=mapping.lot_messages(views))

        return await self._mutate("WithdrawLot", request, principal, pb.WithdrawLotResponse, action)

    async def ListLots(self, request: pb.ListLotsRequest, context: Context) -> pb.ListLotsResponse:
        query = mapping.list_lots(request)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.ListLotsResponse:
            page = await lots.list_lots(uow, caller, query)
            return pb.ListLotsResponse(lots=mapping.lot_messages(page.items), page=mapping.page_info(page))

        return await self._read(action)

    async def ReorderLots(self, request: pb.ReorderLotsRequest, context: Context) -> pb.ReorderLotsResponse:
        principal = current_principal()
        command = self._command(request, mapping.reorder_lots)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.ReorderLotsResponse:
            views = await lots.reorder_lots(uow, caller, command, now=now)
            return pb.ReorderLotsResponse(lots=mapping.lot_messages(views))

        return await self._mutate("ReorderLots", request, principal, pb.ReorderLotsResponse, action)

    # -- schedule -----------------------------------------------------------------------------------

    async def GetSchedule(self, request: pb.GetScheduleRequest, context: Context) -> pb.GetScheduleResponse:
        query = mapping.get_schedule(request)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.GetScheduleResponse:
            return mapping.schedule_message(await schedule.get_schedule(uow, caller, query, now=now))

        return await self._read(action)

    # -- registrations and reservations -------------------------------------------------------------

    async def RegisterForSale(self, request: pb.RegisterForSaleRequest, context: Context) -> pb.RegisterForSaleResponse:
        principal = current_principal()

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.RegisterForSaleResponse:
            registration = await registrations.register_for_sale(
                uow, caller, request.sale_id, ids=self._ids, deposits=self._deposits, now=now
            )
            return pb.RegisterForSaleResponse(registration=mapping.registration_message(registration))

        return await self._mutate("RegisterForSale", request, principal, pb.RegisterForSaleResponse, action)

    async def DecideRegistration(
        self, request: pb.DecideRegistrationRequest, context: Context
    ) -> pb.DecideRegistrationResponse:
        principal = current_principal()
        command = self._command(request, mapping.decide_registration)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.DecideRegistrationResponse:
            registration = await registrations.decide_registration(uow, caller, command, ids=self._ids, now=now)
            return pb.DecideRegistrationResponse(registration=mapping.registration_message(registration))

        return await self._mutate("DecideRegistration", request, principal, pb.DecideRegistrationResponse, action)

    async def ListRegistrations(
        self, request: pb.ListRegistrationsRequest, context: Context
    ) -> pb.ListRegistrationsResponse:
        query = mapping.list_registrations(request)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.ListRegistrationsResponse:
            page = await registrations.list_registrations(uow, caller, query)
            return pb.ListRegistrationsResponse(
                registrations=[mapping.registration_message(r) for r in page.items], page=mapping.page_info(page)
            )

        return await self._read(action)

    async def ReserveLot(self, request: pb.ReserveLotRequest, context: Context) -> pb.ReserveLotResponse:
        principal = current_principal()

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.ReserveLotResponse:
            reserved = await reservations.reserve_lot(uow, caller, request.lot_id, ids=self._ids, now=now)
            reply = pb.ReserveLotResponse(reservation=mapping.reservation_message(reserved.reservation))
            if reserved.seat is not None:
                reply.seat.CopyFrom(mapping.seat_message(reserved.seat))
            return reply

        return await self._mutate("ReserveLot", request, principal, pb.ReserveLotResponse, action)

    async def CancelReservation(
        self, request: pb.CancelReservationRequest, context: Context
    ) -> pb.CancelReservationResponse:
        principal = current_principal()

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.CancelReservationResponse:
            reservation = await reservations.cancel_reservation(
                uow, caller, request.reservation_id, ids=self._ids, now=now
            )
            return pb.CancelReservationResponse(reservation=mapping.reservation_message(reservation))

        return await self._mutate("CancelReservation", request, principal, pb.CancelReservationResponse, action)

    async def ListMyReservations(
        self, request: pb.ListMyReservationsRequest, context: Context
    ) -> pb.ListMyReservationsResponse:
        query = mapping.list_my_reservations(request)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.ListMyReservationsResponse:
            page = await reservations.list_my_reservations(uow, caller, query)
            return pb.ListMyReservationsResponse(
                reservations=[mapping.reservation_message(r) for r in page.items], page=mapping.page_info(page)
            )

        return await self._read(action)

    # -- rooms --------------------------------------------------------------------------------------

    async def EnterRoom(self, request: pb.EnterRoomRequest, context: Context) -> pb.EnterRoomResponse:
        principal = current_principal()

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.EnterRoomResponse:
            seat = await rooms.enter_room(uow, caller, request.lot_id, ids=self._ids, now=now)
            return pb.EnterRoomResponse(seat=mapping.seat_message(seat))

        return await self._mutate("EnterRoom", request, principal, pb.EnterRoomResponse, action)

    async def GetSeat(self, request: pb.GetSeatRequest, context: Context) -> pb.GetSeatResponse:
        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.GetSeatResponse:
            lookup = await rooms.get_seat(uow, caller, request.lot_id, request.bidder_id)
            reply = pb.GetSeatResponse(seated=lookup.seated)
            if lookup.seat is not None:
                reply.seat.CopyFrom(mapping.seat_message(lookup.seat))
            return reply

        return await self._read(action)

    async def StartLot(self, request: pb.StartLotRequest, context: Context) -> pb.StartLotResponse:
        return await self.start_lot(request, current_principal())

    async def start_lot(self, request: pb.StartLotRequest, principal: Principal) -> pb.StartLotResponse:
        """StartLot on behalf of `principal`: the RPC's caller, or the catalog's own scheduler."""

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.StartLotResponse:
            view = await rooms.start_lot(uow, caller, request.lot_id, ids=self._ids, now=now)
            return pb.StartLotResponse(lot=mapping.lot_message(view))

        return await self._mutate("StartLot", request, principal, pb.StartLotResponse, action)

    async def CloseLot(self, request: pb.CloseLotRequest, context: Context) -> pb.CloseLotResponse:
        principal = current_principal()
        command = self._command(request, mapping.close_lot)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.CloseLotResponse:
            view = await rooms.close_lot(uow, caller, command, ids=self._ids, now=now)
            return pb.CloseLotResponse(lot=mapping.lot_message(view))

        return await self._mutate("CloseLot", request, principal, pb.CloseLotResponse, action)

    # -- staff --------------------------------------------------------------------------------------

    async def AssignStaff(self, request: pb.AssignStaffRequest, context: Context) -> pb.AssignStaffResponse:
        principal = current_principal()
        change = self._command(request, mapping.staff_change)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.AssignStaffResponse:
            assignment = await staff.assign_staff(uow, caller, change, ids=self._ids, now=now)
            return pb.AssignStaffResponse(assignment=mapping.staff_message(assignment))

        return await self._mutate("AssignStaff", request, principal, pb.AssignStaffResponse, action)

    async def UnassignStaff(self, request: pb.UnassignStaffRequest, context: Context) -> pb.UnassignStaffResponse:
        principal = current_principal()
        change = self._command(request, mapping.staff_change)

        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.UnassignStaffResponse:
            await staff.unassign_staff(uow, caller, change, ids=self._ids, now=now)
            return pb.UnassignStaffResponse()

        return await self._mutate("UnassignStaff", request, principal, pb.UnassignStaffResponse, action)

    async def ListSaleStaff(self, request: pb.ListSaleStaffRequest, context: Context) -> pb.ListSaleStaffResponse:
        async def action(uow: CatalogUnitOfWork, caller: Principal, now: datetime) -> pb.ListSaleStaffResponse:
            assignments = await staff.list_sale_staff(uow, caller, request.sale_id)
            return pb.ListSaleStaffResponse(staff=[mapping.staff_message(a) for a in assignments])

        return await self._read(action)
