"""Any replica accepts any call: lot calls run where the lot's partition is owned.

`CallRouter.call` runs the handler here when this replica owns the partition; otherwise it
forwards the call over core NATS request/reply to `gavel.room.cmd.<partition>`, where only the
owner listens (queue group `room-owners`, so a brief overlap of two owners still gets one copy),
and returns the owner's response, or raises the owner's error rebuilt field by field (the client
sees the same gRPC status and details). While a partition has no owner (a replica died and its
lease has not expired yet) the call is retried with a short backoff until the forward timeout;
every forwarded call is idempotent by its request id, so a retry after a lost reply is safe.

A forwarded call carries the caller's original bearer token, never claims: the owner verifies it
again (its verified-token cache makes that cheap) and runs the call as whoever the token says.
The room's own commands (ConfigureLot, StartLot) carry the entry replica's own service token and
are refused from anyone else. NATS permissions keep everyone but room replicas off the subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nats.errors
from google.protobuf.message import Message
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from gavel.room.v1 import forwarding_pb2 as fw
from gavel_core.auth import ANONYMOUS, Principal
from gavel_core.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    GavelError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from gavel_kit import telemetry
from gavel_kit.auth import TokenVerifier
from gavel_kit.logging import get_logger
from room.adapters.metrics import FORWARDED
from room.app.lots import NotOwner

log = get_logger("room.forwarding")

QUEUE_GROUP = "room-owners"
ATTEMPT_TIMEOUT_S = 1.0  # a reply slower than this is asked again (idempotent): the owner may have died
FIRST_BACKOFF_S = 0.02
MAX_BACKOFF_S = 0.1

Handler = Callable[[Any, Principal], Awaitable[Message]]
INTERNAL_METHODS = frozenset({"ConfigureLot", "StartLot", "WithdrawFromCatalog"})  # only the room itself sends these
PUBLIC_METHODS = frozenset({"GetLotState"})  # anyone, token or not


def command_subject(partition: int) -> str:
    return f"gavel.room.cmd.{partition}"


@dataclass(frozen=True, slots=True)
class Route:
    request_type: type[Message]
    response_type: type[Message]
    handler: Handler


def error_to_wire(error: GavelError) -> fw.ForwardedError:
    wire = fw.ForwardedError(kind=type(error).__name__, message=error.message)
    if isinstance(error, InvalidArgument):
        wire.violations.extend(fw.FieldViolation(field=v.field, description=v.description) for v in error.violations)
    elif isinstance(error, NotFound | AlreadyExists):
        wire.resource, wire.resource_id = error.resource, error.resource_id
    elif isinstance(error, FailedPrecondition):
        wire.reason = error.reason
        wire.metadata.update(error.metadata)
    elif isinstance(error, PermissionDenied):
        wire.reason = error.reason
    return wire


def error_from_wire(wire: fw.ForwardedError) -> Exception:
    kind, message = wire.kind, wire.message
    if kind == "InvalidArgument":
        return InvalidArgument([FieldViolation(v.field, v.description) for v in wire.violations], message)
    if kind == "NotFound":
        return NotFound(wire.resource, wire.resource_id)
    if kind == "AlreadyExists":
        return AlreadyExists(wire.resource, wire.resource_id, message)
    if kind == "FailedPrecondition":
        return FailedPrecondition(wire.reason, message, dict(wire.metadata))
    if kind == "PermissionDenied":
        return PermissionDenied(message, reason=wire.reason)
    simple: dict[str, type[GavelError]] = {
        "Unauthenticated": Unauthenticated,
        "ResourceExhausted": ResourceExhausted,
        "Aborted": Aborted,
        "Unavailable": Unavailable,
    }
    if kind in simple:
        return simple[kind](message)
    return RuntimeError(f"the lot's owner failed ({message})")  # INTERNAL at the edge, with a reference


class CallRouter:
    def __init__(
        self,
        nc: Client,
        routes: dict[str, Route],
        partition_of: Callable[[str], int],
        owns: Callable[[int], bool],
        spawn: Callable[[Any], object],
        timeout_s: float = 5.0,
        *,
        verifier: TokenVerifier,
        own_identity: Callable[[], Principal],
    ) -> None:
        self._nc = nc
        self._routes = routes
        self._partition_of = partition_of
        self._owns = owns
        self._spawn = spawn
        self._timeout_s = timeout_s
        self._verifier = verifier
        self._own_identity = own_identity
        self._subscriptions: dict[int, Subscription] = {}

    def own_identity(self) -> Principal:
        """This replica's own service principal, with a current credential (the room's own commands)."""
        return self._own_identity()

    async def call(self, method: str, lot_id: str, request: Message, caller: Principal) -> Message:
        route = self._routes[method]
        own = self._own_identity()
        if method in INTERNAL_METHODS and caller.subject != own.subject:
            raise PermissionDenied(f"{method} is the room's own command")
        if caller.subject == own.subject and not caller.credential:
            caller = own  # the room's own commands carry its current service token
        partition = self._partition_of(lot_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        backoff = FIRST_BACKOFF_S
        while True:
            if self._owns(partition):
                try:
                    return await route.handler(request, caller)
                except NotOwner:
                    pass  # the partition moved during the call: ask its new owner
            else:
                remaining = deadline - loop.time()
                answer = await self._forward(
                    method, partition, route, request, caller, min(remaining, ATTEMPT_TIMEOUT_S)
                )
                if answer is not None:
                    return answer
            if loop.time() + backoff >= deadline:
                raise Unavailable("the lot's room is changing owner; retry with the same request_id")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _forward(
        self, method: str, partition: int, route: Route, request: Message, caller: Principal, timeout_s: float
    ) -> Message | None:
        """The owner's answer; None when nobody answered (no owner right now, or it did not reply)."""
        if not caller.credential and method not in PUBLIC_METHODS:
            raise Unauthenticated("a forwarded call needs the caller's credential")
        call = fw.ForwardedCall(method=method, request=request.SerializeToString(), credential=caller.credential)
        headers = dict(telemetry.inject_headers({}))
        try:
            msg = await self._nc.request(
                command_subject(partition), call.SerializeToString(), timeout=max(0.05, timeout_s), headers=headers
            )
        except nats.errors.NoRespondersError:
            FORWARDED.labels("no_owner").inc()
            return None
        except nats.errors.TimeoutError:
            FORWARDED.labels("timeout").inc()
            return None
        FORWARDED.labels("answered").inc()
        reply = fw.ForwardedReply.FromString(msg.data)
        outcome = reply.WhichOneof("outcome")
        if outcome == "response":
            return route.response_type.FromString(reply.response)
        if outcome == "error":
            raise error_from_wire(reply.error)
        return None

    # -- the owner's side -----------------------------------------------------------------------------

    async def serve(self, partition: int) -> None:
        if partition in self._subscriptions:
            return

        async def on_call(msg: Msg) -> None:
            self._spawn(self._answer(partition, msg))  # calls of one partition run concurrently

        self._subscriptions[partition] = await self._nc.subscribe(
            command_subject(partition), queue=QUEUE_GROUP, cb=on_call
        )

    async def stop_serving(self, partition: int) -> None:
        subscription = self._subscriptions.pop(partition, None)
        if subscription is not None:
            with contextlib.suppress(nats.errors.Error):
                await subscription.unsubscribe()

    async def _answer(self, partition: int, msg: Msg) -> None:
        reply = fw.ForwardedReply()
        try:
            with telemetry.extracted_context(msg.headers):
                call = fw.ForwardedCall.FromString(msg.data)
                route = self._routes.get(call.method)
                if route is None:
                    raise InvalidArgument([FieldViolation("method", "not a routed RoomService call")])
                if call.credential:  # the owner trusts only what it verifies itself
                    caller = self._verifier.verify(call.credential)
                elif call.method in PUBLIC_METHODS:
                    caller = ANONYMOUS
                else:
                    raise Unauthenticated("a forwarded call needs the caller's credential")
                if call.method in INTERNAL_METHODS and caller.subject != self._own_identity().subject:
                    raise PermissionDenied(f"{call.method} is the room's own command")
                if not self._owns(partition):
                    raise NotOwner(str(partition))
                response = await route.handler(route.request_type.FromString(call.request), caller)
                reply.response = response.SerializeToString()
        except NotOwner:
            reply.not_owner = True
        except GavelError as error:
            reply.error.CopyFrom(error_to_wire(error))
        except Exception:
            reference = uuid.uuid4().hex[:12]
            log.exception("forwarded call failed", partition=partition, reference=reference)
            reply.error.CopyFrom(fw.ForwardedError(kind="Internal", message=f"reference {reference}"))
        try:
            await msg.respond(reply.SerializeToString())
        except nats.errors.Error:
            log.warning("could not answer a forwarded call", partition=partition)
