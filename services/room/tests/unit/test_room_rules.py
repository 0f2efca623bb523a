"""The room's use cases decide who may act on a lot's sale, failing closed: staff only on the sales
they are assigned to, bidders only with an approved registration when the sale needs one, nobody
bids while the replica has not caught up on the eligibility events."""

from __future__ import annotations

import dataclasses

import pytest
from room_fakes import world
from room_support import english

from gavel_core.auth import Principal, Role
from gavel_core.errors import FailedPrecondition, PermissionDenied, Unavailable
from room.app.eligibility import EligibilityBook
from room.app.room import RoomService

LOT = "lot-1"
ALICE = Principal("alice", frozenset({Role.BIDDER}))
CRIER = Principal("crier-1", frozenset({Role.CRIER}))
OTHER_CRIER = Principal("crier-9", frozenset({Role.CRIER}))
SITE_ADMIN = Principal("root", frozenset({Role.SITE_ADMIN}))


class Books:
    def __init__(self) -> None:
        self.approved: set[tuple[str, str]] = set()
        self.staff: set[tuple[str, str, str]] = {("sale-1", "crier-1", "crier")}

    async def is_seated(self, lot, bidder_id):
        return True

    async def bidder_for(self, sale_id, paddle):
        return None

    async def holds(self, sale_id, subject, role):
        return (sale_id, subject, role) in self.staff


class Registrations:
    def __init__(self, books: Books) -> None:
        self._books = books

    async def approved(self, sale_id, bidder_id):
        return (sale_id, bidder_id) in self._books.approved


def service(registration_required: bool = False, caught_up: bool = True):
    w = world()
    terms = english(opening_bid=1_000)
    w.terms.add(LOT, terms)
    info, _ = w.terms.lots[LOT]
    w.terms.lots[LOT] = (dataclasses.replace(info, registration_required=registration_required), terms)
    books = Books()
    room = RoomService(
        w.lots, EligibilityBook(), books, books, Registrations(books), books, caught_up=lambda: caught_up
    )
    return w, room, books


async def open_lot(room: RoomService) -> None:
    await room.open_lot(CRIER, LOT, "open-1", None, "", "fp")


async def test_a_crier_of_another_sale_is_refused_and_a_site_admin_is_not():
    _, room, _ = service()
    with pytest.raises(PermissionDenied) as caught:
        await room.open_lot(OTHER_CRIER, LOT, "open-x", None, "", "fp")
    assert caught.value.reason == "NOT_STAFF"
    await room.open_lot(SITE_ADMIN, LOT, "open-1", None, "", "fp")


async def test_a_bidder_needs_an_approved_registration_when_the_sale_requires_one():
    _, room, books = service(registration_required=True)
    await open_lot(room)
    with pytest.raises(FailedPrecondition) as caught:
        await room.place_bid(ALICE, LOT, "b1", 5_000, "USD", "fp1")
    assert caught.value.reason == "NOT_REGISTERED"
    books.approved.add(("sale-1", "alice"))
    receipt = await room.place_bid(ALICE, LOT, "b2", 5_000, "USD", "fp2")
    assert receipt.leader == "alice"


async def test_a_replica_behind_on_eligibility_refuses_bids_but_not_reads():
    _, room, _ = service(caught_up=False)
    await open_lot(room)
    with pytest.raises(Unavailable):
        await room.place_bid(ALICE, LOT, "b1", 5_000, "USD", "fp1")
    assert (await room.lot_state(LOT)).phase == "open"


async def test_only_the_sales_admin_withdraws_a_lot():
    _, room, books = service()
    await open_lot(room)
    admin = Principal("admin-1", frozenset({Role.SALE_ADMIN}))
    with pytest.raises(PermissionDenied):
        await room.withdraw(admin, LOT, "w1", "fake", "fp")
    books.staff.add(("sale-1", "admin-1", "sale_admin"))
    outcome = await room.withdraw(admin, LOT, "w2", "fake", "fp")
    assert (outcome.view.phase, outcome.view.unsold_reason) == ("unsold", "WITHDRAWN")
