"""Random sequences of catalog edits, starts, withdrawals, cancellations, bids and crier commands on
a real cluster never end with the catalog and the room disagreeing about any lot.

Agreement, once the room's reports have reached the catalog: a lot the catalog has not started
(draft, scheduled, or cancelled before it started) is not run by the room, or ended there as
WITHDRAWN; a live lot is running in the room; a closed lot was sold in the room to the same buyer
at the same price, or ended unsold; a lot cancelled while live was withdrawn in the room.
Bounded (a few examples of a few steps each) so it fits in `make test`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from truth_cluster import (
    Actors,
    SaleUnderTest,
    TruthCluster,
    english_terms,
    lot_state,
    new_id,
    published_sale,
    register,
    truth_cluster,
    usd,
)

from gavel.catalog.v1 import catalog_service_pb2 as cat
from gavel.catalog.v1 import resources_pb2 as res
from gavel.room.v1 import room_service_pb2 as pb
from gavel_core.auth import Role

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

LOTS = 3
ACTIONS = ("edit", "start", "withdraw", "cancel_sale", "bid", "hammer", "pass", "room_withdraw")
STEPS = st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, LOTS - 1)), min_size=1, max_size=7)
SETTLE_S = 25


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TruthCluster]:
    with truth_cluster(Path(tmp_path_factory.mktemp("agree"))) as running:
        yield running


async def attempt(call) -> None:
    """Try a step; a refusal (the step does not apply now) is part of the game."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
            raise


async def step(actors: Actors, sale: SaleUnderTest, bidder, action: str, index: int) -> None:
    lot = sale.lots[index].id
    terms = english_terms(opening=1_000, reopen_grace_ms=0)
    calls = {
        "edit": lambda: sale.seller.catalog.UpdateLot(
            cat.UpdateLotRequest(request_id=new_id(), lot=res.Lot(id=lot, duration_slots=1, **terms))
        ),
        "start": lambda: sale.crier.catalog.StartLot(cat.StartLotRequest(request_id=new_id(), lot_id=lot)),
        "withdraw": lambda: sale.seller.catalog.WithdrawLot(
            cat.WithdrawLotRequest(request_id=new_id(), lot_id=lot, reason="random")
        ),
        "cancel_sale": lambda: sale.seller.catalog.CancelSale(
            cat.CancelSaleRequest(request_id=new_id(), sale_id=sale.sale.id, reason="random")
        ),
        "bid": lambda: bidder.room.PlaceBid(pb.PlaceBidRequest(request_id=new_id(), lot_id=lot, max_amount=usd(9_000))),
        "hammer": lambda: sale.crier.room.Hammer(pb.HammerRequest(request_id=new_id(), lot_id=lot)),
        "pass": lambda: sale.crier.room.Pass(pb.PassRequest(request_id=new_id(), lot_id=lot)),
        "room_withdraw": lambda: sale.admin.room.Withdraw(
            pb.WithdrawRequest(request_id=new_id(), lot_id=lot, reason="random")
        ),
    }
    await attempt(calls[action]())
    if action == "start":  # a crier lot: its crier opens it once the room runs it
        for _ in range(100):
            if await lot_state(sale.crier, lot) is not None:
                break
            await asyncio.sleep(0.05)
        await attempt(sale.crier.room.OpenLot(pb.OpenLotRequest(request_id=new_id(), lot_id=lot)))


def disagreement(catalog_lot: res.Lot, room: pb.LotState | None) -> str | None:
    state = catalog_lot.state
    ended = room is not None and room.phase in (pb.LOT_PHASE_SOLD, pb.LOT_PHASE_UNSOLD)
    if state in (res.LOT_STATE_DRAFT, res.LOT_STATE_SCHEDULED):
        return None if room is None else "the room runs a lot the catalog has not started"
    if state == res.LOT_STATE_LIVE:
        return None if room is not None and not ended else "live in the catalog, not running in the room"
    if state == res.LOT_STATE_CLOSED:
        if catalog_lot.outcome == res.LOT_OUTCOME_SOLD:
            same = (
                room is not None
                and room.phase == pb.LOT_PHASE_SOLD
                and (room.buyer_id, room.hammer_price.amount_minor)
                == (catalog_lot.winner_id, catalog_lot.hammer_price.amount_minor)
            )
            return None if same else "sold in the catalog, not the same sale in the room"
        ok = room is not None and room.phase == pb.LOT_PHASE_UNSOLD and room.unsold_reason != "WITHDRAWN"
        return None if ok else "passed in the catalog, not unsold in the room"
    if state == res.LOT_STATE_CANCELLED:
        ok = room is None or (room.phase == pb.LOT_PHASE_UNSOLD and room.unsold_reason == "WITHDRAWN")
        return None if ok else "cancelled in the catalog, not withdrawn in the room"
    return f"unexpected catalog state {state}"


async def scenario(cluster: TruthCluster, steps: list[tuple[str, int]]) -> None:
    actors = Actors(cluster)
    try:
        sale = await published_sale(actors, "agree", [english_terms(reopen_grace_ms=0) for _ in range(LOTS)])
        bidder = actors.user(f"bidder-{new_id()[:6]}", Role.BIDDER)
        await register(actors, sale, bidder)
        for action, index in steps:
            await step(actors, sale, bidder, action, index)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_S
        while True:
            problems = []
            for lot in sale.lots:
                found = (await actors.site_admin.catalog.GetLot(cat.GetLotRequest(lot_id=lot.id))).lot
                problem = disagreement(found, await lot_state(actors.anonymous, lot.id))
                if problem:
                    problems.append(f"{lot.id}: {problem}")
            if not problems:
                return
            assert loop.time() < deadline, f"after {steps}: {problems}"
            await asyncio.sleep(0.2)
    finally:
        await actors.close()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_catalog_and_room_never_end_up_disagreeing_about_a_lot(cluster, steps):
    asyncio.run(scenario(cluster, steps))
