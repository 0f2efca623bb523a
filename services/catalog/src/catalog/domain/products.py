"""Products: what a seller offers, independent of any sale."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from catalog.domain.validation import (
    MAX_QUANTITY,
    check_attributes,
    check_image_urls,
    check_title_and_description,
)
from gavel_core.errors import Violations


@dataclass(frozen=True, slots=True)
class ProductSpec:
    """The editable fields of a product, as a create or update request gives them."""

    title: str
    description: str = ""
    image_urls: tuple[str, ...] = ()
    attributes: dict[str, str] = field(default_factory=dict)
    quantity: int = 1

    def validate(self, prefix: str = "product") -> None:
        violations = Violations()
        check_title_and_description(violations, prefix, self.title, self.description)
        check_image_urls(violations, f"{prefix}.image_urls", self.image_urls)
        check_attributes(violations, f"{prefix}.attributes", self.attributes)
        violations.require(
            1 <= self.quantity <= MAX_QUANTITY, f"{prefix}.quantity", f"must be between 1 and {MAX_QUANTITY}"
        )
        violations.raise_if_any()


@dataclass(slots=True)
class Product:
    id: str
    seller_id: str
    title: str
    description: str
    image_urls: tuple[str, ...]
    attributes: dict[str, str]
    quantity: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def create(cls, product_id: str, seller_id: str, spec: ProductSpec, now: datetime) -> Product:
        spec.validate()
        return cls(
            id=product_id,
            seller_id=seller_id,
            title=spec.title.strip(),
            description=spec.description,
            image_urls=tuple(spec.image_urls),
            attributes=dict(spec.attributes),
            quantity=spec.quantity,
            created_at=now,
            updated_at=now,
        )

    def update(self, spec: ProductSpec, now: datetime) -> None:
        """Replace every editable field. Lots already added keep the room count they were given."""
        spec.validate()
        self.title = spec.title.strip()
        self.description = spec.description
        self.image_urls = tuple(spec.image_urls)
        self.attributes = dict(spec.attributes)
        self.quantity = spec.quantity
        self.updated_at = now
