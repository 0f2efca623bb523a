"""Staff per sale (criers, clerks, sale admins act only on the sales they are assigned to), published
lots withdrawn before they start, the published lot every lot statement carries, open sales."""

import pytest

from catalog.app.lots import WithdrawLot, withdraw_lot
from catalog.app.registrations import DecideRegistration, decide_registration, register_for_sale
from catalog.app.rooms import enter_room, published_lot, start_lot
from catalog.app.sales import CancelSale, CreateSale, UpdateSale, cancel_sale, create_sale, publish_sale, update_sale
from catalog.app.staff import StaffChange, assign_staff, list_sale_staff, unassign_staff
from catalog.domain.events import LotScheduled, LotStarting, LotWithdrawn, SaleStaffChanged
from catalog.domain.sales import ApprovalRule, RegistrationPolicy
from catalog.domain.staff import StaffRole
from catalog.domain.states import State
from gavel_core.auth import Principal, Role
from gavel_core.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

OTHER_CRIER = Principal("crier-2", frozenset({Role.CRIER}))
DEVICE = Principal("device-1", frozenset({Role.DEVICE}))


async def staff_of(catalog, sale_id: str, who: Principal, role: StaffRole) -> None:
    await catalog(assign_staff, catalog.ADMIN, StaffChange(sale_id, who.subject, role))


# -- assigning staff ----------------------------------------------------------------------------------


async def test_a_site_admin_assigns_staff_and_every_change_announces_the_whole_staff(catalog):
    sale, _ = await catalog.published_sale()
    await staff_of(catalog, sale.id, catalog.CRIER, StaffRole.CRIER)
    await staff_of(catalog, sale.id, DEVICE, StaffRole.CLERK)
    await catalog(unassign_staff, catalog.ADMIN, StaffChange(sale.id, catalog.CRIER.subject, StaffRole.CRIER))

    changes = catalog.events_of(SaleStaffChanged)
    assert [[(a.user_id, a.role) for a in change.staff] for change in changes] == [
        [("crier-1", StaffRole.CRIER)],
        [("device-1", StaffRole.CLERK), ("crier-1", StaffRole.CRIER)],
        [("device-1", StaffRole.CLERK)],
    ]
    assert changes[0].subject == f"gavel.catalog.sale_staff_changed.{sale.id}"
    listed = await catalog(list_sale_staff, catalog.CRIER, sale.id)
    assert [(a.user_id, a.assigned_by) for a in listed] == [("device-1", "admin-1")]


async def test_assigning_what_stands_changes_nothing_and_unassigning_what_does_not_is_not_found(catalog):
    sale, _ = await catalog.published_sale()
    await staff_of(catalog, sale.id, catalog.CRIER, StaffRole.CRIER)
    await staff_of(catalog, sale.id, catalog.CRIER, StaffRole.CRIER)
    assert len(catalog.events_of(SaleStaffChanged)) == 1
    with pytest.raises(NotFound):
        await catalog(unassign_staff, catalog.ADMIN, StaffChange(sale.id, "nobody", StaffRole.CRIER))


async def test_an_assigned_sale_admin_assigns_criers_and_clerks_but_not_sale_admins(catalog):
    sale, _ = await catalog.published_sale()
    await staff_of(catalog, sale.id, catalog.SALE_ADMIN, StaffRole.SALE_ADMIN)
    await catalog(assign_staff, catalog.SALE_ADMIN, StaffChange(sale.id, "crier-1", StaffRole.CRIER))
    with pytest.raises(PermissionDenied) as caught:
        await catalog(assign_staff, catalog.SALE_ADMIN, StaffChange(sale.id, "admin-9", StaffRole.SALE_ADMIN))
    assert caught.value.reason == "NOT_STAFF"


async def test_a_sale_admin_of_another_sale_cannot_assign_staff(catalog):
    sale, _ = await catalog.published_sale()
    with pytest.raises(PermissionDenied) as caught:
        await catalog(assign_staff, catalog.SALE_ADMIN, StaffChange(sale.id, "crier-1", StaffRole.CRIER))
    assert caught.value.reason == "NOT_STAFF"


async def test_a_sale_admin_who_creates_a_sale_administers_it(catalog):
    sale = await catalog(create_sale, catalog.SALE_ADMIN, CreateSale(catalog.live_sale_spec()))
    [change] = catalog.events_of(SaleStaffChanged)
    assert [(a.user_id, a.role) for a in change.staff] == [("sale-admin-1", StaffRole.SALE_ADMIN)]
    await catalog(assign_staff, catalog.SALE_ADMIN, StaffChange(sale.id, "crier-1", StaffRole.CRIER))


@pytest.mark.parametrize("role", [StaffRole.CRIER])
async def test_staff_ids_are_checked(catalog, role):
    sale, _ = await catalog.published_sale()
    with pytest.raises(InvalidArgument):
        await catalog(assign_staff, catalog.ADMIN, StaffChange(sale.id, "has space", role))


# -- staff act only on their sales ----------------------------------------------------------------------


async def test_only_the_sales_own_crier_starts_its_lots(catalog):
    sale, lots = await catalog.published_sale()
    with pytest.raises(PermissionDenied) as caught:
        await catalog(start_lot, catalog.CRIER, lots[0].id)
    assert caught.value.reason == "NOT_STAFF"
    await staff_of(catalog, sale.id, catalog.CRIER, StaffRole.CRIER)
    with pytest.raises(PermissionDenied):
        await catalog(start_lot, OTHER_CRIER, lots[0].id)
    view = await catalog(start_lot, catalog.CRIER, lots[0].id)
    assert view.lot.state is State.LIVE


