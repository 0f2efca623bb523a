"""gavel.notify.v1.NotifyService over notify's use cases: mapping only, no rules.

Mutating RPCs run in `gavel_kit.db.run_idempotent` keyed by (caller, method, request_id), so a
repeat returns the first answer; ConfirmVerification is the exception — a wrong code must count
as a try even though the call fails, and confirming twice is harmless — and Unsubscribe, whose
signed token makes every repeat the same change.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from gavel.common.v1 import paging_pb2
from gavel.notify.v1 import notify_service_pb2 as pb
from gavel.notify.v1 import notify_service_pb2_grpc
from gavel_core.auth import Principal
from gavel_core.errors import FieldViolation, InvalidArgument
from gavel_kit.auth import current_principal
from gavel_kit.db import SqlUnitOfWork, run_idempotent
from notify.adapters import mapping
from notify.adapters.unit_of_work import SqlNotifyUnitOfWork
from notify.app import preferences as use
from notify.app.ports import DeliveryFilter
from notify.domain.kinds import Channel

SERVICE = "gavel.notify.v1.NotifyService"
R = TypeVar("R", bound=Message)
Context = grpc.aio.ServicerContext[Any, Any] | None
MAX_REQUEST_ID = 128


def _request_id(value: str) -> None:
    if not value or len(value) > MAX_REQUEST_ID or not value.isprintable():
        raise InvalidArgument([FieldViolation("request_id", f"must be 1 to {MAX_REQUEST_ID} printable characters")])


class NotifyServicer(notify_service_pb2_grpc.NotifyServiceServicer):
    def __init__(
        self,
        uow_factory: Callable[[], SqlNotifyUnitOfWork],
        *,
        clock: Callable[[], datetime],
        link_key: bytes,
        code_key: bytes,
        on_queued: Callable[[], None],
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._link_key = link_key
        self._code_key = code_key
        self._on_queued = on_queued

    async def _mutate(
        self,
        name: str,
        request: Any,
        response_type: type[R],
        action: Callable[[SqlNotifyUnitOfWork, Principal, datetime], Awaitable[R]],
    ) -> R:
        _request_id(request.request_id)
        principal = current_principal()

        async def attempt(uow: SqlUnitOfWork) -> bytes:
            reply = await action(uow, principal, self._clock())  # type: ignore[arg-type]
            return reply.SerializeToString(deterministic=True)

        answer = await run_idempotent(
            self._uow,
            caller=principal.subject,
            method=f"/{SERVICE}/{name}",
            request_id=request.request_id,
            request_bytes=request.SerializeToString(deterministic=True),
            action=attempt,
        )
        return response_type.FromString(answer)

    # -- preferences ------------------------------------------------------------------------------

    async def GetPreferences(self, request: pb.GetPreferencesRequest, context: Context) -> pb.GetPreferencesResponse:
        async with self._uow() as uow:
            found = await use.get_preferences(uow, current_principal(), request.user_id)
        return pb.GetPreferencesResponse(preferences=mapping.preferences_message(found))

    async def SetPreferences(self, request: pb.SetPreferencesRequest, context: Context) -> pb.SetPreferencesResponse:
        wanted = mapping.preferences_input(request.preferences)

        async def action(uow: SqlNotifyUnitOfWork, caller: Principal, now: datetime) -> pb.SetPreferencesResponse:
            saved = await use.set_preferences(uow, caller, request.user_id, wanted, now)
            return pb.SetPreferencesResponse(preferences=mapping.preferences_message(saved))

        return await self._mutate("SetPreferences", request, pb.SetPreferencesResponse, action)

    # -- verification and tests -------------------------------------------------------------------

    async def StartVerification(
        self, request: pb.StartVerificationRequest, context: Context
    ) -> pb.StartVerificationResponse:
        channel = mapping.channel(request.channel)
        code = f"{secrets.randbelow(1_000_000):06d}"

        async def action(uow: SqlNotifyUnitOfWork, caller: Principal, now: datetime) -> pb.StartVerificationResponse:
            sent = await use.start_verification(uow, caller, channel, request.request_id, code, self._code_key, now)
            return pb.StartVerificationResponse(sent_to=sent.sent_to, expires_at=mapping.timestamp(sent.expires_at))

        reply = await self._mutate("StartVerification", request, pb.StartVerificationResponse, action)
        self._on_queued()
        return reply

    async def ConfirmVerification(
        self, request: pb.ConfirmVerificationRequest, context: Context
    ) -> pb.ConfirmVerificationResponse:
        _request_id(request.request_id)
        channel = mapping.channel(request.channel)
        principal = current_principal()
        async with self._uow() as uow:
            try:
                saved = await use.confirm_verification(
                    uow, principal, channel, request.code, self._code_key, self._clock()
                )
            except use.WrongCode:
                await uow.commit()  # the try counts
                raise
            await uow.commit()
        message = mapping.preferences_message(saved)
        return pb.ConfirmVerificationResponse(contact=message.email if channel is Channel.EMAIL else message.phone)

    async def SendTestMessage(self, request: pb.SendTestMessageRequest, context: Context) -> pb.SendTestMessageResponse:
        channel = mapping.channel(request.channel)

        async def action(uow: SqlNotifyUnitOfWork, caller: Principal, now: datetime) -> pb.SendTestMessageResponse:
            return pb.SendTestMessageResponse(
                delivery_id=await use.send_test(uow, caller, channel, request.request_id, now)
            )

        reply = await self._mutate("SendTestMessage", request, pb.SendTestMessageResponse, action)
        self._on_queued()
        return reply

    async def Unsubscribe(self, request: pb.UnsubscribeRequest, context: Context) -> pb.UnsubscribeResponse:
        async with self._uow() as uow:
            what = await use.unsubscribe(uow, request.token, self._link_key, self._clock())
            await uow.commit()
        return pb.UnsubscribeResponse(user_id=what.user_id, kind=what.kind, channel=mapping.CHANNEL_WIRE[what.channel])

    # -- lists --------------------------------------------------------------------------------------

    async def ListMyNotifications(
        self, request: pb.ListMyNotificationsRequest, context: Context
    ) -> pb.ListMyNotificationsResponse:
        async with self._uow() as uow:
            page = await use.list_mine(uow, current_principal(), request.page.page_size, request.page.page_token)
        return pb.ListMyNotificationsResponse(
            notifications=[mapping.delivery_message(d, hide_address=True) for d in page.items],
            page=_page(page.next_token, page.total),
        )

    async def ListDeliveries(self, request: pb.ListDeliveriesRequest, context: Context) -> pb.ListDeliveriesResponse:
        if len(request.user_id) > MAX_REQUEST_ID:
            raise InvalidArgument([FieldViolation("user_id", "is too long")])
        filter = DeliveryFilter(request.user_id, mapping.statuses(list(request.statuses)))
        async with self._uow() as uow:
            page = await use.list_deliveries(uow, filter, request.page.page_size, request.page.page_token)
        return pb.ListDeliveriesResponse(
            deliveries=[mapping.delivery_message(d, hide_address=False) for d in page.items],
            page=_page(page.next_token, page.total),
        )

    async def ListDeadLetters(self, request: pb.ListDeadLettersRequest, context: Context) -> pb.ListDeadLettersResponse:
        async with self._uow() as uow:
            page = await uow.list_dead_letters(request.page.page_size, request.page.page_token)
        return pb.ListDeadLettersResponse(
            dead_letters=[mapping.dead_letter_message(view) for view in page.items],
            page=_page(page.next_token, page.total),
        )

    async def RetryDeadLetter(self, request: pb.RetryDeadLetterRequest, context: Context) -> pb.RetryDeadLetterResponse:
        if not request.delivery_id or len(request.delivery_id) > 40:
            raise InvalidArgument([FieldViolation("delivery_id", "must be a delivery id")])

        async def action(uow: SqlNotifyUnitOfWork, caller: Principal, now: datetime) -> pb.RetryDeadLetterResponse:
            delivery = await use.retry_dead_letter(uow, request.delivery_id, now)
            return pb.RetryDeadLetterResponse(delivery=mapping.delivery_message(delivery, hide_address=False))

        reply = await self._mutate("RetryDeadLetter", request, pb.RetryDeadLetterResponse, action)
        self._on_queued()
        return reply


def _page(token: str, total: int) -> paging_pb2.PageInfo:
    return paging_pb2.PageInfo(next_page_token=token, total_size=total)
