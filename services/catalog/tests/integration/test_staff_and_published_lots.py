"""Staff per sale and the published lot over gRPC, on real SQLite (and PostgreSQL when configured):
assignments announced on NATS, staff of another sale refused, the published lot byte for byte in
every statement, withdrawing a published lot and cancelling a published sale tell the room."""

from __future__ import annotations

import grpc
import pytest

from gavel.catalog.v1 import catalog_service_pb2 as pb
from gavel.catalog.v1 import resources_pb2 as res
from gavel.events.v1 import catalog_events_pb2 as ev
from gavel_kit.grpc.errors import error_info_of

pytestmark = pytest.mark.integration


def deterministic(lot: res.Lot) -> bytes:
    return lot.SerializeToString(deterministic=True)


async def assign(catalog, sale_id: str, user_id: str, role: int) -> pb.AssignStaffResponse:
    return await catalog.admin.AssignStaff(
        pb.AssignStaffRequest(request_id=catalog.request_id(), sale_id=sale_id, user_id=user_id, role=role)
    )


async def test_staff_assignments_are_announced_and_listed(catalog):
    sale, _ = await catalog.published_sale_starting_soon()
    await assign(catalog, sale.id, "crier-1", res.STAFF_ROLE_CRIER)
    await assign(catalog, sale.id, "device-1", res.STAFF_ROLE_CLERK)
    [_, second] = await catalog.events.wait_for("sale_staff_changed", 2)
    changed = ev.SaleStaffChanged.FromString(second.data)
    assert [(a.user_id, a.role) for a in changed.staff] == [
        ("device-1", res.STAFF_ROLE_CLERK),
        ("crier-1", res.STAFF_ROLE_CRIER),
    ]
    listed = await catalog.room_service.ListSaleStaff(pb.ListSaleStaffRequest(sale_id=sale.id))
    assert [a.user_id for a in listed.staff] == ["device-1", "crier-1"]


async def test_a_crier_of_another_sale_cannot_start_this_sales_lots(catalog):
    sale, [lot] = await catalog.published_sale_starting_soon()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await catalog.crier.StartLot(pb.StartLotRequest(request_id=catalog.request_id(), lot_id=lot.id))
    info = error_info_of(caught.value)
    assert (caught.value.code(), info.reason if info else "") == (grpc.StatusCode.PERMISSION_DENIED, "NOT_STAFF")
    await assign(catalog, sale.id, "crier-1", res.STAFF_ROLE_CRIER)
    started = await catalog.crier.StartLot(pb.StartLotRequest(request_id=catalog.request_id(), lot_id=lot.id))
    assert started.lot.state == res.LOT_STATE_LIVE


async def test_every_statement_of_a_lot_carries_it_exactly_as_published(catalog):
    _, [lot] = await catalog.published_sale_starting_soon()
    [scheduled] = await catalog.events.wait_for("lot_scheduled")
    published = ev.LotScheduled.FromString(scheduled.data).lot
    assert published.registration_required
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await catalog.seller.UpdateLot(
            pb.UpdateLotRequest(request_id=catalog.request_id(), lot=res.Lot(id=lot.id, **catalog.english(99_000)))
        )
    info = error_info_of(caught.value)
    assert (caught.value.code(), info.reason if info else "") == (grpc.StatusCode.FAILED_PRECONDITION, "TERMS_FROZEN")

    await catalog.room_service.StartLot(pb.StartLotRequest(request_id=catalog.request_id(), lot_id=lot.id))
    [starting] = await catalog.events.wait_for("lot_starting")
    assert deterministic(ev.LotStarting.FromString(starting.data).lot) == deterministic(published)
    answer = await catalog.room_service.GetLot(pb.GetLotRequest(lot_id=lot.id))
    assert deterministic(answer.published) == deterministic(published)
    assert answer.lot.state == res.LOT_STATE_LIVE
    assert not (await catalog.admin.GetLot(pb.GetLotRequest(lot_id=lot.id))).HasField("published")


async def test_withdrawing_a_published_lot_and_cancelling_a_published_sale_tell_the_room(catalog):
    sale, [lot] = await catalog.published_sale_starting_soon()
    await catalog.seller.WithdrawLot(
        pb.WithdrawLotRequest(request_id=catalog.request_id(), lot_id=lot.id, reason="sold privately")
    )
    [withdrawn] = await catalog.events.wait_for("lot_withdrawn")
    event = ev.LotWithdrawn.FromString(withdrawn.data)
    assert (event.lot_id, event.reason, event.sale_cancelled, event.withdrawn_by) == (
        lot.id,
        "sold privately",
        False,
        "seller-1",
    )
    product = await catalog.product(title="Walnut bureau")
    replacement = await catalog.lot(sale, product)
    assert replacement[0].state == res.LOT_STATE_SCHEDULED
    await catalog.seller.CancelSale(
        pb.CancelSaleRequest(request_id=catalog.request_id(), sale_id=sale.id, reason="flood")
    )
    [_, cancelled] = await catalog.events.wait_for("lot_withdrawn", 2)
    event = ev.LotWithdrawn.FromString(cancelled.data)
    assert (event.lot_id, event.sale_cancelled, event.reason) == (replacement[0].id, True, "flood")


async def test_the_room_may_read_registrations_and_a_sale_admin_of_another_sale_may_not_decide(catalog):
    sale = await catalog.sale_starting_soon(rule=res.APPROVAL_RULE_MANUAL)
    await catalog.lot(sale, await catalog.product())
    await catalog.publish(sale)
    registration = await catalog.register(catalog.bidder(1), sale)
    listed = await catalog.room_service.ListRegistrations(
        pb.ListRegistrationsRequest(sale_id=sale.id, bidder_id="bidder-1")
    )
    assert [(r.id, r.status) for r in listed.registrations] == [(registration.id, res.REGISTRATION_STATUS_PENDING)]
    decide = pb.DecideRegistrationRequest(
        request_id=catalog.request_id(), registration_id=registration.id, decision=pb.DECISION_APPROVE
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await catalog.sale_admin.DecideRegistration(decide)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await assign(catalog, sale.id, "sale-admin-1", res.STAFF_ROLE_SALE_ADMIN)
    decided = await catalog.sale_admin.DecideRegistration(decide)
    assert decided.registration.status == res.REGISTRATION_STATUS_APPROVED