async def test_a_crier_assignment_gives_nothing_to_a_token_without_the_crier_role(catalog):
    sale, lots = await catalog.published_sale()
    await staff_of(catalog, sale.id, catalog.CRIER, StaffRole.CRIER)
    impostor = Principal("crier-1", frozenset({Role.SALE_ADMIN}))
    with pytest.raises(PermissionDenied):
        await catalog(start_lot, impostor, lots[0].id)


async def test_a_sale_admin_manages_and_decides_only_for_the_sales_assigned_to_it(catalog):
    sale = await catalog.sale()
    await catalog.lot(sale)
    with pytest.raises(PermissionDenied) as caught:
        await catalog(update_sale, catalog.SALE_ADMIN, UpdateSale(sale.id, catalog.live_sale_spec()))
    assert caught.value.reason == "NOT_STAFF"
    await staff_of(catalog, sale.id, catalog.SALE_ADMIN, StaffRole.SALE_ADMIN)
    await catalog(publish_sale, catalog.SALE_ADMIN, sale.id)
    registration = await catalog(register_for_sale, catalog.bidder(1), sale.id)
    other, _ = await catalog.published_sale()
    foreign = await catalog(register_for_sale, catalog.bidder(2), other.id)
    decided = await catalog(decide_registration, catalog.SALE_ADMIN, DecideRegistration(registration.id, False, "no"))
    assert not decided.is_approved
    with pytest.raises(PermissionDenied):
        await catalog(decide_registration, catalog.SALE_ADMIN, DecideRegistration(foreign.id, False, "no"))


# -- withdrawing published lots -----------------------------------------------------------------------


async def test_a_published_lot_is_withdrawn_with_its_group_and_the_room_is_told(catalog):
    _, lots = await catalog.published_sale(quantity=2)
    views = await catalog(withdraw_lot, catalog.SELLER, WithdrawLot(lots[1].id, "damaged in transit"))
    assert [view.lot.state for view in views] == [State.CANCELLED, State.CANCELLED]
    withdrawn = catalog.events_of(LotWithdrawn)
    assert [(e.lot.lot_id, e.reason, e.sale_cancelled) for e in withdrawn] == [
        (lots[0].id, "damaged in transit", False),
        (lots[1].id, "damaged in transit", False),
    ]
    scheduled = {e.lot_id: e.published for e in catalog.events_of(LotScheduled)}
    assert all(e.lot == scheduled[e.lot.lot_id] for e in withdrawn)


async def test_a_live_lot_is_withdrawn_in_the_room_not_in_the_catalog(catalog):
    _, lots = await catalog.published_sale()
    await catalog(start_lot, catalog.ROOM_SERVICE, lots[0].id)
    with pytest.raises(FailedPrecondition) as caught:
        await catalog(withdraw_lot, catalog.ADMIN, WithdrawLot(lots[0].id, "stop"))
    assert caught.value.reason == "LOT_LIVE"


async def test_another_seller_cannot_withdraw_a_lot_and_a_reason_is_needed(catalog):
    _, lots = await catalog.published_sale()
    with pytest.raises(PermissionDenied):
        await catalog(withdraw_lot, catalog.OTHER_SELLER, WithdrawLot(lots[0].id, "mine now"))
    with pytest.raises(InvalidArgument):
        await catalog(withdraw_lot, catalog.SELLER, WithdrawLot(lots[0].id, " "))


async def test_cancelling_a_published_sale_withdraws_every_lot_and_a_draft_sale_none(catalog):
    sale, lots = await catalog.published_sale(quantity=2)
    await catalog(cancel_sale, catalog.SELLER, CancelSale(sale.id, "venue flooded"))
    assert [(e.lot.lot_id, e.sale_cancelled, e.reason) for e in catalog.events_of(LotWithdrawn)] == [
        (lots[0].id, True, "venue flooded"),
        (lots[1].id, True, "venue flooded"),
    ]
    draft = await catalog.sale()
    await catalog.lot(draft, title="Pine chest")
    await catalog(cancel_sale, catalog.SELLER, CancelSale(draft.id, "changed my mind"))
    assert len(catalog.events_of(LotWithdrawn)) == 2


# -- the published lot --------------------------------------------------------------------------------


async def test_lot_starting_carries_the_lot_exactly_as_published(catalog):
    _, lots = await catalog.published_sale()
    await catalog(start_lot, catalog.ROOM_SERVICE, lots[0].id)
    [starting] = catalog.events_of(LotStarting)
    [scheduled] = catalog.events_of(LotScheduled)
    assert starting.lot == scheduled.published
    assert starting.lot.registration_required


async def test_only_services_read_the_published_lot_and_never_of_a_draft(catalog):
    sale = await catalog.sale()
    [draft] = await catalog.lot(sale)
    assert await catalog(published_lot, catalog.ROOM_SERVICE, draft.id) is None
    await catalog(publish_sale, catalog.SELLER, sale.id)
    assert await catalog(published_lot, catalog.ADMIN, draft.id) is None
    found = await catalog(published_lot, catalog.ROOM_SERVICE, draft.id)
    assert (found.lot_id, found.terms) == (draft.id, draft.terms)


# -- open sales -----------------------------------------------------------------------------------------


async def test_an_open_sale_needs_no_registration(catalog):
    spec = catalog.live_sale_spec()
    open_spec = type(spec)(spec.title, spec.time_zone, spec.timing, registration=RegistrationPolicy(ApprovalRule.OPEN))
    _, lots = await catalog.published_sale(spec=open_spec)
    [scheduled] = catalog.events_of(LotScheduled)
    assert not scheduled.registration_required
    catalog.now = lots[0].estimated_start
    seat = await catalog(enter_room, catalog.bidder(4), lots[0].id)
    assert seat.lot_id == lots[0].id
