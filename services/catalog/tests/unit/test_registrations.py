"""Registrations: automatic rules, a sale admin's decisions, who sees which registrations."""

import pytest

from catalog.app.registrations import (
    DecideRegistration,
    ListRegistrations,
    decide_registration,
    list_registrations,
    register_for_sale,
)
from catalog.app.sales import CancelSale, cancel_sale
from catalog.domain.events import RegistrationDecided
from catalog.domain.registrations import RegistrationStatus
from catalog.domain.sales import ApprovalRule
from gavel_core.auth import Principal, Role
from gavel_core.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied


def fields(error: InvalidArgument) -> set[str]:
    return {violation.field for violation in error.violations}


async def _sale(catalog, rule, allow_list=()):
    sale, _ = await catalog.published_sale(spec=catalog.live_sale_spec(rule=rule, allow_list=allow_list))
    return sale


async def test_auto_approve_all_approves_at_once_and_says_so(catalog):
    sale = await _sale(catalog, ApprovalRule.AUTO_ALL)
    registration = await catalog(register_for_sale, catalog.bidder(1), sale.id)

    assert registration.status is RegistrationStatus.APPROVED
    [event] = catalog.events_of(RegistrationDecided)
    assert (event.bidder_id, event.status, event.decided_by) == ("bidder-1", RegistrationStatus.APPROVED, "")
    assert event.subject == f"gavel.catalog.registration_decided.{sale.id}"


async def test_a_manual_sale_leaves_registrations_pending_for_an_admin(catalog):
    sale = await _sale(catalog, ApprovalRule.MANUAL)
    registration = await catalog(register_for_sale, catalog.bidder(1), sale.id)
    assert registration.status is RegistrationStatus.PENDING
    assert catalog.events_of(RegistrationDecided) == []


async def test_a_verified_deposit_approves_when_the_rule_asks_for_one(catalog):
    sale = await _sale(catalog, ApprovalRule.AUTO_VERIFIED_DEPOSIT)
    catalog.deposits.verified.add(("bidder-1", sale.id))
    approved = await catalog(register_for_sale, catalog.bidder(1), sale.id)
    pending = await catalog(register_for_sale, catalog.bidder(2), sale.id)
    assert (approved.status, pending.status) == (RegistrationStatus.APPROVED, RegistrationStatus.PENDING)


async def test_deposits_are_asked_about_only_under_the_deposit_rule(catalog):
    sale = await _sale(catalog, ApprovalRule.AUTO_ALL)
    await catalog(register_for_sale, catalog.bidder(1), sale.id)
    assert catalog.deposits.asked == []


async def test_the_allow_list_approves_listed_bidders_only(catalog):
    sale = await _sale(catalog, ApprovalRule.AUTO_ALLOW_LIST, allow_list=("bidder-1",))
    listed = await catalog(register_for_sale, catalog.bidder(1), sale.id)
    unlisted = await catalog(register_for_sale, catalog.bidder(2), sale.id)
    assert (listed.status, unlisted.status) == (RegistrationStatus.APPROVED, RegistrationStatus.PENDING)


async def test_registering_again_returns_the_same_registration(catalog):
    sale = await _sale(catalog, ApprovalRule.MANUAL)
    first = await catalog(register_for_sale, catalog.bidder(1), sale.id)
    again = await catalog(register_for_sale, catalog.bidder(1), sale.id)
    assert again is first


async def test_a_seller_cannot_register_for_their_own_sale(catalog):
    sale = await _sale(catalog, ApprovalRule.AUTO_ALL)
    seller_bidding = Principal(catalog.SELLER.subject, frozenset({Role.SELLER, Role.BIDDER}))
    with pytest.raises(PermissionDenied) as caught:
        await catalog(register_for_sale, seller_bidding, sale.id)
    assert caught.value.reason == "OWN_LOT"


async def test_a_draft_sale_takes_no_registrations_and_is_not_even_found(catalog):
    sale = await catalog.sale()
    with pytest.raises(NotFound):
        await catalog(register_for_sale, catalog.bidder(1), sale.id)


async def test_a_cancelled_sale_takes_no_registrations(catalog):
    sale = await _sale(catalog, ApprovalRule.AUTO_ALL)
    await catalog(cancel_sale, catalog.SELLER, CancelSale(sale.id, "Called off"))
    with pytest.raises(FailedPrecondition) as caught:
        await catalog(register_for_sale, catalog.bidder(1), sale.id)
    assert caught.value.metadata["current_state"] == "cancelled"


async def test_only_bidders_register(catalog):
    sale = await _sale(catalog, ApprovalRule.AUTO_ALL)
    with pytest.raises(PermissionDenied):
        await catalog(register_for_sale, catalog.OTHER_SELLER, sale.id)


