"""The server interceptor: trace context, auth, error mapping, metrics and logging in one wrapper.

It wraps the handler's behaviour (unary or server-streaming) once per method so it sees the call's
outcome; auth failures are mapped like any other error and still counted and logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cache
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from prometheus_client import Counter, Histogram

from gavel.common.v1 import auth_pb2
from gavel_core.auth import Role
from gavel_core.errors import (
    FieldViolation,
    GavelError,
    InvalidArgument,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from gavel_kit import telemetry
from gavel_kit.auth import TokenVerifier, reset_current_principal, set_current_principal
from gavel_kit.grpc.errors import internal_status, status_code_of, to_status
from gavel_kit.logging import get_logger

log = get_logger("gavel.grpc")
QUIET_CODES = frozenset({"OK", "CANCELLED"})  # logged at debug level only: a client giving up is not a failure

Behaviour = Callable[[Any, grpc.aio.ServicerContext], Any]
Wrapper = Callable[[Behaviour, str, bool], Behaviour]

HANDLED = Counter("gavel_grpc_server_handled_total", "RPCs completed, by method and status code", ["method", "code"])
LATENCY = Histogram(
    "gavel_grpc_server_handling_seconds",
    "RPC latency by method",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_ROLE_BY_ENUM = {
    auth_pb2.ROLE_BIDDER: Role.BIDDER,
    auth_pb2.ROLE_SELLER: Role.SELLER,
    auth_pb2.ROLE_CRIER: Role.CRIER,
    auth_pb2.ROLE_SALE_ADMIN: Role.SALE_ADMIN,
    auth_pb2.ROLE_SITE_ADMIN: Role.SITE_ADMIN,
    auth_pb2.ROLE_DEVICE: Role.DEVICE,
    auth_pb2.ROLE_SERVICE: Role.SERVICE,
}


class Malformed:
    """What a request that is not a valid message of its type deserializes to: the wrapped handler
    answers INVALID_ARGUMENT instead of grpc's UNKNOWN naming a Python exception class."""

    __slots__ = ()


MALFORMED = Malformed()
MALFORMED_REQUEST = "the request is not a valid protobuf message of this method's request type"


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # DecodeError and friends: a stranger's bytes
            return MALFORMED

    return deserialize


def _wrap_handler(handler: grpc.RpcMethodHandler | None, method: str, wrapper: Wrapper) -> grpc.RpcMethodHandler | None:
    """Return a handler whose behaviour is `wrapper(original)`; streaming kinds other than unary_stream pass."""
    if handler is None:
        return None
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            wrapper(handler.unary_unary, method, False),  # type: ignore[arg-type]
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            wrapper(handler.unary_stream, method, True),  # type: ignore[arg-type]
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
    return handler


DRAINING = "this server is shutting down; retry (with the same request_id) on another replica"
# The retry hint a draining server gives: a client that honours it leaves the server quiet, so it
# can close without a call arriving at that instant, which gRPC itself would answer CANCELLED.
DRAINING_RETRY_MS = 500
STREAM_DRAINING = "this server is shutting down; resume on another replica from the last item received"


class _Stream:
    """A server-streaming call in flight: its task, and whether it waits inside the handler now
    (where cancelling it lands in the wrapper, which answers UNAVAILABLE) or in grpc's write."""

    __slots__ = ("task", "waiting")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.task = task
        self.waiting = False


class Readiness:
    """The gate in front of Gavel RPCs, and what a graceful stop needs from it.

    Until `ready` the RPCs answer UNAVAILABLE (health and reflection stay open, so probes see
    NOT_SERVING rather than a refusal). Once `drain` is called, new calls answer UNAVAILABLE with a
    retry hint, streams end with UNAVAILABLE (the client resumes elsewhere), and calls already
    running may finish (`wait_idle`); `end_calls` answers the ones still running UNAVAILABLE
    instead of letting the server cancel them (a client treats CANCELLED as final)."""

    def __init__(self, ready: bool = False) -> None:
        self.ready = ready
        self.draining = False
        self.calls: set[asyncio.Task[Any]] = set()  # unary calls in flight
        self.streams: dict[asyncio.Task[Any], _Stream] = {}
        self._ending: set[asyncio.Task[Any]] = set()  # cancelled by us: answer UNAVAILABLE
        self._idle: asyncio.Event | None = None
        self.last_call = 0.0  # time.perf_counter() when the last Gavel call arrived

    def drain(self) -> None:
        self.draining = True
        for task, stream in list(self.streams.items()):
            if stream.waiting:  # else it sees `draining` as soon as its write is done
                self._end(task)

    def end_calls(self) -> None:
        for task in list(self.calls):
            self._end(task)

    def _end(self, task: asyncio.Task[Any]) -> None:
        self._ending.add(task)
        task.cancel()

    def ended_by_us(self, task: asyncio.Task[Any] | None) -> bool:
        if task is None or task not in self._ending:
            return False
        self._ending.discard(task)
        task.uncancel()
        return True

    def finished(self, task: asyncio.Task[Any] | None) -> None:
        self.calls.discard(task)  # type: ignore[arg-type]
        self._ending.discard(task)  # type: ignore[arg-type]
        if self._idle is not None and not self.calls:
            self._idle.set()

    async def wait_quiet(self, quiet_s: float, timeout_s: float) -> bool:
        """Until no Gavel call has arrived for `quiet_s` (clients took the retry hint), or `timeout_s`.
        A server that stops while calls are still arriving has gRPC answer those CANCELLED: they
        reached its socket but not yet a handler."""
        deadline = time.perf_counter() + timeout_s
        while True:
            now = time.perf_counter()
            wait = quiet_s - (now - self.last_call)
            if wait <= 0:
                return True
            if now + wait > deadline:
                return False
            await asyncio.sleep(wait)

    async def wait_idle(self, timeout_s: float) -> bool:
        """Until no unary call is in flight, or `timeout_s`; whether it got there."""
        if not self.calls:
            return True
        self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return not self.calls
        return True


