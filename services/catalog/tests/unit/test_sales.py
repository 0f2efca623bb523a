"""Sales: creation rules, ownership, the draft-only edit rule, cancellation, visibility and search."""

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from catalog.app.products import ListProducts, list_products
from catalog.app.sales import (
    CancelSale,
    CreateSale,
    ListSales,
    UpdateSale,
    cancel_sale,
    create_sale,
    get_sale,
    list_sales,
    update_sale,
)
from catalog.domain.events import SaleCancelled
from catalog.domain.sales import (
    ApprovalRule,
    LiveSession,
    RegistrationPolicy,
    SaleKind,
    TimedTender,
    TimeSlot,
)
from catalog.domain.states import State
from gavel_core.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from gavel_core.formats import Format


def fields(error: InvalidArgument) -> set[str]:
    return {violation.field for violation in error.violations}


async def test_a_live_session_starts_at_its_first_slot_in_the_sales_time_zone(catalog):
    spec = catalog.live_sale_spec(("10:00", "12:00"), ("14:00", "17:30"), time_zone="Europe/Paris")
    sale = await catalog(create_sale, catalog.SELLER, CreateSale(spec))

    assert (sale.kind, sale.state, sale.owner_id) == (SaleKind.LIVE_SESSION, State.DRAFT, catalog.SELLER.subject)
    # Paris is UTC+2 in May.
    assert sale.starts_at == datetime(2030, 5, 8, 8, 0, tzinfo=UTC)
    assert sale.ends_at == datetime(2030, 5, 8, 15, 30, tzinfo=UTC)


async def test_a_session_may_run_to_midnight(catalog):
    sale = await catalog(create_sale, catalog.SELLER, CreateSale(catalog.live_sale_spec(("20:00", "24:00"))))
    assert sale.ends_at == datetime(2030, 5, 8, 22, 0, tzinfo=UTC)


async def test_a_timed_tender_runs_from_start_to_end(catalog):
    sale = await catalog(create_sale, catalog.SELLER, CreateSale(catalog.tender_sale_spec()))
    assert sale.kind is SaleKind.TIMED_TENDER
    assert (sale.starts_at, sale.ends_at) == (
        datetime(2030, 5, 10, 9, tzinfo=UTC),
        datetime(2030, 5, 17, 9, tzinfo=UTC),
    )


def _live(*slots, day=date(2030, 5, 8)):
    return LiveSession(day, tuple(TimeSlot(a, b) for a, b in slots))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": ""}, "sale.title"),
        ({"title": "t" * 201}, "sale.title"),
        ({"description": "d" * 10_001}, "sale.description"),
        ({"time_zone": "Mars/Olympus"}, "sale.time_zone"),
        ({"time_zone": ""}, "sale.time_zone"),
        ({"time_zone": "../../etc/passwd"}, "sale.time_zone"),
        ({"timing": _live()}, "sale.live_session.time_slots"),
        ({"timing": _live((605, 700))}, "sale.live_session.time_slots[0].start"),
        ({"timing": _live((600, 1450))}, "sale.live_session.time_slots[0].end"),
        ({"timing": _live((720, 600))}, "sale.live_session.time_slots[0].end"),
        ({"timing": _live((600, 720), (700, 800))}, "sale.live_session.time_slots[1].start"),
        ({"timing": _live((600, 720), day=date(2030, 5, 1))}, "sale.live_session.date"),
        ({"timing": _live((600, 720), day=date(2033, 1, 1))}, "sale.live_session.date"),
        (
            {"timing": TimedTender(datetime(2030, 5, 17, tzinfo=UTC), datetime(2030, 5, 10, tzinfo=UTC))},
            "sale.timed_tender.ends_at",
        ),
        (
            {"timing": TimedTender(datetime(2030, 5, 10, tzinfo=UTC), datetime(2030, 9, 10, tzinfo=UTC))},
            "sale.timed_tender.ends_at",
        ),
        (
            {"timing": TimedTender(datetime(2030, 5, 1, tzinfo=UTC), datetime(2030, 5, 10, tzinfo=UTC))},
            "sale.timed_tender.starts_at",
        ),
        (
            {"timing": TimedTender(datetime(2030, 5, 10), datetime(2030, 5, 11, tzinfo=UTC))},
            "sale.timed_tender.starts_at",
        ),
        ({"registration": RegistrationPolicy(ApprovalRule.MANUAL, ("bidder-1",))}, "sale.registration.allow_list"),
        (
            {"registration": RegistrationPolicy(ApprovalRule.AUTO_ALLOW_LIST, ("b 1",))},
            "sale.registration.allow_list[0]",
        ),
    ],
)
async def test_bad_sale_input_names_the_field(catalog, changes, field):
    spec = dataclasses.replace(catalog.live_sale_spec(), **changes)
    with pytest.raises(InvalidArgument) as caught:
        await catalog(create_sale, catalog.SELLER, CreateSale(spec))
    assert field in fields(caught.value)


