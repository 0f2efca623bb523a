"""Every cell of the authorization table in docs/security.md, tried on a running cluster: each
catalog and room RPC, as each role, on the caller's own sale and on another sale.

The table is read from the document itself, so the document and the enforcement cannot drift
apart. Two published live sales, A (the callers' own) and B (another), each with a started and
opened crier lot and a scheduled one; the staff of A are assigned to A only, A's bidder is
approved for A only, and each sale's bidder holds a reservation in it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from truth_cluster import (
    Actors,
    Caller,
    SaleUnderTest,
    TruthCluster,
    english_terms,
    eventually,
    lot_state,
    new_id,
    published_sale,
    register,
    session_day,
    truth_cluster,
    usd,
)

from gavel.catalog.v1 import catalog_service_pb2 as cat
from gavel.catalog.v1 import resources_pb2 as res
from gavel.room.v1 import room_service_pb2 as pb
from gavel_core.auth import Role
from gavel_kit.grpc.errors import error_info_of

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

TABLE = Path(__file__).parents[2] / "docs" / "security.md"
ROLES = ("anonymous", "bidder", "seller", "crier", "device", "sale_admin", "site_admin", "service")
DENIED = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)


def table() -> dict[str, dict[str, str]]:
    """RPC ("catalog.CreateSale") → role → cell, from the document's table."""
    rows: dict[str, dict[str, str]] = {}
    section = TABLE.read_text().split("## Authorization", 1)[1]
    for line in section.splitlines():
        match = re.match(r"^\| ((?:catalog|room)\.\w+) \|(.*)\|$", line)
        if match:
            cells = [cell.strip() for cell in match.group(2).split("|")]
            rows[match.group(1)] = dict(zip(ROLES, cells, strict=True))
    return rows


@dataclass
class Target:
    """The resources of one sale the calls point at."""

    sale: SaleUnderTest
    bidder: Caller
    registration_id: str
    reservation_id: str

    @property
    def sale_id(self) -> str:
        return self.sale.sale.id

    @property
    def lot(self) -> str:
        return self.sale.lots[0].id

    @property
    def scheduled_lot(self) -> str:
        return self.sale.lots[1].id


def rid() -> str:
    return new_id()


def live_sale() -> res.Sale:
    return res.Sale(
        title="Probe",
        time_zone="UTC",
        live_session=res.LiveSession(date=session_day(), time_slots=[res.TimeSlot(start="08:00", end="20:00")]),
    )