async def _starting(_: Any, context: grpc.aio.ServicerContext) -> None:
    await context.abort(grpc.StatusCode.UNAVAILABLE, "service is starting; retry shortly")


_STARTING: grpc.RpcMethodHandler = grpc.unary_unary_rpc_method_handler(_starting)


class _WrappingInterceptor(grpc.aio.ServerInterceptor):
    """Wraps each method's handler once and answers later calls from that cache without asking
    grpc's handler lookup again: a method's handler never changes once the server runs, and both
    re-wrapping per call and a second interceptor layer (the readiness gate it replaces) were
    measurable shares of the bid path's CPU."""

    def __init__(self, readiness: Readiness | None = None) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}
        self._readiness = readiness or Readiness(ready=True)

    def wrap(self, behaviour: Behaviour, method: str, streaming: bool) -> Behaviour:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        if not self._readiness.ready and method.startswith("/gavel."):
            return _STARTING
        handler = await continuation(handler_call_details)
        wrapped = _wrap_handler(handler, method, self.wrap)
        if wrapped is not None:
            self._wrapped[method] = wrapped
        return wrapped


def _code_name(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    code = context.code()
    if code is not None:
        return code.name if isinstance(code, grpc.StatusCode) else grpc.StatusCode(code).name  # type: ignore[arg-type]
    if isinstance(error, GavelError):
        return status_code_of(error).name
    if isinstance(error, asyncio.CancelledError):  # the client went away (deadline, cancel)
        return "CANCELLED"
    return "OK" if error is None else "UNKNOWN"


@cache
def access_policy(method: str) -> auth_pb2.AccessPolicy | None:
    """The `(gavel.common.v1.access)` option of `/pkg.Service/Method`, or None for non-Gavel services."""
    service_name, _, method_name = method.strip("/").partition("/")
    if not service_name.startswith("gavel."):
        return None  # health, reflection: infrastructure, open to probes
    try:
        descriptor = descriptor_pool.Default().FindMethodByName(f"{service_name}.{method_name}")
    except KeyError:
        return auth_pb2.AccessPolicy(roles=[auth_pb2.ROLE_SITE_ADMIN])  # unknown method: fail closed
    options = descriptor.GetOptions()
    if not options.HasExtension(auth_pb2.access):
        return auth_pb2.AccessPolicy(roles=[auth_pb2.ROLE_SITE_ADMIN])  # undeclared: fail closed
    policy: auth_pb2.AccessPolicy = options.Extensions[auth_pb2.access]
    return policy


class CallInterceptor(_WrappingInterceptor):
    """Everything Gavel does around a served call, in one wrapper per method (each extra wrapper
    was an extra coroutine or async-generator layer on every call and every streamed message):

    - trace context: when this process records no spans, make the caller's W3C `traceparent` current
      so outgoing gRPC calls and NATS messages still carry the trace (when it does record,
      OpenTelemetry's own interceptor runs outside this one instead: `carry_trace_context=False`);
    - auth: verify the bearer JWT and enforce the RPC's declared `(gavel.common.v1.access)` policy
      (fail closed), exposing the Principal for the call;
    - errors: gavel_core errors become statuses with google.rpc details, NotImplementedError
      UNIMPLEMENTED, anything else INTERNAL with a reference that is logged;
    - metrics: a latency histogram and a counter per method and status code;
    - logging: one structured line per failed call (per call at debug level; building a log event
      for every successful bid only for the level filter to drop it was measurable).
    """

    def __init__(self, codec: TokenVerifier, *, carry_trace_context: bool, readiness: Readiness | None = None) -> None:
        super().__init__(readiness)
        self._codec = codec
        self._carry_trace_context = carry_trace_context
        self._gate = self._readiness

    def wrap(self, behaviour: Behaviour, method: str, streaming: bool) -> Behaviour:
        policy = access_policy(method)
        allowed = frozenset(_ROLE_BY_ENUM[r] for r in policy.roles) if policy is not None else frozenset()
        carry = self._carry_trace_context
        codec = self._codec
        latency = LATENCY.labels(method)
        stdlib_logger = logging.getLogger("gavel.grpc")
        gate = self._gate
        gated = method.startswith("/gavel.")  # health and reflection stay open while draining

        def begin(context: grpc.aio.ServicerContext) -> tuple[object | None, Any]:
            """Attach the caller's trace context, then authorise (raising GavelError if refused)."""
            metadata = dict(context.invocation_metadata() or ())  # read once: it is rebuilt per call
            trace_token = None
            if carry:
                carrier = {
                    key: value for key in telemetry.TRACE_CONTEXT_KEYS if isinstance(value := metadata.get(key), str)
                }
                if carrier:
                    trace_token = telemetry.attach_remote_context(carrier)
            try:
                return trace_token, authorise(metadata.get("authorization"))
            except BaseException:
                if trace_token is not None:
                    telemetry.detach(trace_token)
                raise

        def authorise(header: object) -> Any:
            principal = codec.principal_from_authorization(header if isinstance(header, str) else None)
            if policy is None or (policy.public and principal is None):
                return set_current_principal(principal) if principal is not None else None
            if principal is None:
                raise Unauthenticated("this call needs a bearer token in the 'authorization' metadata")
            if allowed and not (principal.roles & allowed):
                wanted = ", ".join(sorted(role.value for role in allowed))
                raise PermissionDenied(f"{method} needs one of the roles: {wanted}")
            return set_current_principal(principal)

        async def fail(exc: Exception, context: grpc.aio.ServicerContext) -> None:
            if isinstance(exc, GavelError):
                status = to_status(exc)
            elif isinstance(exc, NotImplementedError):  # generated base servicers: not built yet
                await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented yet")
                return
            else:
                reference = uuid.uuid4().hex[:12]
                log.exception("rpc failed", method=method, reference=reference)
                status = internal_status(reference)
            await context.abort(status.code, status.details, status.trailing_metadata)

        def finish(
            context: grpc.aio.ServicerContext,
            started: float,
            tokens: tuple[object | None, Any],
            error: BaseException | None,
        ) -> None:
            trace_token, principal_token = tokens
            if principal_token is not None:
                reset_current_principal(principal_token)
            elapsed = time.perf_counter() - started
            latency.observe(elapsed)
            code = _code_name(context, error)
            HANDLED.labels(method, code).inc()
            if code not in QUIET_CODES:
                log.info(
                    "rpc", method=method, code=code, ms=round(elapsed * 1000, 3), details=context.details() or None
                )
            elif stdlib_logger.isEnabledFor(logging.DEBUG):
                log.debug("rpc", method=method, code=code, ms=round(elapsed * 1000, 3))
            if trace_token is not None:
                telemetry.detach(trace_token)

        if streaming:

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                started = time.perf_counter()
                tokens: tuple[object | None, Any] = (None, None)
                error: BaseException | None = None
                task = asyncio.current_task()
                state = _Stream(task)
                if task is not None and gated:
                    gate.streams[task] = state
                    gate.last_call = started
                try:
                    tokens = begin(context)
                    if request is MALFORMED:
                        raise InvalidArgument([FieldViolation("request", MALFORMED_REQUEST)], MALFORMED_REQUEST)
                    items = behaviour(request, context).__aiter__()
                    while True:
                        if gated and gate.draining:
                            raise Unavailable(STREAM_DRAINING, DRAINING_RETRY_MS)
                        state.waiting = True
                        try:
                            item = await items.__anext__()
                        except StopAsyncIteration:
                            break
                        finally:
                            state.waiting = False
                        yield item
                except grpc.aio.AbortError as exc:
                    error = exc
                    raise
                except Exception as exc:
                    error = exc
                    await fail(exc, context)
                except asyncio.CancelledError as exc:
                    error = exc
                    if not gate.ended_by_us(task):
                        raise
                    error = Unavailable(STREAM_DRAINING, DRAINING_RETRY_MS)
                    await fail(error, context)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    gate.streams.pop(task, None)  # type: ignore[arg-type]
                    finish(context, started, tokens, error)

            return stream

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            tokens: tuple[object | None, Any] = (None, None)
            error: BaseException | None = None
            task = asyncio.current_task() if gated else None
            if task is not None:
                gate.calls.add(task)
                gate.last_call = started
            try:
                if gate.draining and gated:
                    raise Unavailable(DRAINING, DRAINING_RETRY_MS)
                tokens = begin(context)
                if request is MALFORMED:
                    raise InvalidArgument([FieldViolation("request", MALFORMED_REQUEST)], MALFORMED_REQUEST)
                return await behaviour(request, context)
            except grpc.aio.AbortError as exc:
                error = exc
                raise
            except Exception as exc:
                error = exc
                await fail(exc, context)
            except asyncio.CancelledError as exc:  # the client went away, or a drain ran out of time
                error = exc
                if not gate.ended_by_us(task):
                    raise
                error = Unavailable(DRAINING, DRAINING_RETRY_MS)
                await fail(error, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                if task is not None:
                    gate.finished(task)
                finish(context, started, tokens, error)

        return unary