async def test_a_bidder_cannot_create_a_sale(catalog):
    with pytest.raises(PermissionDenied):
        await catalog(create_sale, catalog.bidder(1), CreateSale(catalog.live_sale_spec()))


async def test_a_seller_edits_their_own_draft(catalog):
    sale = await catalog.sale()
    spec = catalog.live_sale_spec(("14:00", "16:00"), title="Summer furniture")
    updated = await catalog(update_sale, catalog.SELLER, UpdateSale(sale.id, spec))
    assert updated.title == "Summer furniture"
    assert updated.starts_at == datetime(2030, 5, 8, 12, 0, tzinfo=UTC)


async def test_seller_cannot_edit_another_sellers_draft(catalog):
    sale = await catalog.sale(owner=catalog.OTHER_SELLER)
    with pytest.raises(NotFound):
        # Another seller's draft is invisible, so it is not even found.
        await catalog(update_sale, catalog.SELLER, UpdateSale(sale.id, catalog.live_sale_spec()))


async def test_seller_cannot_edit_another_sellers_published_sale(catalog):
    sale, _ = await catalog.published_sale()
    with pytest.raises(PermissionDenied) as caught:
        await catalog(update_sale, catalog.OTHER_SELLER, UpdateSale(sale.id, catalog.live_sale_spec()))
    assert caught.value.reason == "NOT_OWNER"


async def test_a_sale_admin_may_edit_any_draft(catalog):
    sale = await catalog.sale()
    updated = await catalog(update_sale, catalog.ADMIN, UpdateSale(sale.id, catalog.live_sale_spec(title="Renamed")))
    assert updated.title == "Renamed"


async def test_a_published_sale_cannot_be_edited_and_the_error_names_its_state(catalog):
    sale, _ = await catalog.published_sale()
    with pytest.raises(FailedPrecondition) as caught:
        await catalog(update_sale, catalog.SELLER, UpdateSale(sale.id, catalog.live_sale_spec()))
    assert caught.value.reason == "INVALID_STATE"
    assert caught.value.metadata["current_state"] == "scheduled"
    assert "scheduled" in caught.value.message


async def test_drafts_are_visible_only_to_their_owner_and_admins(catalog):
    sale = await catalog.sale()
    assert await catalog(get_sale, catalog.SELLER, sale.id) is sale
    assert await catalog(get_sale, catalog.ADMIN, sale.id) is sale
    for outsider in (catalog.OTHER_SELLER, catalog.bidder(1), catalog.PUBLIC):
        with pytest.raises(NotFound):
            await catalog(get_sale, outsider, sale.id)


async def test_a_published_sale_is_public(catalog):
    sale, _ = await catalog.published_sale()
    assert (await catalog(get_sale, catalog.PUBLIC, sale.id)).id == sale.id


async def test_an_unknown_sale_is_not_found(catalog):
    with pytest.raises(NotFound):
        await catalog(get_sale, catalog.PUBLIC, "no-such-sale")


async def test_cancelling_a_draft_cancels_it_and_its_lots(catalog):
    sale = await catalog.sale()
    lots = await catalog.lot(sale, quantity=2)
    cancelled = await catalog(cancel_sale, catalog.SELLER, CancelSale(sale.id, "Consignor withdrew"))

    assert (cancelled.state, cancelled.cancel_reason) == (State.CANCELLED, "Consignor withdrew")
    assert {lot.state for lot in lots} == {State.CANCELLED}
    [event] = catalog.events_of(SaleCancelled)
    assert (event.sale_id, event.lot_ids) == (sale.id, tuple(lot.id for lot in lots))


async def test_cancelling_a_scheduled_sale_cancels_its_scheduled_lots(catalog):
    sale, lots = await catalog.published_sale()
    await catalog(cancel_sale, catalog.SELLER, CancelSale(sale.id, "Venue flooded"))
    assert sale.state is State.CANCELLED
    assert lots[0].state is State.CANCELLED


async def test_cancelling_needs_a_reason(catalog):
    sale = await catalog.sale()
    with pytest.raises(InvalidArgument) as caught:
        await catalog(cancel_sale, catalog.SELLER, CancelSale(sale.id, " "))
    assert fields(caught.value) == {"reason"}


