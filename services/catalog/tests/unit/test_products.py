"""Products: ownership, input limits, listing with cursor paging."""

import pytest

from catalog.app.products import (
    CreateProduct,
    ListProducts,
    UpdateProduct,
    create_product,
    get_product,
    list_products,
    update_product,
)
from catalog.domain.products import ProductSpec
from gavel_core.errors import InvalidArgument, NotFound, PermissionDenied


def fields(error: InvalidArgument) -> set[str]:
    return {violation.field for violation in error.violations}


async def test_a_seller_creates_a_product_of_their_own(catalog):
    spec = ProductSpec(
        "Oak table",
        description="Solid oak.\nSeats six.",
        image_urls=("https://img.example/oak.jpg",),
        attributes={"wood": "oak"},
        quantity=3,
    )
    product = await catalog(create_product, catalog.SELLER, CreateProduct(spec))

    assert product.seller_id == catalog.SELLER.subject
    assert (product.title, product.quantity, product.attributes) == ("Oak table", 3, {"wood": "oak"})
    assert await catalog(get_product, product.id) is product


async def test_an_admin_creates_a_product_for_a_seller(catalog):
    product = await catalog(
        create_product, catalog.ADMIN, CreateProduct(ProductSpec("Vase"), seller_id=catalog.SELLER.subject)
    )
    assert product.seller_id == catalog.SELLER.subject


async def test_a_seller_cannot_create_a_product_for_another_seller(catalog):
    with pytest.raises(PermissionDenied) as caught:
        await catalog(
            create_product, catalog.SELLER, CreateProduct(ProductSpec("Vase"), seller_id=catalog.OTHER_SELLER.subject)
        )
    assert caught.value.reason == "NOT_OWNER"


async def test_a_bidder_cannot_create_products(catalog):
    with pytest.raises(PermissionDenied):
        await catalog(create_product, catalog.bidder(1), CreateProduct(ProductSpec("Vase")))


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (ProductSpec(""), "product.title"),
        (ProductSpec("   "), "product.title"),
        (ProductSpec("x" * 201), "product.title"),
        (ProductSpec("Bell\x07"), "product.title"),
        (ProductSpec("Vase", description="d" * 10_001), "product.description"),
        (ProductSpec("Vase", image_urls=("http://insecure.example/a.jpg",)), "product.image_urls[0]"),
        (ProductSpec("Vase", image_urls=("javascript:alert(1)",)), "product.image_urls[0]"),
        (ProductSpec("Vase", image_urls=("https://a.example/x.jpg",) * 21), "product.image_urls"),
        (ProductSpec("Vase", attributes={f"k{i}": "v" for i in range(51)}), "product.attributes"),
        (ProductSpec("Vase", attributes={"": "v"}), "product.attributes['']"),
        (ProductSpec("Vase", quantity=0), "product.quantity"),
        (ProductSpec("Vase", quantity=101), "product.quantity"),
    ],
)
async def test_bad_product_input_names_the_field(catalog, spec, field):
    with pytest.raises(InvalidArgument) as caught:
        await catalog(create_product, catalog.SELLER, CreateProduct(spec))
    assert field in fields(caught.value)


async def test_every_bad_field_is_reported_at_once(catalog):
    with pytest.raises(InvalidArgument) as caught:
        await catalog(create_product, catalog.SELLER, CreateProduct(ProductSpec("", quantity=-1)))
    assert fields(caught.value) == {"product.title", "product.quantity"}


async def test_a_seller_updates_their_product(catalog):
    product = await catalog.product()
    catalog.now = catalog.NOW.replace(hour=9)
    updated = await catalog(
        update_product, catalog.SELLER, UpdateProduct(product.id, ProductSpec("Oak table, restored", quantity=2))
    )
    assert (updated.title, updated.quantity, updated.updated_at) == ("Oak table, restored", 2, catalog.now)


async def test_a_seller_cannot_update_another_sellers_product(catalog):
    product = await catalog.product(catalog.OTHER_SELLER)
    with pytest.raises(PermissionDenied) as caught:
        await catalog(update_product, catalog.SELLER, UpdateProduct(product.id, ProductSpec("Mine now")))
    assert caught.value.reason == "NOT_OWNER"


async def test_updating_an_unknown_product_is_not_found(catalog):
    with pytest.raises(NotFound):
        await catalog(update_product, catalog.SELLER, UpdateProduct("nope", ProductSpec("Vase")))


async def test_an_empty_product_id_is_invalid_not_missing(catalog):
    with pytest.raises(InvalidArgument) as caught:
        await catalog(get_product, "")
    assert fields(caught.value) == {"product_id"}


async def test_products_are_listed_page_by_page_with_a_cursor(catalog):
    for index in range(5):
        await catalog.product(title=f"Chair {index}")
    await catalog.product(catalog.OTHER_SELLER, title="Chair of another seller")

    first = await catalog(list_products, ListProducts(page_size=2, seller_id=catalog.SELLER.subject))
    second = await catalog(list_products, ListProducts(2, first.next_page_token, seller_id=catalog.SELLER.subject))
    third = await catalog(list_products, ListProducts(2, second.next_page_token, seller_id=catalog.SELLER.subject))

    titles = [p.title for page in (first, second, third) for p in page.items]
    assert titles == [f"Chair {i}" for i in range(5)]
    assert first.total_size == 5
    assert third.next_page_token == ""


async def test_products_are_searched_by_title_text_ignoring_case(catalog):
    await catalog.product(title="Oak TABLE")
    await catalog.product(title="Pine chair")
    page = await catalog(list_products, ListProducts(query="table"))
    assert [p.title for p in page.items] == ["Oak TABLE"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (ListProducts(page_size=-1), "page.page_size"),
        (ListProducts(page_token="not-a-token"), "page.page_token"),
        (ListProducts(query="q" * 201), "query"),
        (ListProducts(seller_id="has space"), "seller_id"),
    ],
)
async def test_bad_list_input_names_the_field(catalog, query, field):
    with pytest.raises(InvalidArgument) as caught:
        await catalog(list_products, query)
    assert fields(caught.value) == {field}
