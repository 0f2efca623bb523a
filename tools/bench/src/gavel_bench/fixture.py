"""Setting up the rooms through the real path, before the measured window.

A lot reaches the room the way production lots do: the seller creates products and live-session
sales in the catalog (gRPC), adds one lot per product and publishes the sale (registration rule
OPEN: the bidders need no registration); a site admin assigns the run's crier to each sale, and
the crier starts each lot with the catalog's StartLot; the catalog announces it (LotStarting on
CATALOG), the room's `room-lot-starting` consumer has the lot's owner write its first batch
(LotConfigured, the published lot) and open it (the lots are timed). The catalog's constraints
shape the batching:

- a lot of a multi-unit product runs in several rooms and makes bidders need a seat, so every
  product has quantity 1 (one product, one lot, one room);
- a live session lays its lots out back to back in 10-minute slots of at most 12 time slots of
  one day, so one sale holds at most 144 one-slot lots (12 two-hour slots covering the day);
- AddLot on one sale places the lot after the sale's others, so the lots of one sale are added one
  at a time while different sales proceed in parallel.

Every call carries a request id derived from the run id, so a retried call is answered, not
repeated. The lots are English, hard close, opening bid 10.00 USD, a flat 1.00 USD increment, and
open for LOT_OPEN_FOR_MS: longer than any run, so no lot closes under the load.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import grpc
from nats.js.errors import NotFoundError

from gavel.catalog.v1 import catalog_service_pb2 as cat
from gavel.catalog.v1 import catalog_service_pb2_grpc as cat_grpc
from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1.money_pb2 import Money
from gavel.room.v1 import room_service_pb2 as room_pb
from gavel.room.v1 import room_service_pb2_grpc as room_grpc
from gavel_bench.access import connect_nats
from gavel_bench.cluster import Endpoints
from gavel_bench.identities import Identities

T = TypeVar("T")

CURRENCY = "USD"
OPENING_BID_MINOR = 1_000
INCREMENT_MINOR = 100
LOT_OPEN_FOR_MS = 6 * 3600 * 1000
SLOTS_PER_DAY = 12  # the catalog's maximum number of time slots in a session
LOTS_PER_SALE = 144  # 12 two-hour slots x 12 ten-minute lots
# ABORTED: two lots of one sale started at once (its first start makes the sale live).
RETRYABLE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ABORTED,
)
CALL_TIMEOUT_S = 30.0
RETRY_ATTEMPTS = 8
CHANNEL_OPTIONS = (("grpc.use_local_subchannel_pool", 1),)


@dataclass(frozen=True)
class PreparedLot:
    index: int
    lot_id: str
    open_sequence: int  # lot_sequence of the batch that opened the lot: watchers start just before it


@dataclass
class Prepared:
    lots: list[PreparedLot]
    sales: int
    seconds: dict[str, float] = field(default_factory=dict)  # per phase, in order


def session_slots() -> list[res.TimeSlot]:
    """The whole day as 12 two-hour slots: the most lots a one-day session can hold."""
    hours = 24 // SLOTS_PER_DAY
    slots = [res.TimeSlot(start=f"{h:02d}:00", end=f"{h + hours:02d}:00") for h in range(0, 24, hours)]
    slots[-1].end = "24:00"
    return slots


def bench_lot(product_id: str) -> res.Lot:
    usd = Money(amount_minor=OPENING_BID_MINOR, currency=CURRENCY)
    return res.Lot(
        product_id=product_id,
        currency=CURRENCY,
        format=res.FORMAT_ENGLISH,
        duration_slots=1,
        english=res.EnglishParams(
            opening_bid=usd,
            increments=[res.IncrementTier(from_amount=0, step=INCREMENT_MINOR)],
            close=res.ENGLISH_CLOSE_HARD,
            duration_ms=LOT_OPEN_FOR_MS,
        ),
    )


async def with_retries(call: Callable[[], Awaitable[T]], what: str) -> T:
    """A call that may meet a service still catching up (the room before the lot's terms arrive)."""
    delay = 0.1
    for attempt in range(RETRY_ATTEMPTS):
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE or attempt == RETRY_ATTEMPTS - 1:
                raise RuntimeError(f"{what} failed: {error.code().name} {error.details()}") from error
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


async def _bounded(limit: int, jobs: list[Callable[[], Awaitable[T]]]) -> list[T]:
    slots = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with slots:
            return await job()

    return list(await asyncio.gather(*(run(job) for job in jobs)))


async def prepare_lots(
    endpoints: Endpoints,
    identities: Identities,
    rooms: int,
    *,
    concurrency: int = 32,
    say: Callable[[str], None] = print,
) -> Prepared:
    """Create, publish and open `rooms` lots; returns them in index order with the time each phase took."""
    run = identities.run_id
    seller, crier = identities.seller(), identities.crier()
    seconds: dict[str, float] = {}
    async with (
        grpc.aio.insecure_channel(endpoints.catalog, options=CHANNEL_OPTIONS) as catalog_channel,
        grpc.aio.insecure_channel(endpoints.rooms[0], options=CHANNEL_OPTIONS) as room_channel,
    ):
        catalog = cat_grpc.CatalogServiceStub(catalog_channel)
        room = room_grpc.RoomServiceStub(room_channel)

        started = time.perf_counter()

        def create_product(index: int) -> Callable[[], Awaitable[str]]:
            async def call() -> str:
                request = cat.CreateProductRequest(
                    request_id=f"bench-{run}-product-{index}",
                    product=res.Product(title=f"Bench lot {index}", description="gavel bench", quantity=1),
                )
                reply = await with_retries(
                    lambda: catalog.CreateProduct(request, metadata=seller, timeout=CALL_TIMEOUT_S), "CreateProduct"
                )
                return str(reply.product.id)

            return call

        product_ids = await _bounded(concurrency, [create_product(i) for i in range(rooms)])
        seconds["products"] = time.perf_counter() - started
        say(f"  {rooms} products in {seconds['products']:.1f} s")

        started = time.perf_counter()
        session_day = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).date().isoformat()
        sale_count = -(-rooms // LOTS_PER_SALE)

        def create_sale(number: int) -> Callable[[], Awaitable[str]]:
            async def call() -> str:
                request = cat.CreateSaleRequest(
                    request_id=f"bench-{run}-sale-{number}",
                    sale=res.Sale(
                        title=f"Bench sale {number}",
                        time_zone="UTC",
                        live_session=res.LiveSession(date=session_day, time_slots=session_slots()),
                        registration=res.RegistrationPolicy(rule=res.APPROVAL_RULE_OPEN),
                    ),
                )
                reply = await with_retries(
                    lambda: catalog.CreateSale(request, metadata=seller, timeout=CALL_TIMEOUT_S), "CreateSale"
                )
                return str(reply.sale.id)

            return call

        sale_ids = await _bounded(concurrency, [create_sale(n) for n in range(sale_count)])
        seconds["sales"] = time.perf_counter() - started

        started = time.perf_counter()
        lot_ids: list[str] = [""] * rooms

        def add_lot(request: cat.AddLotRequest) -> Awaitable[cat.AddLotResponse]:
            return catalog.AddLot(request, metadata=seller, timeout=CALL_TIMEOUT_S)

        def fill_sale(number: int) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                first = number * LOTS_PER_SALE
                for index in range(first, min(first + LOTS_PER_SALE, rooms)):  # in order: positions follow
                    request = cat.AddLotRequest(
                        request_id=f"bench-{run}-lot-{index}",
                        sale_id=sale_ids[number],
                        lot=bench_lot(product_ids[index]),
                    )
                    reply = await with_retries(partial(add_lot, request), "AddLot")
                    lot_ids[index] = reply.lots[0].id

            return call

        await _bounded(concurrency, [fill_sale(n) for n in range(sale_count)])
        seconds["lots"] = time.perf_counter() - started
        say(f"  {sale_count} sales, {rooms} lots added in {seconds['sales'] + seconds['lots']:.1f} s")

        started = time.perf_counter()

        def publish(number: int) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                request = cat.PublishSaleRequest(request_id=f"bench-{run}-publish-{number}", sale_id=sale_ids[number])
                await with_retries(
                    lambda: catalog.PublishSale(request, metadata=seller, timeout=CALL_TIMEOUT_S), "PublishSale"
                )

            return call

        await _bounded(concurrency, [publish(n) for n in range(sale_count)])
        seconds["publish"] = time.perf_counter() - started
        say(f"  {sale_count} sales published in {seconds['publish']:.1f} s")

        started = time.perf_counter()
        site_admin = identities.site_admin()

        def staff(number: int) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                request = cat.AssignStaffRequest(
                    request_id=f"bench-{run}-crier-{number}",
                    sale_id=sale_ids[number],
                    user_id=identities.crier_id,
                    role=res.STAFF_ROLE_CRIER,
                )
                await with_retries(
                    lambda: catalog.AssignStaff(request, metadata=site_admin, timeout=CALL_TIMEOUT_S), "AssignStaff"
                )

            return call

        await _bounded(concurrency, [staff(n) for n in range(sale_count)])

        def open_lot(index: int) -> Callable[[], Awaitable[PreparedLot]]:
            async def call() -> PreparedLot:
                request = cat.StartLotRequest(request_id=f"bench-{run}-start-{index}", lot_id=lot_ids[index])
                await with_retries(
                    lambda: catalog.StartLot(request, metadata=crier, timeout=CALL_TIMEOUT_S), "StartLot"
                )
                state = room_pb.GetLotStateRequest(lot_id=lot_ids[index])
                for _ in range(RETRY_ATTEMPTS * 4):  # the room opens it once its LotStarting arrives
                    reply = await with_retries(lambda: room.GetLotState(state, timeout=CALL_TIMEOUT_S), "GetLotState")
                    if reply.state.phase == room_pb.LOT_PHASE_OPEN:
                        return PreparedLot(index, lot_ids[index], int(reply.state.lot_sequence))
                    await asyncio.sleep(0.25)
                raise RuntimeError(f"lot {lot_ids[index]} did not open in the room")

            return call

        lots = await _bounded(concurrency, [open_lot(i) for i in range(rooms)])
        seconds["open"] = time.perf_counter() - started
        say(f"  {rooms} lots started by the crier and opened by the room in {seconds['open']:.1f} s")
    return Prepared(lots, sale_count, seconds)


# Set-up leaves work queued behind it: the catalog's outbox still publishing LotScheduled, the
# room's consumers still storing terms and projecting the opening batches. Measuring while that
# drains would charge it to the bids, so the window waits for these to be idle.
SETTLING_CONSUMERS = (("CATALOG", "room-lot-starting"), ("ROOM_EVENTS", "room-projections"))
SETTLE_POLL_S = 1.0


async def settle(nats_url: str, timeout_s: float, say: Callable[[str], None] = print) -> float:
    """Wait until the set-up's events are consumed and the catalog stopped publishing; the seconds waited."""
    started = time.perf_counter()
    nc = await connect_nats(nats_url, connect_timeout=5, max_reconnect_attempts=3)
    try:
        js = nc.jetstream()
        previous_catalog_head = -1
        idle_polls = 0
        while time.perf_counter() - started < timeout_s:
            backlog = 0
            for stream, durable in SETTLING_CONSUMERS:
                try:
                    info = await js.consumer_info(stream, durable)
                except NotFoundError:
                    continue
                backlog += info.num_pending + info.num_ack_pending
            catalog_head = (await js.stream_info("CATALOG")).state.last_seq
            quiet = backlog == 0 and catalog_head == previous_catalog_head
            idle_polls = idle_polls + 1 if quiet else 0
            if idle_polls >= 2:
                return time.perf_counter() - started
            if not quiet:
                say(f"  set-up events still being consumed: {backlog} pending")
            previous_catalog_head = catalog_head
            await asyncio.sleep(SETTLE_POLL_S)
        say(f"  set-up events did not settle within {timeout_s:.0f} s; measuring anyway")
        return time.perf_counter() - started
    finally:
        await nc.close()
