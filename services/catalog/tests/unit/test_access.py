"""Every use case checks the caller's role itself, not only the gRPC access option."""

from datetime import date

import pytest

from catalog.app.lots import AddLot, ReorderLots, UpdateLot, add_lot, remove_lot, reorder_lots, update_lot
from catalog.app.products import CreateProduct, UpdateProduct, create_product, update_product
from catalog.app.registrations import DecideRegistration, decide_registration, register_for_sale
from catalog.app.reservations import ListMyReservations, cancel_reservation, list_my_reservations, reserve_lot
from catalog.app.rooms import CloseLot, close_lot, enter_room, get_seat, start_lot
from catalog.app.sales import CancelSale, CreateSale, UpdateSale, cancel_sale, create_sale, publish_sale, update_sale
from catalog.domain.lots import LotOutcome, LotResult, LotSpec
from catalog.domain.products import ProductSpec
from catalog.domain.sales import LiveSession, SaleSpec, TimeSlot
from gavel_core.auth import Principal, Role
from gavel_core.errors import PermissionDenied
from gavel_core.formats import EnglishParams, Format, LotTerms
from gavel_core.increments import IncrementTable

CRIER = Principal("crier-1", frozenset({Role.CRIER}))
BIDDER = Principal("bidder-1", frozenset({Role.BIDDER}))
SELLER = Principal("seller-1", frozenset({Role.SELLER}))
NOBODY = Principal("", frozenset())


TERMS = LotTerms("EUR", Format.ENGLISH, EnglishParams(10_000, IncrementTable.preset("flat_100"), duration_ms=60_000))
SESSION = SaleSpec("Sale", "Europe/Paris", LiveSession(date(2030, 5, 8), (TimeSlot(600, 720),)))

CALLS = [
    (create_product, BIDDER, CreateProduct(ProductSpec("Vase"))),
    (update_product, CRIER, UpdateProduct("p", ProductSpec("Vase"))),
    (create_sale, BIDDER, CreateSale(SESSION)),
    (update_sale, CRIER, UpdateSale("s", SESSION)),
    (publish_sale, BIDDER, "s"),
    (cancel_sale, NOBODY, CancelSale("s", "why")),
    (add_lot, BIDDER, AddLot("s", LotSpec("p", TERMS))),
    (update_lot, BIDDER, UpdateLot("l", TERMS)),
    (remove_lot, CRIER, "l"),
    (reorder_lots, BIDDER, ReorderLots("s", ("l",))),
    (register_for_sale, SELLER, "s"),
    (decide_registration, SELLER, DecideRegistration("r", approve=True)),
    (reserve_lot, SELLER, "l"),
    (cancel_reservation, SELLER, "r"),
    (list_my_reservations, NOBODY, ListMyReservations()),
    (enter_room, CRIER, "l"),
    (start_lot, BIDDER, "l"),
    (close_lot, SELLER, CloseLot("l", LotResult(LotOutcome.PASSED))),
]


@pytest.mark.parametrize(("use_case", "who", "argument"), CALLS, ids=[call[0].__name__ for call in CALLS])
async def test_a_caller_without_the_role_is_refused_before_anything_is_looked_up(catalog, use_case, who, argument):
    with pytest.raises(PermissionDenied):
        await catalog(use_case, who, argument)
    assert catalog.events == []


async def test_a_bidder_cannot_ask_where_others_sit(catalog):
    with pytest.raises(PermissionDenied):
        await catalog(get_seat, BIDDER, "l", "bidder-2")
