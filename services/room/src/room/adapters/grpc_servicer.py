"""gavel.room.v1.RoomService over gRPC.

Lot calls are routed (room.adapters.forwarding): the handlers below run on the replica that owns
the lot's partition, with the caller the entry replica authenticated. Watch, the paddle registry
and the reports run on the replica that took the call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import empty_pb2
from google.protobuf.message import Message

from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1.money_pb2 import Money
from gavel.common.v1.paging_pb2 import PageInfo, PageRequest
from gavel.events.v1 import catalog_events_pb2 as cev
from gavel.room.v1 import room_service_pb2 as pb
from gavel.room.v1 import room_service_pb2_grpc as pb_grpc
from gavel_core.auth import Principal, Role
from gavel_core.errors import FieldViolation, GavelError, InvalidArgument, NotFound, ResourceExhausted, Unavailable
from gavel_kit.auth import current_principal
from gavel_kit.db import Database, SqlUnitOfWork, run_idempotent, utcnow
from room.adapters import orm
from room.adapters.catalog_client import CatalogClient
from room.adapters.codec import lot_from_message, lot_state_message, timestamp
from room.adapters.event_log import valid_lot_id
from room.adapters.forwarding import CallRouter, Route
from room.adapters.lookups import Negatives
from room.adapters.metrics import WATCH_STREAMS
from room.adapters.repositories import PaddleRecord, Paddles, Reports
from room.app.feeds import Feeds, WatchEnded, Watcher, WatcherOverflow
from room.app.model import PublishedLot
from room.app.room import CRIER, SALE_ADMIN, Outcome, RoomService, StaffRules
from room.app.views import Pseudonyms

SERVICE = "gavel.room.v1.RoomService"
Context = grpc.aio.ServicerContext[Any, Any]
DEFAULT_PAGE = 50
MAX_PAGE = 500
MAX_WATCHED_LOTS = 100
MAX_PAGE_TOKEN = 9  # digits of an offset: a huge one must not reach the database
WATCHER_QUEUE_LIMIT = 10_000


def fingerprint(method: str, caller: Principal, request: Message) -> str:
    """A digest of who asked what: a request id reused for another request is refused."""
    digest = hashlib.sha256(f"{method}\n{caller.subject}\n".encode())
    digest.update(request.SerializeToString(deterministic=True))
    return digest.hexdigest()[:32]


def _money(amount: int | None, currency: str) -> Money | None:
    return None if amount is None else Money(amount_minor=amount, currency=currency)


def _result(outcome: Outcome) -> pb.LotCommandResult:
    return pb.LotCommandResult(lot_sequence=outcome.receipt.lot_sequence, state=lot_state_message(outcome.view))


STAFF = (Role.CRIER, Role.SALE_ADMIN, Role.SITE_ADMIN, Role.SERVICE)  # they see account ids


class RoomHandlers:
    """Each lot RPC as `(request, caller) -> response`, run by the lot's owner."""

    def __init__(self, room: RoomService, pseudonyms: Pseudonyms) -> None:
        self._room = room
        self._pseudonyms = pseudonyms

    def routes(self) -> dict[str, Route]:
        simple: dict[str, tuple[type[Message], type[Message]]] = {
            "ConfirmWin": (pb.ConfirmWinRequest, pb.ConfirmWinResponse),
            "DeclineWin": (pb.DeclineWinRequest, pb.DeclineWinResponse),
            "AcceptByVendor": (pb.AcceptByVendorRequest, pb.AcceptByVendorResponse),
            "DeclineByVendor": (pb.DeclineByVendorRequest, pb.DeclineByVendorResponse),
            "GoingOnce": (pb.GoingOnceRequest, pb.GoingOnceResponse),
            "GoingTwice": (pb.GoingTwiceRequest, pb.GoingTwiceResponse),
            "Hammer": (pb.HammerRequest, pb.HammerResponse),
            "Pass": (pb.PassRequest, pb.PassResponse),
            "Reopen": (pb.ReopenRequest, pb.ReopenResponse),
            "UndoLastBid": (pb.UndoLastBidRequest, pb.UndoLastBidResponse),
            "Pause": (pb.PauseRequest, pb.PauseResponse),
            "Resume": (pb.ResumeRequest, pb.ResumeResponse),
        }
        routes = {
            name: Route(request_type, response_type, self._simple(name, response_type))
            for name, (request_type, response_type) in simple.items()
        }
        routes.update(
            {
                "PlaceBid": Route(pb.PlaceBidRequest, pb.PlaceBidResponse, self.place_bid),
                "BuyNow": Route(pb.BuyNowRequest, pb.BuyNowResponse, self.buy_now),
                "PickOption": Route(pb.PickOptionRequest, pb.PickOptionResponse, self.pick_option),
                "FloorBid": Route(pb.FloorBidRequest, pb.FloorBidResponse, self.floor_bid),
                "OpenLot": Route(pb.OpenLotRequest, pb.OpenLotResponse, self.open_lot),
                "SetAsking": Route(pb.SetAskingRequest, pb.SetAskingResponse, self.set_asking),
                "SetIncrement": Route(pb.SetIncrementRequest, pb.SetIncrementResponse, self.set_increment),
                "GetLotState": Route(pb.GetLotStateRequest, pb.GetLotStateResponse, self.get_lot_state),
                "Withdraw": Route(pb.WithdrawRequest, pb.WithdrawResponse, self.withdraw),
                "StartLot": Route(cev.LotStarting, empty_pb2.Empty, self.start_lot),
                "WithdrawFromCatalog": Route(cev.LotWithdrawn, empty_pb2.Empty, self.withdraw_from_catalog),
            }
        )
        return routes

    async def place_bid(self, request: pb.PlaceBidRequest, caller: Principal) -> pb.PlaceBidResponse:
        amount = request.max_amount
        receipt = await self._room.place_bid(
            caller,
            request.lot_id,
            request.request_id,
            amount.amount_minor,
            amount.currency,
            fingerprint("PlaceBid", caller, request),
        )
        leader = receipt.leader or ""
        if leader and leader != caller.subject and not caller.has(*STAFF):  # another bidder: by pseudonym
            info = self._room.lots.actor(request.lot_id).info
            leader = self._pseudonyms.alias(info.sale_id if info is not None else "", leader)
        return pb.PlaceBidResponse(
            lot_sequence=receipt.lot_sequence,
            price=Money(amount_minor=receipt.price, currency=receipt.currency),
            leader_id=leader,
            leading=receipt.leader == caller.subject,
        )

    async def buy_now(self, request: pb.BuyNowRequest, caller: Principal) -> pb.BuyNowResponse:
        outcome = await self._room.buy_now(
            caller, request.lot_id, request.request_id, fingerprint("BuyNow", caller, request)
        )
        receipt = outcome.receipt
        return pb.BuyNowResponse(
            lot_sequence=receipt.lot_sequence,
            price=Money(amount_minor=receipt.price, currency=receipt.currency),
            state=lot_state_message(outcome.view),
        )

    async def pick_option(self, request: pb.PickOptionRequest, caller: Principal) -> pb.PickOptionResponse:
        outcome = await self._room.pick_option(
            caller, request.lot_id, request.request_id, request.option, fingerprint("PickOption", caller, request)
        )
        return pb.PickOptionResponse(
            lot_sequence=outcome.receipt.lot_sequence,
            correct=bool(outcome.receipt.correct),
            state=lot_state_message(outcome.view),
        )

    async def floor_bid(self, request: pb.FloorBidRequest, caller: Principal) -> pb.FloorBidResponse:
        outcome = await self._room.floor_bid(
            caller,
            request.lot_id,
            request.request_id,
            request.paddle,
            request.force,
            request.press_ms,
            fingerprint("FloorBid", caller, request),
        )
        receipt = outcome.receipt
        return pb.FloorBidResponse(
            lot_sequence=receipt.lot_sequence,
            bidder_id=receipt.bidder or "",
            amount=_money(receipt.amount, receipt.currency),
            jumps=receipt.jumps or 0,
            state=lot_state_message(outcome.view),
        )

    async def open_lot(self, request: pb.OpenLotRequest, caller: Principal) -> pb.OpenLotResponse:
        asking = request.asking if request.HasField("asking") else None
        outcome = await self._room.open_lot(
            caller,
            request.lot_id,
            request.request_id,
            asking.amount_minor if asking is not None else None,
            asking.currency if asking is not None else "",
            fingerprint("OpenLot", caller, request),
        )
        return pb.OpenLotResponse(result=_result(outcome))

    async def set_asking(self, request: pb.SetAskingRequest, caller: Principal) -> pb.SetAskingResponse:
        outcome = await self._room.set_asking(
            caller,
            request.lot_id,
            request.request_id,
            request.asking.amount_minor,
            request.asking.currency,
            fingerprint("SetAsking", caller, request),
        )
        return pb.SetAskingResponse(result=_result(outcome))

    async def set_increment(self, request: pb.SetIncrementRequest, caller: Principal) -> pb.SetIncrementResponse:
        increment = request.increment if request.HasField("increment") else None
        outcome = await self._room.set_increment(
            caller,
            request.lot_id,
            request.request_id,
            increment.amount_minor if increment is not None else None,
            increment.currency if increment is not None else "",
            fingerprint("SetIncrement", caller, request),
        )
        return pb.SetIncrementResponse(result=_result(outcome))

    def _simple(self, name: str, response_type: type[Message]) -> Callable[[Any, Principal], Any]:
        """A command that takes only the lot (and the caller): answers LotCommandResult."""
        room = self._room
        decide = {
            "ConfirmWin": room.confirm_win,
            "DeclineWin": room.decline_win,
            "AcceptByVendor": room.vendor_accept,
            "DeclineByVendor": room.vendor_decline,
        }.get(name)

        async def handle(request: Any, caller: Principal) -> Message:
            digest = fingerprint(name, caller, request)
            if decide is not None:
                outcome = await decide(caller, request.lot_id, request.request_id, digest)
            else:  # the crier's calls, by RPC name
                outcome = await room.crier(caller, request.lot_id, request.request_id, name, digest)
            return response_type(result=_result(outcome))

        return handle

    async def get_lot_state(self, request: pb.GetLotStateRequest, caller: Principal) -> pb.GetLotStateResponse:
        state = lot_state_message(await self._room.lot_state(request.lot_id))
        if not caller.has(*STAFF):  # the public, bidders included, see per-sale pseudonyms
            alias = self._pseudonyms.alias
            if state.leader_id:
                state.leader_id = alias(state.sale_id, state.leader_id)
            if state.buyer_id:
                state.buyer_id = alias(state.sale_id, state.buyer_id)
            if caller.subject:
                state.viewer_alias = alias(state.sale_id, caller.subject)
        return pb.GetLotStateResponse(state=state)

    async def withdraw(self, request: pb.WithdrawRequest, caller: Principal) -> pb.WithdrawResponse:
        outcome = await self._room.withdraw(
            caller, request.lot_id, request.request_id, request.reason, fingerprint("Withdraw", caller, request)
        )
        return pb.WithdrawResponse(result=_result(outcome))

    async def start_lot(self, request: cev.LotStarting, caller: Principal) -> empty_pb2.Empty:
        await self._room.start(_published(request.lot))
        return empty_pb2.Empty()

    async def withdraw_from_catalog(self, request: cev.LotWithdrawn, caller: Principal) -> empty_pb2.Empty:
        reason = request.reason or ("sale cancelled" if request.sale_cancelled else "withdrawn")
        await self._room.withdraw_from_catalog(_published(request.lot), reason)
        return empty_pb2.Empty()