async def test_a_cancelled_sale_cannot_be_cancelled_again(catalog):
    sale = await catalog.sale()
    await catalog(cancel_sale, catalog.SELLER, CancelSale(sale.id, "No longer needed"))
    with pytest.raises(FailedPrecondition) as caught:
        await catalog(cancel_sale, catalog.SELLER, CancelSale(sale.id, "Again"))
    assert caught.value.metadata["current_state"] == "cancelled"


async def test_another_seller_cannot_cancel_a_sale(catalog):
    sale, _ = await catalog.published_sale()
    with pytest.raises(PermissionDenied) as caught:
        await catalog(cancel_sale, catalog.OTHER_SELLER, CancelSale(sale.id, "Mine"))
    assert caught.value.reason == "NOT_OWNER"


# -- search ------------------------------------------------------------------------------------


async def _three_sales(catalog):
    live, _ = await catalog.published_sale(spec=catalog.live_sale_spec(title="Spring furniture"))
    tender = await catalog.sale(spec=catalog.tender_sale_spec(title="Wine tender"))
    await catalog.lot(tender, terms=catalog.tender_terms(), title="Claret")
    other = await catalog.sale(
        owner=catalog.OTHER_SELLER,
        spec=catalog.live_sale_spec(day=date(2030, 6, 1), title="June silver"),
    )
    return live, tender, other


async def test_the_public_sees_published_sales_only(catalog):
    live, _, _ = await _three_sales(catalog)
    page = await catalog(list_sales, catalog.PUBLIC, ListSales())
    assert [sale.id for sale in page.items] == [live.id]


async def test_a_seller_also_sees_their_own_drafts_and_an_admin_sees_all(catalog):
    live, tender, other = await _three_sales(catalog)
    mine = await catalog(list_sales, catalog.SELLER, ListSales())
    everything = await catalog(list_sales, catalog.ADMIN, ListSales())
    assert [sale.id for sale in mine.items] == [live.id, tender.id]
    assert [sale.id for sale in everything.items] == [live.id, tender.id, other.id]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (ListSales(seller_id="seller-2"), ["June silver"]),
        (ListSales(states=frozenset({State.DRAFT})), ["Wine tender", "June silver"]),
        (ListSales(kind=SaleKind.TIMED_TENDER), ["Wine tender"]),
        (ListSales(format=Format.TENDER_SEALED_FIRST_PRICE), ["Wine tender"]),
        (ListSales(format=Format.ENGLISH), ["Spring furniture"]),
        (ListSales(starts_from=datetime(2030, 5, 9, tzinfo=UTC)), ["Wine tender", "June silver"]),
        (ListSales(starts_before=datetime(2030, 5, 9, tzinfo=UTC)), ["Spring furniture"]),
        (ListSales(query="SILVER"), ["June silver"]),
        (
            ListSales(kind=SaleKind.LIVE_SESSION, starts_from=datetime(2030, 5, 20, tzinfo=UTC), query="silver"),
            ["June silver"],
        ),
    ],
)
async def test_sales_are_searched_with_filters(catalog, query, expected):
    await _three_sales(catalog)
    page = await catalog(list_sales, catalog.ADMIN, query)
    assert [sale.title for sale in page.items] == expected


async def test_sale_search_pages_with_a_cursor_soonest_first(catalog):
    for day in (12, 10, 11):
        await catalog.sale(spec=catalog.live_sale_spec(day=date(2030, 5, day), title=f"Day {day}"))
    first = await catalog(list_sales, catalog.SELLER, ListSales(page_size=2))
    rest = await catalog(list_sales, catalog.SELLER, ListSales(page_size=2, page_token=first.next_page_token))
    assert [s.title for s in first.items] + [s.title for s in rest.items] == ["Day 10", "Day 11", "Day 12"]
    assert (first.total_size, rest.next_page_token) == (3, "")


async def test_a_reversed_date_range_is_refused(catalog):
    query = ListSales(starts_from=catalog.NOW + timedelta(days=2), starts_before=catalog.NOW)
    with pytest.raises(InvalidArgument) as caught:
        await catalog(list_sales, catalog.PUBLIC, query)
    assert fields(caught.value) == {"starts_before"}


async def test_a_page_token_of_another_list_is_refused(catalog):
    for index in range(3):
        await catalog.product(title=f"P{index}")
    products = await catalog(list_products, ListProducts(page_size=1))
    with pytest.raises(InvalidArgument) as caught:
        await catalog(list_sales, catalog.PUBLIC, ListSales(page_token=products.next_page_token))
    assert fields(caught.value) == {"page.page_token"}
