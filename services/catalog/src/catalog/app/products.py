"""Products: create, update, get, list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from catalog.app.ports import CatalogUnitOfWork, IdGenerator
from catalog.domain.access import MANAGERS, NOT_OWNER, require_owner
from catalog.domain.paging import Page, PageRequest
from catalog.domain.products import Product, ProductSpec
from catalog.domain.queries import PRODUCTS, ProductFilter
from catalog.domain.validation import require_id
from gavel_core.auth import Principal
from gavel_core.errors import NotFound, PermissionDenied


@dataclass(frozen=True, slots=True)
class CreateProduct:
    product: ProductSpec
    seller_id: str = ""  # admins only: whose product it is; empty means the caller


@dataclass(frozen=True, slots=True)
class UpdateProduct:
    product_id: str
    product: ProductSpec


@dataclass(frozen=True, slots=True)
class ListProducts:
    page_size: int = 0
    page_token: str = ""
    seller_id: str | None = None
    query: str | None = None


async def create_product(
    uow: CatalogUnitOfWork, principal: Principal, command: CreateProduct, *, ids: IdGenerator, now: datetime
) -> Product:
    """Create a product.

    - Sellers and admins only.
    - A seller's product is always their own; an admin may create one for any seller.
    - Title 1-200 characters, description up to 10,000, up to 20 https image URLs, up to 50
      attributes, quantity 1-100 (the number of rooms it will be sold in).
    """
    principal.require(*MANAGERS)
    seller_id = command.seller_id or principal.subject
    if seller_id != principal.subject and not principal.is_admin:
        raise PermissionDenied("sellers create products only for themselves", reason=NOT_OWNER)
    require_id("product.seller_id", seller_id)
    product = Product.create(ids.new_id(), seller_id, command.product, now)
    await uow.products.add(product)
    return product


async def update_product(
    uow: CatalogUnitOfWork, principal: Principal, command: UpdateProduct, *, now: datetime
) -> Product:
    """Replace a product's editable fields.

    - Only its seller or an admin (NOT_OWNER).
    - Same limits as creation. Lots already in sales keep the room count they were added with.
    """
    principal.require(*MANAGERS)
    require_id("product.id", command.product_id)
    product = await uow.products.get(command.product_id)
    if product is None:
        raise NotFound("product", command.product_id)
    require_owner(principal, product.seller_id, "product", product.id)
    product.update(command.product, now)
    return product


async def get_product(uow: CatalogUnitOfWork, product_id: str) -> Product:
    """Anyone may read a product."""
    require_id("product_id", product_id)
    product = await uow.products.get(product_id)
    if product is None:
        raise NotFound("product", product_id)
    return product


async def list_products(uow: CatalogUnitOfWork, query: ListProducts) -> Page[Product]:
    """Anyone may list products, by seller and title text, oldest first."""
    page = PageRequest.parse(PRODUCTS, query.page_size, query.page_token)
    product_filter = ProductFilter(seller_id=query.seller_id or None, query=query.query or None)
    product_filter.validate()
    return await uow.products.list(product_filter, page)
