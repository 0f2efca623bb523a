"""Request ids, refusals and their status details, over real gRPC."""

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gavel.catalog.v1 import catalog_service_pb2 as pb
from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1.money_pb2 import Money
from gavel.common.v1.paging_pb2 import PageRequest
from gavel_kit.grpc.errors import bad_request_of, error_info_of

pytestmark = pytest.mark.integration

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT


def stamp(moment: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(moment)
    return value


async def refusal(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def fields_of(error: grpc.aio.AioRpcError) -> set[str]:
    bad_request = bad_request_of(error)
    return {violation.field for violation in bad_request.field_violations} if bad_request else set()


async def test_retrying_a_request_returns_the_first_answer_and_creates_nothing_new(catalog):
    create = pb.CreateProductRequest(request_id="create-desk", product=res.Product(title="Desk", quantity=1))
    first = await catalog.seller.CreateProduct(create)
    again = await catalog.seller.CreateProduct(create)
    assert again == first
    listed = await catalog.anonymous.ListProducts(pb.ListProductsRequest(seller_id="seller-1"))
    assert [p.id for p in listed.products] == [first.product.id]

    sale = await catalog.live_sale((datetime.now(UTC) + timedelta(days=3)).date(), [("10:00", "11:00")])
    await catalog.lot(sale, first.product)
    publish = pb.PublishSaleRequest(request_id="publish-once", sale_id=sale.id)
    published = await catalog.seller.PublishSale(publish)
    assert await catalog.seller.PublishSale(publish) == published  # not INVALID_STATE: the stored answer
    await catalog.events.wait_for("sale_published")
    await asyncio.sleep(0.3)
    assert len(catalog.events.of("sale_published")) == 1  # announced once

    theirs = await catalog.other_seller.CreateProduct(create)  # request ids are scoped by caller
    assert theirs.product.id != first.product.id


async def test_a_request_id_reused_for_a_different_request_is_refused(catalog):
    await catalog.seller.CreateProduct(
        pb.CreateProductRequest(request_id="r-1", product=res.Product(title="Desk", quantity=1))
    )

    error = await refusal(
        catalog.seller.CreateProduct(
            pb.CreateProductRequest(request_id="r-1", product=res.Product(title="Lamp", quantity=1))
        )
    )

    assert (error.code(), error_info_of(error).reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REQUEST_ID_REUSED")


async def test_bad_input_is_refused_naming_each_offending_field_and_the_service_keeps_serving(catalog):
    product = await catalog.product()
    sale = await catalog.live_sale((datetime.now(UTC) + timedelta(days=3)).date(), [("10:00", "11:00")])
    now = datetime.now(UTC)

    def new_product(**fields):
        return pb.CreateProductRequest(request_id=catalog.request_id(), product=res.Product(quantity=1, **fields))

    def add_lot(**terms):
        return pb.AddLotRequest(
            request_id=catalog.request_id(), sale_id=sale.id, lot=res.Lot(product_id=product.id, **terms)
        )

    def new_sale(**fields):
        return pb.CreateSaleRequest(request_id=catalog.request_id(), sale=res.Sale(title="Sale", **fields))

    def english_in(currency: str, opening_bid: int, amount_currency: str = ""):
        return {
            "currency": currency,
            "format": res.FORMAT_ENGLISH,
            "english": res.EnglishParams(
                opening_bid=Money(amount_minor=opening_bid, currency=amount_currency),
                increment_preset="flat_100",
                close=res.ENGLISH_CLOSE_CRIER,
            ),
        }

    live = res.LiveSession(date=sale.live_session.date, time_slots=[res.TimeSlot(start="10:00", end="11:00")])
    cases = {
        "an empty title": ("CreateProduct", new_product(title="   "), {"product.title"}),
        "an oversized title": ("CreateProduct", new_product(title="x" * 201), {"product.title"}),
        "a missing request id": (
            "CreateProduct",
            pb.CreateProductRequest(product=res.Product(title="Desk", quantity=1)),
            {"request_id"},
        ),
        "a negative amount": ("AddLot", add_lot(**catalog.english(-5)), {"lot.english.opening_bid"}),
        "an overflowing amount": ("AddLot", add_lot(**catalog.english(10**15 + 1)), {"lot.english.opening_bid"}),
        "an unknown currency": ("AddLot", add_lot(**english_in("XYZ", 5_000)), {"lot.currency"}),
        "an amount in another currency": (
            "AddLot",
            add_lot(**english_in("EUR", 5_000, amount_currency="USD")),
            {"lot.english.opening_bid.currency"},
        ),
        "a lot without a format": ("AddLot", add_lot(currency="USD"), {"lot.format"}),
        "a seller's lucky option": (
            "AddLot",
            add_lot(
                currency="USD",
                format=res.FORMAT_LUCKY,
                lucky=res.LuckyParams(
                    options=["red", "blue"],
                    price=Money(amount_minor=500),
                    window_ms=60_000,
                    winning_rule=res.LUCKY_WINNING_RULE_FIXED,
                    winning_option=1,
                ),
            ),
            {"lot.lucky.winning_rule"},
        ),
        "Dutch steps that do not add up to the start price": (
            "AddLot",
            add_lot(
                currency="USD",
                format=res.FORMAT_DUTCH,
                dutch=res.DutchParams(
                    start_price=Money(amount_minor=5_000),
                    floor_price=Money(amount_minor=1_000),
                    tick_ms=1_000,
                    step_mode=res.DUTCH_STEP_MODE_RANDOM,
                    steps=[Money(amount_minor=1_000), Money(amount_minor=2_000)],
                ),
            ),
            {"lot.dutch.steps"},
        ),
        "a reversed time range": (
            "CreateSale",
            new_sale(
                time_zone="UTC",
                timed_tender=res.TimedTender(
                    starts_at=stamp(now + timedelta(days=2)), ends_at=stamp(now + timedelta(days=1))
                ),
            ),
            {"sale.timed_tender.ends_at"},
        ),
        "a reversed search range": (
            "ListSales",
            pb.ListSalesRequest(starts_from=stamp(now), starts_before=stamp(now - timedelta(days=1))),
            {"starts_before"},
        ),
        "an unknown time zone": (
            "CreateSale",
            new_sale(time_zone="Mars/Olympus_Mons", live_session=live),
            {"sale.time_zone"},
        ),
        "times of day that are not": (
            "CreateSale",
            new_sale(
                time_zone="UTC",
                live_session=res.LiveSession(date=live.date, time_slots=[res.TimeSlot(start="25:00", end="9am")]),
            ),
            {"sale.live_session.time_slots[0].start", "sale.live_session.time_slots[0].end"},
        ),
        "a page size below zero": (
            "ListProducts",
            pb.ListProductsRequest(page=PageRequest(page_size=-1)),
            {"page.page_size"},
        ),
    }
    for name, (rpc, request, fields) in cases.items():
        error = await refusal(getattr(catalog.seller, rpc)(request))
        assert (error.code(), fields_of(error)) == (INVALID_ARGUMENT, fields), name

    health = health_pb2_grpc.HealthStub(catalog.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service="gavel.catalog.v1.CatalogService"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert (await catalog.anonymous.GetProduct(pb.GetProductRequest(product_id=product.id))).product.id == product.id


async def test_unknown_ids_are_not_found(catalog):
    calls = [
        catalog.anonymous.GetProduct(pb.GetProductRequest(product_id="no-such-product")),
        catalog.anonymous.GetSale(pb.GetSaleRequest(sale_id="no-such-sale")),
        catalog.anonymous.GetLot(pb.GetLotRequest(lot_id="no-such-lot")),
        catalog.seller.PublishSale(pb.PublishSaleRequest(request_id=catalog.request_id(), sale_id="no-such-sale")),
        catalog.bidder(1).ReserveLot(pb.ReserveLotRequest(request_id=catalog.request_id(), lot_id="no-such-lot")),
    ]
    for call in calls:
        assert (await refusal(call)).code() == grpc.StatusCode.NOT_FOUND


async def test_a_caller_without_the_rpcs_role_is_refused(catalog):
    product = pb.CreateProductRequest(request_id=catalog.request_id(), product=res.Product(title="Desk", quantity=1))

    assert (await refusal(catalog.bidder(1).CreateProduct(product))).code() == grpc.StatusCode.PERMISSION_DENIED
    assert (await refusal(catalog.anonymous.CreateProduct(product))).code() == grpc.StatusCode.UNAUTHENTICATED
    start = pb.StartLotRequest(request_id=catalog.request_id(), lot_id="any")
    assert (await refusal(catalog.seller.StartLot(start))).code() == grpc.StatusCode.PERMISSION_DENIED


async def test_sellers_act_only_on_their_own_products_and_sales(catalog):
    product = await catalog.product()
    draft = await catalog.live_sale((datetime.now(UTC) + timedelta(days=3)).date(), [("10:00", "11:00")])
    published, _ = await catalog.published_sale_starting_soon()
    intruder = catalog.other_seller

    edit = pb.UpdateProductRequest(
        request_id=catalog.request_id(), product=res.Product(id=product.id, title="Mine", quantity=1)
    )
    error = await refusal(intruder.UpdateProduct(edit))
    assert (error.code(), error_info_of(error).reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWNER")

    cancel = pb.CancelSaleRequest(request_id=catalog.request_id(), sale_id=published.id, reason="mine now")
    error = await refusal(intruder.CancelSale(cancel))
    assert (error.code(), error_info_of(error).reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWNER")

    their_sale = await catalog.live_sale(
        (datetime.now(UTC) + timedelta(days=4)).date(), [("10:00", "11:00")], seller=intruder
    )
    error = await refusal(catalog.lot(their_sale, product, seller=intruder))  # adding someone else's product
    assert (error.code(), error_info_of(error).reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWNER")

    # another seller's draft does not even exist for them: drafts do not leak (docs/catalog.md "Errors")
    error = await refusal(
        intruder.PublishSale(pb.PublishSaleRequest(request_id=catalog.request_id(), sale_id=draft.id))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_a_move_the_life_cycle_does_not_allow_is_refused_as_invalid_state(catalog):
    sale, [lot] = await catalog.published_sale_starting_soon()

    error = await refusal(catalog.publish(sale))
    info = error_info_of(error)
    assert (error.code(), info.reason, info.metadata["resource"], info.metadata["current_state"]) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_STATE",
        "sale",
        "scheduled",
    )
    close = pb.CloseLotRequest(request_id=catalog.request_id(), lot_id=lot.id, outcome=res.LOT_OUTCOME_PASSED)
    error = await refusal(catalog.room_service.CloseLot(close))
    assert (error_info_of(error).reason, error_info_of(error).metadata["current_state"]) == (
        "INVALID_STATE",
        "scheduled",
    )


async def test_two_copies_of_one_request_racing_each_other_get_one_answer_and_have_one_effect(catalog):
    create = pb.CreateProductRequest(request_id="raced", product=res.Product(title="Desk", quantity=1))

    replies = await asyncio.gather(*(catalog.seller.CreateProduct(create) for _ in range(4)))

    assert len({reply.product.id for reply in replies}) == 1
    listed = await catalog.anonymous.ListProducts(pb.ListProductsRequest(seller_id="seller-1"))
    assert listed.page.total_size == 1