def _published(lot: res.Lot) -> PublishedLot:
    info, terms = lot_from_message(lot)
    return PublishedLot(info, terms, lot.SerializeToString())


def _page(request: PageRequest) -> tuple[int, int]:
    size = request.page_size or DEFAULT_PAGE
    if not 0 < size <= MAX_PAGE:
        raise InvalidArgument([FieldViolation("page.page_size", f"1 to {MAX_PAGE}")])
    token = request.page_token
    if token and not (token.isascii() and token.isdigit() and len(token) <= MAX_PAGE_TOKEN):
        raise InvalidArgument([FieldViolation("page.page_token", "use the next_page_token of the previous page")])
    return int(token or 0), size


class RoomServicer(pb_grpc.RoomServiceServicer):
    def __init__(
        self,
        router: CallRouter,
        feeds: Feeds,
        reports: Reports,
        paddles: Paddles,
        db: Database,
        staff: StaffRules,
        catalog: CatalogClient | None = None,
        watcher_limit: int = WATCHER_QUEUE_LIMIT,
    ) -> None:
        self._watcher_limit = watcher_limit
        self._router = router
        self._feeds = feeds
        self._reports = reports
        self._paddles = paddles
        self._db = db
        self._staff = staff
        self._catalog = catalog
        self._not_waitable = Negatives(lambda: time.time_ns() // 1_000_000)

    async def _route(self, method: str, request: Any) -> Any:
        lot_id = valid_lot_id(request.lot_id)
        return await self._router.call(method, lot_id, request, current_principal())

    # -- routed to the lot's owner ------------------------------------------------------------------------

    async def PlaceBid(self, request: pb.PlaceBidRequest, context: Context) -> Any:
        return await self._route("PlaceBid", request)

    async def BuyNow(self, request: pb.BuyNowRequest, context: Context) -> Any:
        return await self._route("BuyNow", request)

    async def PickOption(self, request: pb.PickOptionRequest, context: Context) -> Any:
        return await self._route("PickOption", request)

    async def ConfirmWin(self, request: pb.ConfirmWinRequest, context: Context) -> Any:
        return await self._route("ConfirmWin", request)

    async def DeclineWin(self, request: pb.DeclineWinRequest, context: Context) -> Any:
        return await self._route("DeclineWin", request)

    async def FloorBid(self, request: pb.FloorBidRequest, context: Context) -> Any:
        return await self._route("FloorBid", request)

    async def AcceptByVendor(self, request: pb.AcceptByVendorRequest, context: Context) -> Any:
        return await self._route("AcceptByVendor", request)

    async def DeclineByVendor(self, request: pb.DeclineByVendorRequest, context: Context) -> Any:
        return await self._route("DeclineByVendor", request)

    async def OpenLot(self, request: pb.OpenLotRequest, context: Context) -> Any:
        return await self._route("OpenLot", request)

    async def SetAsking(self, request: pb.SetAskingRequest, context: Context) -> Any:
        return await self._route("SetAsking", request)

    async def SetIncrement(self, request: pb.SetIncrementRequest, context: Context) -> Any:
        return await self._route("SetIncrement", request)

    async def GoingOnce(self, request: pb.GoingOnceRequest, context: Context) -> Any:
        return await self._route("GoingOnce", request)

    async def GoingTwice(self, request: pb.GoingTwiceRequest, context: Context) -> Any:
        return await self._route("GoingTwice", request)

    async def Hammer(self, request: pb.HammerRequest, context: Context) -> Any:
        return await self._route("Hammer", request)

    async def Pass(self, request: pb.PassRequest, context: Context) -> Any:
        return await self._route("Pass", request)

    async def Reopen(self, request: pb.ReopenRequest, context: Context) -> Any:
        return await self._route("Reopen", request)

    async def UndoLastBid(self, request: pb.UndoLastBidRequest, context: Context) -> Any:
        return await self._route("UndoLastBid", request)

    async def Pause(self, request: pb.PauseRequest, context: Context) -> Any:
        return await self._route("Pause", request)

    async def Resume(self, request: pb.ResumeRequest, context: Context) -> Any:
        return await self._route("Resume", request)

    async def GetLotState(self, request: pb.GetLotStateRequest, context: Context) -> Any:
        return await self._route("GetLotState", request)

    async def Withdraw(self, request: pb.WithdrawRequest, context: Context) -> Any:
        return await self._route("Withdraw", request)

    async def _sale_of(self, lot_id: str) -> str:
        """The lot's sale, from its owner (NOT_FOUND for a lot the room does not run)."""
        reply = await self._router.call(
            "GetLotState", lot_id, pb.GetLotStateRequest(lot_id=lot_id), current_principal()
        )
        assert isinstance(reply, pb.GetLotStateResponse)
        return str(reply.state.sale_id)

    async def _require_lot_staff(self, lot_id: str) -> None:
        await self._staff.require(current_principal(), await self._sale_of(lot_id), CRIER, SALE_ADMIN)

    async def _may_wait_for(self, lot_id: str) -> None:
        """NOT_FOUND unless the room runs the lot, or the catalog published it and it may start."""
        if lot_id in self._feeds.feeds and self._feeds.feeds[lot_id].head > 0:
            return
        try:
            await self._router.call("GetLotState", lot_id, pb.GetLotStateRequest(lot_id=lot_id), current_principal())
            return
        except NotFound:
            if self._catalog is None or self._not_waitable.fresh((lot_id,)):
                raise
            if not await self._catalog.published_not_started(lot_id):
                self._not_waitable.remember((lot_id,))
                raise

    # -- served here ----------------------------------------------------------------------------------------

    async def Watch(self, request: pb.WatchRequest, context: Context) -> AsyncIterator[pb.WatchResponse]:
        cursors = list(request.lots)
        if not 1 <= len(cursors) <= MAX_WATCHED_LOTS:
            raise InvalidArgument([FieldViolation("lots", f"watch 1 to {MAX_WATCHED_LOTS} lots")])
        seen: set[str] = set()
        for index, cursor in enumerate(cursors):
            valid_lot_id(cursor.lot_id, f"lots[{index}].lot_id")
            if cursor.lot_id in seen:
                raise InvalidArgument([FieldViolation(f"lots[{index}].lot_id", "each lot at most once")])
            seen.add(cursor.lot_id)
        checks = await asyncio.gather(*(self._may_wait_for(c.lot_id) for c in cursors), return_exceptions=True)
        for outcome in checks:
            if isinstance(outcome, GavelError):
                raise outcome
            if isinstance(outcome, BaseException):
                raise Unavailable("the room could not tell whether these lots exist; retry") from outcome
        watcher = Watcher(self._watcher_limit)
        for cursor in cursors:
            self._feeds.watch(watcher, cursor.lot_id, cursor.after_sequence)
        WATCH_STREAMS.inc()
        try:
            while True:
                try:
                    _, item = await watcher.next()
                except WatcherOverflow:
                    raise ResourceExhausted(
                        "this watcher fell too far behind; resume from the last lot_sequence received"
                    ) from None
                except WatchEnded:
                    raise Unavailable(
                        "this room replica is shutting down; resume from the last lot_sequence received"
                    ) from None
                response = item.payload
                assert isinstance(response, pb.WatchResponse)
                yield response
        finally:
            WATCH_STREAMS.dec()
            self._feeds.unwatch(watcher)

    async def RegisterPaddle(self, request: pb.RegisterPaddleRequest, context: Context) -> pb.RegisterPaddleResponse:
        caller = current_principal()
        violations = []
        if not request.request_id:
            violations.append(FieldViolation("request_id", "required"))
        if not request.sale_id:
            violations.append(FieldViolation("sale_id", "required"))
        if not 1 <= len(request.paddle) <= 32:
            violations.append(FieldViolation("paddle", "1 to 32 characters"))
        if not request.bidder_id:
            violations.append(FieldViolation("bidder_id", "required"))
        if violations:
            raise InvalidArgument(violations)
        await self._staff.require(caller, request.sale_id, CRIER, SALE_ADMIN)

        async def register(uow: SqlUnitOfWork) -> bytes:
            record = PaddleRecord(request.sale_id, request.paddle, request.bidder_id, caller.subject, utcnow())
            await self._paddles.register(uow.session, record)
            paddle = pb.Paddle(
                sale_id=record.sale_id,
                paddle=record.paddle,
                bidder_id=record.bidder_id,
                registered_by=record.registered_by,
                registered_at=timestamp(int(record.registered_at.timestamp() * 1000)),
            )
            return pb.RegisterPaddleResponse(paddle=paddle).SerializeToString()

        answer = await run_idempotent(
            lambda: SqlUnitOfWork(self._db, orm.tables),
            caller=caller.subject,
            method=f"/{SERVICE}/RegisterPaddle",
            request_id=request.request_id,
            request_bytes=request.SerializeToString(deterministic=True),
            action=register,
        )
        return pb.RegisterPaddleResponse.FromString(answer)

    async def ListBids(self, request: pb.ListBidsRequest, context: Context) -> pb.ListBidsResponse:
        lot_id = valid_lot_id(request.lot_id)
        offset, size = _page(request.page)
        await self._require_lot_staff(lot_id)
        page = await self._reports.bids(lot_id, offset, size)
        bids = [
            pb.BidRecord(
                lot_id=row.lot_id,
                lot_sequence=row.lot_sequence,
                bid_id=row.bid_id,
                bidder_id=row.bidder_id,
                source=row.source,
                amount=Money(amount_minor=row.amount_minor, currency=row.currency),
                price=Money(amount_minor=row.price_minor, currency=row.currency),
                leader_id=row.leader_id,
                paddle=row.paddle,
                placed_at=timestamp(_ms(row.placed_at)),
                undone=row.undone,
            )
            for row in page.rows
        ]
        return pb.ListBidsResponse(bids=bids, page=_page_info(page.next_offset, page.total))

    async def GetLotResult(self, request: pb.GetLotResultRequest, context: Context) -> pb.GetLotResultResponse:
        lot_id = valid_lot_id(request.lot_id)
        await self._require_lot_staff(lot_id)
        found = await self._reports.result(lot_id)
        if found is None:
            raise NotFound("lot result", lot_id)
        row, penalised = found
        result = pb.LotResult(
            lot_id=row.lot_id,
            outcome=row.outcome,
            buyer_id=row.buyer_id,
            source=row.source,
            paddle=row.paddle,
            discount_bp=row.discount_bp,
            unsold_reason=row.unsold_reason,
            decided_at=timestamp(_ms(row.decided_at)),
            penalised=penalised,
        )
        if row.hammer_minor is not None:
            result.hammer_price.CopyFrom(Money(amount_minor=row.hammer_minor, currency=row.currency))
        return pb.GetLotResultResponse(result=result)

    async def ListCrierActions(
        self, request: pb.ListCrierActionsRequest, context: Context
    ) -> pb.ListCrierActionsResponse:
        lot_id = valid_lot_id(request.lot_id)
        offset, size = _page(request.page)
        await self._require_lot_staff(lot_id)
        page = await self._reports.crier_actions(lot_id, offset, size)
        actions = [
            pb.CrierAction(
                lot_id=row.lot_id,
                lot_sequence=row.lot_sequence,
                action=row.action,
                actor_id=row.actor_id,
                at=timestamp(_ms(row.at)),
                details=json.loads(row.details),
            )
            for row in page.rows
        ]
        return pb.ListCrierActionsResponse(actions=actions, page=_page_info(page.next_offset, page.total))


def _ms(moment: dt.datetime) -> int:
    if moment.tzinfo is None:  # SQLite hands back naive datetimes for UTC columns
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def _page_info(next_offset: int | None, total: int) -> PageInfo:
    return PageInfo(next_page_token=str(next_offset) if next_offset is not None else "", total_size=total)