CATALOG: dict[str, Callable[[Target], Any]] = {
    "CreateProduct": lambda t: cat.CreateProductRequest(request_id=rid(), product=res.Product(title="p", quantity=1)),
    "UpdateProduct": lambda t: cat.UpdateProductRequest(
        request_id=rid(), product=res.Product(id=t.sale.lots[0].product_id, title="p2", quantity=1)
    ),
    "GetProduct": lambda t: cat.GetProductRequest(product_id=t.sale.lots[0].product_id),
    "ListProducts": lambda t: cat.ListProductsRequest(),
    "CreateSale": lambda t: cat.CreateSaleRequest(request_id=rid(), sale=live_sale()),
    "UpdateSale": lambda t: cat.UpdateSaleRequest(request_id=rid(), sale=_with_id(live_sale(), t.sale_id)),
    "GetSale": lambda t: cat.GetSaleRequest(sale_id=t.sale_id),
    "ListSales": lambda t: cat.ListSalesRequest(),
    "PublishSale": lambda t: cat.PublishSaleRequest(request_id=rid(), sale_id=t.sale_id),
    "CancelSale": lambda t: cat.CancelSaleRequest(request_id=rid(), sale_id=t.sale_id, reason="probe"),
    "AddLot": lambda t: cat.AddLotRequest(
        request_id=rid(), sale_id=t.sale_id, lot=res.Lot(product_id="p-none", duration_slots=1, **english_terms())
    ),
    "UpdateLot": lambda t: cat.UpdateLotRequest(
        request_id=rid(), lot=res.Lot(id=t.lot, duration_slots=1, **english_terms())
    ),
    "RemoveLot": lambda t: cat.RemoveLotRequest(request_id=rid(), lot_id=t.scheduled_lot),
    "WithdrawLot": lambda t: cat.WithdrawLotRequest(request_id=rid(), lot_id=t.lot, reason="probe"),
    "GetLot": lambda t: cat.GetLotRequest(lot_id=t.lot),
    "ListLots": lambda t: cat.ListLotsRequest(sale_id=t.sale_id),
    "ReorderLots": lambda t: cat.ReorderLotsRequest(request_id=rid(), sale_id=t.sale_id, lot_ids=[t.lot]),
    "GetSchedule": lambda t: cat.GetScheduleRequest(view=res.SCHEDULE_VIEW_DAY, date=session_day()),
    "RegisterForSale": lambda t: cat.RegisterForSaleRequest(request_id=rid(), sale_id=t.sale_id),
    "DecideRegistration": lambda t: cat.DecideRegistrationRequest(
        request_id=rid(), registration_id=t.registration_id, decision=cat.DECISION_APPROVE
    ),
    "ListRegistrations": lambda t: cat.ListRegistrationsRequest(sale_id=t.sale_id),
    "ReserveLot": lambda t: cat.ReserveLotRequest(request_id=rid(), lot_id=t.scheduled_lot),
    "CancelReservation": lambda t: cat.CancelReservationRequest(request_id=rid(), reservation_id=t.reservation_id),
    "ListMyReservations": lambda t: cat.ListMyReservationsRequest(),
    "EnterRoom": lambda t: cat.EnterRoomRequest(request_id=rid(), lot_id=t.lot),
    "GetSeat": lambda t: cat.GetSeatRequest(lot_id=t.lot, bidder_id="someone"),
    "StartLot": lambda t: cat.StartLotRequest(request_id=rid(), lot_id=t.lot),
    "CloseLot": lambda t: cat.CloseLotRequest(request_id=rid(), lot_id=t.lot, outcome=res.LOT_OUTCOME_PASSED),
    "AssignStaff": lambda t: cat.AssignStaffRequest(
        request_id=rid(), sale_id=t.sale_id, user_id="extra-crier", role=res.STAFF_ROLE_CRIER
    ),
    "UnassignStaff": lambda t: cat.UnassignStaffRequest(
        request_id=rid(), sale_id=t.sale_id, user_id="nobody", role=res.STAFF_ROLE_CRIER
    ),
    "ListSaleStaff": lambda t: cat.ListSaleStaffRequest(sale_id=t.sale_id),
}

_LOT_ONLY = (
    "ConfirmWin",
    "DeclineWin",
    "AcceptByVendor",
    "DeclineByVendor",
    "OpenLot",
    "SetIncrement",
    "GoingOnce",
    "GoingTwice",
    "Reopen",
    "UndoLastBid",
    "Pause",
    "Resume",
    "Hammer",
    "Pass",
)
ROOM: dict[str, Callable[[Target], Any]] = {
    "PlaceBid": lambda t: pb.PlaceBidRequest(request_id=rid(), lot_id=t.lot, max_amount=usd(100)),
    "BuyNow": lambda t: pb.BuyNowRequest(request_id=rid(), lot_id=t.lot),
    "PickOption": lambda t: pb.PickOptionRequest(request_id=rid(), lot_id=t.lot, option=0),
    "FloorBid": lambda t: pb.FloorBidRequest(request_id=rid(), lot_id=t.lot, paddle="1", force=100, press_ms=50),
    "RegisterPaddle": lambda t: pb.RegisterPaddleRequest(
        request_id=rid(), sale_id=t.sale_id, paddle="7", bidder_id="someone"
    ),
    "SetAsking": lambda t: pb.SetAskingRequest(request_id=rid(), lot_id=t.lot, asking=usd(2_000)),
    "Withdraw": lambda t: pb.WithdrawRequest(request_id=rid(), lot_id=t.lot, reason="probe"),
    "GetLotState": lambda t: pb.GetLotStateRequest(lot_id=t.lot),
    "Watch": lambda t: pb.WatchRequest(lots=[pb.LotCursor(lot_id=t.lot)]),
    "ListBids": lambda t: pb.ListBidsRequest(lot_id=t.lot),
    "GetLotResult": lambda t: pb.GetLotResultRequest(lot_id=t.lot),
    "ListCrierActions": lambda t: pb.ListCrierActionsRequest(lot_id=t.lot),
}
for _name in _LOT_ONLY:
    ROOM[_name] = lambda t, _name=_name: getattr(pb, f"{_name}Request")(request_id=rid(), lot_id=t.lot)
