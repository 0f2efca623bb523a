"""The ceiling to compare the room against: a raw grpc.aio unary echo, measured in the same run.

The server is one Python process running a grpc.aio server with one generic handler that returns
the request bytes (no proto, no interceptors, no auth, no work), like one room process with
nothing to do. The clients are the same number of processes as the bid load, each with the same
number of calls in flight (the bid load's `concurrency`), calling as fast as answers come back
(closed loop) with a real serialized PlaceBidRequest and the same bearer metadata a bidder sends,
so the bytes on the wire match. The result is requests per second over the measured seconds,
after a warm-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue
import time
from dataclasses import dataclass
from typing import Any

import grpc

from gavel_bench.cluster import LOOPBACK, free_ports
from gavel_bench.cpu import CpuMeter, Tracked
from gavel_bench.histograms import Latency, merged
from gavel_bench.processes import stop_child
from gavel_kit import garbage
from gavel_kit import loop as event_loops

SERVICE = "gavel.bench.Echo"
METHOD = f"/{SERVICE}/Echo"
WARMUP_S = 0.5
STARTUP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class EchoResult:
    rps: float
    processes: int
    concurrency: int
    duration_s: float
    calls: int
    latency_ms: dict[str, float | int | None]
    cpu_percent: dict[str, float]  # of the echo server and clients while they ran (100 = one CPU)


async def _echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def _serve(port: int, ready: Any, stop: Any) -> None:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(_echo)})
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"{LOOPBACK}:{port}")
    await server.start()
    ready.set()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(asyncio.CancelledError):
        while not await loop.run_in_executor(None, stop.wait, 0.5):
            pass
    await server.stop(0)


def server_main(port: int, ready: Any, stop: Any) -> None:
    garbage.set_thresholds_from_environment()  # like the services, so the ceiling is comparable
    event_loops.run(_serve(port, ready, stop))  # the services' loop, so the ceiling is comparable


async def _call_loop(
    address: str, concurrency: int, duration_s: float, payload: bytes, metadata: tuple[tuple[str, str], ...], go: Any
) -> tuple[int, float, bytes]:
    options = (("grpc.use_local_subchannel_pool", 1),)
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        await asyncio.wait_for(channel.channel_ready(), STARTUP_TIMEOUT_S)
        echo: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(METHOD)
        await echo(payload, metadata=metadata, timeout=5)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, go.wait, STARTUP_TIMEOUT_S)
        started = time.monotonic()
        measure_from = started + WARMUP_S
        stop_at = measure_from + duration_s
        latency = Latency()
        calls = 0

        async def caller() -> None:
            nonlocal calls
            while True:
                sent = time.monotonic()
                if sent >= stop_at:
                    return
                await echo(payload, metadata=metadata, timeout=5)
                if sent >= measure_from:
                    calls += 1
                    latency.record_s(time.monotonic() - sent)

        await asyncio.gather(*(caller() for _ in range(concurrency)))
        return calls, duration_s, latency.encode() if latency.count else b""


def client_main(
    address: str,
    concurrency: int,
    duration_s: float,
    payload: bytes,
    metadata: tuple[tuple[str, str], ...],
    go: Any,
    results: Any,
) -> None:
    garbage.set_thresholds_from_environment()
    try:
        results.put(("done", event_loops.run(_call_loop(address, concurrency, duration_s, payload, metadata, go))))
    except BaseException as error:
        results.put(("error", repr(error)))


def measure_echo_ceiling(
    processes: int,
    concurrency: int,
    duration_s: float,
    payload: bytes,
    metadata: tuple[tuple[str, str], ...],
) -> EchoResult:
    """Start the echo server and `processes` client processes, measure, stop them all."""
    context = multiprocessing.get_context("spawn")
    ready, stop, go = context.Event(), context.Event(), context.Event()
    results = context.Queue()
    (port,) = free_ports(1)
    server = context.Process(target=server_main, args=(port, ready, stop), name="gavel-bench-echo-server")
    clients: list[Any] = []
    server.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not ready.wait(0.2):
            if not server.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the echo server did not start (exit code {server.exitcode})")
        address = f"{LOOPBACK}:{port}"
        for number in range(processes):
            client = context.Process(
                target=client_main,
                args=(address, concurrency, duration_s, payload, metadata, go, results),
                name=f"gavel-bench-echo-client-{number}",
            )
            client.start()
            clients.append(client)
        processes_measured = [server, *clients]
        names = ["echo-server", *(f"echo-client-{n}" for n in range(len(clients)))]
        meter = CpuMeter(Tracked(name, p.pid) for name, p in zip(names, processes_measured, strict=True) if p.pid)
        meter.start()
        go.set()
        answers: list[tuple[str, Any]] = []
        deadline = time.monotonic() + STARTUP_TIMEOUT_S + WARMUP_S + duration_s + 30
        while len(answers) < processes:
            try:
                answers.append(results.get(timeout=max(0.1, deadline - time.monotonic())))
            except queue.Empty:
                raise RuntimeError("the echo clients did not report in time") from None
        cpu_percent = meter.stop()
        failures = [detail for kind, detail in answers if kind != "done"]
        if failures:
            raise RuntimeError(f"echo client failed: {failures[0]}")
        calls = sum(detail[0] for _, detail in answers)
        rps = sum(detail[0] / detail[1] for _, detail in answers)
        latency = merged(detail[2] for _, detail in answers)
        return EchoResult(round(rps, 1), processes, concurrency, duration_s, calls, latency.summary(), cpu_percent)
    finally:
        stop.set()
        for process in [*clients, server]:
            stop_child(process)