async def test_a_sale_admin_approves_a_pending_registration(catalog):
    sale = await _sale(catalog, ApprovalRule.MANUAL)
    pending = await catalog(register_for_sale, catalog.bidder(1), sale.id)
    approved = await catalog(decide_registration, catalog.ADMIN, DecideRegistration(pending.id, approve=True))

    assert (approved.status, approved.decided_by, approved.decided_at) == (
        RegistrationStatus.APPROVED,
        catalog.ADMIN.subject,
        catalog.NOW,
    )
    [event] = catalog.events_of(RegistrationDecided)
    assert (event.status, event.decided_by) == (RegistrationStatus.APPROVED, catalog.ADMIN.subject)


async def test_a_sale_admin_rejects_with_a_reason_the_bidder_is_told(catalog):
    sale = await _sale(catalog, ApprovalRule.MANUAL)
    pending = await catalog(register_for_sale, catalog.bidder(1), sale.id)
    rejected = await catalog(
        decide_registration, catalog.ADMIN, DecideRegistration(pending.id, approve=False, reason="No ID on file")
    )
    assert (rejected.status, rejected.reason) == (RegistrationStatus.REJECTED, "No ID on file")
    assert catalog.events_of(RegistrationDecided)[0].reason == "No ID on file"


async def test_rejecting_without_a_reason_is_refused(catalog):
    sale = await _sale(catalog, ApprovalRule.MANUAL)
    pending = await catalog(register_for_sale, catalog.bidder(1), sale.id)
    with pytest.raises(InvalidArgument) as caught:
        await catalog(decide_registration, catalog.ADMIN, DecideRegistration(pending.id, approve=False))
    assert fields(caught.value) == {"reason"}


async def test_an_admin_may_reverse_a_decision_but_not_repeat_it(catalog):
    sale = await _sale(catalog, ApprovalRule.AUTO_ALL)
    approved = await catalog(register_for_sale, catalog.bidder(1), sale.id)
    with pytest.raises(FailedPrecondition) as caught:
        await catalog(decide_registration, catalog.ADMIN, DecideRegistration(approved.id, approve=True))
    assert caught.value.metadata["current_state"] == "approved"
    revoked = await catalog(
        decide_registration, catalog.ADMIN, DecideRegistration(approved.id, approve=False, reason="Chargeback")
    )
    assert revoked.status is RegistrationStatus.REJECTED


async def test_only_sale_admins_decide(catalog):
    sale = await _sale(catalog, ApprovalRule.MANUAL)
    pending = await catalog(register_for_sale, catalog.bidder(1), sale.id)
    with pytest.raises(PermissionDenied):
        await catalog(decide_registration, catalog.SELLER, DecideRegistration(pending.id, approve=True))


async def test_deciding_an_unknown_registration_is_not_found(catalog):
    with pytest.raises(NotFound):
        await catalog(decide_registration, catalog.ADMIN, DecideRegistration("nope", approve=True))


async def test_admins_and_sale_owners_list_a_sales_registrations_and_bidders_their_own(catalog):
    sale = await _sale(catalog, ApprovalRule.MANUAL)
    for n in (1, 2, 3):
        await catalog(register_for_sale, catalog.bidder(n), sale.id)

    by_admin = await catalog(list_registrations, catalog.ADMIN, ListRegistrations(sale_id=sale.id))
    by_owner = await catalog(list_registrations, catalog.SELLER, ListRegistrations(sale_id=sale.id))
    by_bidder = await catalog(list_registrations, catalog.bidder(2), ListRegistrations(sale_id=sale.id))
    by_outsider = await catalog(list_registrations, catalog.OTHER_SELLER, ListRegistrations(sale_id=sale.id))

    assert by_admin.total_size == by_owner.total_size == 3
    assert [r.bidder_id for r in by_bidder.items] == ["bidder-2"]
    assert by_outsider.items == ()


async def test_a_bidder_cannot_list_another_bidders_registrations(catalog):
    with pytest.raises(PermissionDenied) as caught:
        await catalog(list_registrations, catalog.bidder(1), ListRegistrations(bidder_id="bidder-2"))
    assert caught.value.reason == "NOT_OWNER"


async def test_registrations_are_filtered_by_status(catalog):
    sale = await _sale(catalog, ApprovalRule.AUTO_ALLOW_LIST, allow_list=("bidder-1",))
    await catalog(register_for_sale, catalog.bidder(1), sale.id)
    await catalog(register_for_sale, catalog.bidder(2), sale.id)
    pending = await catalog(
        list_registrations, catalog.ADMIN, ListRegistrations(sale_id=sale.id, status=RegistrationStatus.PENDING)
    )
    assert [r.bidder_id for r in pending.items] == ["bidder-2"]