# Destructive calls go last, so the cells before them meet the lots as the fixture left them.
LAST = ("Hammer", "Pass", "Withdraw", "CancelReservation")


def _with_id(sale: res.Sale, sale_id: str) -> res.Sale:
    sale.id = sale_id
    return sale


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TruthCluster]:
    with truth_cluster(Path(tmp_path_factory.mktemp("authorization"))) as running:
        yield running


@pytest.fixture
async def actors(cluster: TruthCluster) -> AsyncIterator[Actors]:
    made = Actors(cluster)
    try:
        yield made
    finally:
        await made.close()


async def target(actors: Actors, tag: str) -> Target:
    sale = await published_sale(actors, tag, [english_terms(), english_terms()])
    await sale.crier.catalog.StartLot(cat.StartLotRequest(request_id=new_id(), lot_id=sale.lots[0].id))
    await eventually(lambda: lot_state(sale.crier, sale.lots[0].id))
    await sale.crier.room.OpenLot(pb.OpenLotRequest(request_id=new_id(), lot_id=sale.lots[0].id))
    bidder = actors.user(f"bidder-{tag}", Role.BIDDER)
    registration = await register(actors, sale, bidder)
    reservation = await bidder.catalog.ReserveLot(cat.ReserveLotRequest(request_id=new_id(), lot_id=sale.lots[1].id))
    return Target(sale, bidder, registration.id, reservation.reservation.id)


def caller(actors: Actors, own: Target, role: str, rpc: str) -> Caller:
    if rpc == "catalog.RegisterForSale" and role == "bidder":
        return actors.user(f"newcomer-{new_id()[:6]}", Role.BIDDER)  # A's bidder must stay unregistered in B
    people = {
        "anonymous": actors.anonymous,
        "bidder": own.bidder,
        "seller": own.sale.seller,
        "crier": own.sale.crier,
        "device": own.sale.clerk,
        "sale_admin": own.sale.admin,
        "site_admin": actors.site_admin,
        "service": actors.service("room"),
    }
    return people[role]


async def outcome(person: Caller, rpc: str, request: Any) -> tuple[grpc.StatusCode, str]:
    service, name = rpc.split(".")
    stub = person.catalog if service == "catalog" else person.room
    try:
        if name == "Watch":
            stream = stub.Watch(request, timeout=5)
            async for _ in stream:
                break
            stream.cancel()
        else:
            await getattr(stub, name)(request)
    except grpc.aio.AioRpcError as exc:
        info = error_info_of(exc)
        return exc.code(), info.reason if info else ""
    return grpc.StatusCode.OK, ""


def judge(cell: str, own: bool, code: grpc.StatusCode, reason: str) -> bool:
    allowed = code not in DENIED
    if cell in ("✓", "room") or (cell == "own" and own):  # "room" is tried with svc:room
        return allowed
    if cell == "reg":
        return allowed if own else (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NOT_REGISTERED")
    return not allowed  # "—", or "own" on another sale


async def test_every_cell_of_the_authorization_table(actors):
    rows = table()
    builders = {f"catalog.{name}": build for name, build in CATALOG.items()}
    builders |= {f"room.{name}": build for name, build in ROOM.items()}
    assert set(rows) == set(builders), "the table and the test name different RPCs"
    own, other = await target(actors, "own"), await target(actors, "other")
    order = sorted(rows, key=lambda rpc: rpc.split(".")[1] in LAST)
    wrong = []
    for rpc in order:
        for role in ROLES:
            cell = rows[rpc][role]
            for mine, where in ((True, own), (False, other)):
                code, reason = await outcome(caller(actors, own, role, rpc), rpc, builders[rpc](where))
                if not judge(cell, mine, code, reason):
                    wrong.append(
                        f"{rpc} as {role} on {'own' if mine else 'other'} sale: {code.name} {reason} (table: {cell})"
                    )
    assert wrong == []
    code, reason = await outcome(actors.service("tender"), "catalog.CloseLot", CATALOG["CloseLot"](own))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_ROOM")  # a live lot is the room's
