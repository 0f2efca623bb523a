"""Registrations: a bidder registers for a sale; its rule or a sale admin decides."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from catalog.app.common import load_sale, require_sale_staff
from catalog.app.ports import CatalogUnitOfWork, DepositChecker, IdGenerator
from catalog.domain.access import ADMINS, MANAGERS, NOT_OWNER, own_lot_error
from catalog.domain.events import RegistrationDecided
from catalog.domain.paging import Page, PageRequest
from catalog.domain.queries import REGISTRATIONS, RegistrationFilter
from catalog.domain.registrations import Registration, RegistrationStatus
from catalog.domain.sales import ApprovalRule
from catalog.domain.staff import StaffRole
from catalog.domain.states import invalid_state
from catalog.domain.validation import require_id
from gavel_core.auth import Principal, Role
from gavel_core.errors import NotFound, PermissionDenied


@dataclass(frozen=True, slots=True)
class DecideRegistration:
    registration_id: str
    approve: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ListRegistrations:
    page_size: int = 0
    page_token: str = ""
    sale_id: str | None = None
    bidder_id: str | None = None
    status: RegistrationStatus | None = None


async def _decided(uow: CatalogUnitOfWork, ids: IdGenerator, registration: Registration, now: datetime) -> None:
    await uow.collect(
        RegistrationDecided(
            event_id=ids.new_id(),
            occurred_at=now,
            registration_id=registration.id,
            sale_id=registration.sale_id,
            bidder_id=registration.bidder_id,
            status=registration.status,
            reason=registration.reason,
            decided_by=registration.decided_by,
        )
    )


async def register_for_sale(
    uow: CatalogUnitOfWork,
    principal: Principal,
    sale_id: str,
    *,
    ids: IdGenerator,
    deposits: DepositChecker,
    now: datetime,
) -> Registration:
    """Register the calling bidder for a sale; the sale's rule may approve at once.

    - Bidders only, never the sale's owner (OWN_LOT); the sale is scheduled or live
      (INVALID_STATE).
    - One registration per bidder and sale: registering again returns it as it stands.
    - auto_all approves; auto_verified_deposit approves when the payment side reports a verified
      deposit; auto_allow_list approves listed bidders; otherwise (and for manual) it waits for
      a sale admin. An automatic approval emits RegistrationDecided with an empty decided_by.
    """
    principal.require(Role.BIDDER)
    require_id("sale_id", sale_id)
    sale = await load_sale(uow, principal, sale_id)
    if sale.owner_id == principal.subject:
        raise own_lot_error("sale", sale.id)
    if not sale.takes_registrations:
        raise invalid_state("sale", sale.id, sale.state, "register for")
    existing = await uow.registrations.get_for(sale.id, principal.subject)
    if existing is not None:
        return existing
    deposit_verified = sale.registration.rule is ApprovalRule.AUTO_VERIFIED_DEPOSIT and (
        await deposits.has_verified_deposit(principal.subject, sale.id)
    )
    registration = Registration.submit(
        ids.new_id(), sale.id, sale.registration, principal.subject, deposit_verified, now
    )
    await uow.registrations.add(registration)
    if registration.is_approved:
        await _decided(uow, ids, registration, now)
    return registration


async def decide_registration(
    uow: CatalogUnitOfWork, principal: Principal, command: DecideRegistration, *, ids: IdGenerator, now: datetime
) -> Registration:
    """A sale admin approves or rejects a registration (and may reverse an earlier decision).

    - Site admins, and the sale admins assigned to the registration's sale (NOT_STAFF).
    - Rejecting needs a reason of 1-500 characters; deciding what already stands is refused
      (INVALID_STATE).
    - Emits RegistrationDecided.
    """
    principal.require(*ADMINS)
    require_id("registration_id", command.registration_id)
    registration = await uow.registrations.get(command.registration_id)
    if registration is None:
        raise NotFound("registration", command.registration_id)
    await require_sale_staff(
        uow, principal, registration.sale_id, StaffRole.SALE_ADMIN, action="decide its registrations"
    )
    registration.decide(command.approve, command.reason, principal.subject, now)
    await _decided(uow, ids, registration, now)
    return registration


async def list_registrations(
    uow: CatalogUnitOfWork, principal: Principal, query: ListRegistrations
) -> Page[Registration]:
    """List registrations, oldest first.

    - Admins see every registration; a sale's owner sees those of their sale (give sale_id);
      anyone else sees only their own (bidder_id is theirs or empty, else NOT_OWNER).
    """
    principal.require(Role.BIDDER, Role.SERVICE, *MANAGERS)
    page = PageRequest.parse(REGISTRATIONS, query.page_size, query.page_token)
    registration_filter = RegistrationFilter(
        sale_id=query.sale_id or None,
        bidder_id=query.bidder_id or None,
        statuses=frozenset({query.status}) if query.status else frozenset(),
    )
    registration_filter.validate()
    if not principal.is_admin and not await _owns_sale(uow, principal, registration_filter.sale_id):
        if registration_filter.bidder_id not in (None, principal.subject):
            raise PermissionDenied("you may list only your own registrations", reason=NOT_OWNER)
        registration_filter = RegistrationFilter(
            registration_filter.sale_id, principal.subject, registration_filter.statuses
        )
    return await uow.registrations.list(registration_filter, page)


async def _owns_sale(uow: CatalogUnitOfWork, principal: Principal, sale_id: str | None) -> bool:
    if sale_id is None:
        return False
    sale = await uow.sales.get(sale_id)
    return sale is not None and sale.owner_id == principal.subject
