"""What notify's use cases need from the outside world (implemented in notify.adapters)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import TracebackType
from typing import Any, Protocol, Self

from notify.domain.deliveries import Delivery, LotFacts, Recent, Status
from notify.domain.digests import DigestRow, View
from notify.domain.kinds import Channel
from notify.domain.preferences import Preferences


@dataclass(frozen=True, slots=True)
class LotInfo:
    lot_id: str
    group_id: str = ""
    sale_id: str = ""
    position: int = -1
    room_index: int = 0
    currency: str = ""
    increments: tuple[tuple[int, int], ...] = ()
    estimated_start: datetime | None = None
    started_at: datetime | None = None
    closed_at: datetime | None = None

    @property
    def facts(self) -> LotFacts:
        return LotFacts(self.lot_id, self.started_at, self.closed_at)


@dataclass(frozen=True, slots=True)
class SaleInfo:
    sale_id: str
    title: str
    time_zone: str


@dataclass(frozen=True, slots=True)
class ReservationInfo:
    reservation_id: str
    user_id: str
    group_id: str
    sale_id: str
    estimated_start: datetime | None
    active: bool = True


@dataclass(frozen=True, slots=True)
class Verification:
    user_id: str
    channel: Channel
    address: str
    code_digest: str
    expires_at: datetime
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class Page:
    items: Sequence[Any]
    next_token: str
    total: int


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    user_id: str = ""
    statuses: tuple[Status, ...] = ()


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    delivery: Delivery
    dead_at: datetime
    error: str


class NotifyUnitOfWork(Protocol):
    """One transaction over notify's tables; nothing is kept unless `commit` is called."""

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    async def commit(self) -> None: ...

    # preferences and verification
    async def get_preferences(self, user_id: str) -> Preferences | None: ...
    async def save_preferences(self, preferences: Preferences) -> None: ...
    async def users_with_digests(self, after_user_id: str, limit: int) -> list[Preferences]: ...
    async def get_verification(self, user_id: str, channel: Channel) -> Verification | None: ...
    async def save_verification(self, verification: Verification) -> None: ...
    async def delete_verification(self, user_id: str, channel: Channel) -> None: ...

    # what notify knows of lots, sales and reservations
    async def get_lot(self, lot_id: str) -> LotInfo | None: ...
    async def save_lot(self, lot: LotInfo) -> None: ...
    async def lots_of_sale(self, sale_id: str) -> list[LotInfo]: ...
    async def get_sale(self, sale_id: str) -> SaleInfo | None: ...
    async def save_sale(self, sale: SaleInfo) -> None: ...
    async def get_reservation(self, reservation_id: str) -> ReservationInfo | None: ...
    async def save_reservation(self, reservation: ReservationInfo) -> None: ...
    async def active_reservations(self, *, group_id: str = "", sale_id: str = "") -> list[ReservationInfo]: ...
    async def add_bidder(self, lot_id: str, user_id: str) -> None: ...
    async def bidders(self, lot_id: str) -> list[str]: ...

    # deliveries
    async def add_delivery(self, delivery: Delivery) -> bool:
        """Insert unless one with the same dedupe key exists; True if inserted."""
        ...

    async def get_delivery(self, delivery_id: str) -> Delivery | None: ...
    async def claim_due(
        self, now: datetime, owner: str, lease_until: datetime, limit: int
    ) -> list[tuple[str, str, Channel]]:
        """Lease up to `limit` open deliveries due by `now` that nobody else holds: (id, user, channel)."""
        ...

    async def release(self, delivery_id: str, owner: str) -> None: ...
    async def awaiting_receipts(self, since: datetime, limit: int) -> list[Delivery]: ...
    async def next_due(self) -> datetime | None: ...
    async def save_delivery(self, delivery: Delivery) -> None: ...
    async def open_deliveries(self, *, kind: str, group_id: str = "", key_prefix: str = "") -> list[Delivery]: ...
    async def folded_into(self, summary_id: str) -> list[Delivery]: ...
    async def recent(self, user_id: str, channel: Channel, kind: str, now: datetime, window_s: float) -> Recent: ...
    async def list_deliveries(self, filter: DeliveryFilter, page_size: int, page_token: str) -> Page: ...
    async def add_dead_letter(self, delivery: Delivery, error: str, now: datetime) -> None: ...
    async def list_dead_letters(self, page_size: int, page_token: str) -> Page: ...
    async def resolve_dead_letter(self, delivery_id: str, now: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str
    sms: str
    segments: int = 0


@dataclass(frozen=True, slots=True)
class Links:
    unsubscribe: str
    unsubscribe_all: str
    preferences: str


class Renderer(Protocol):
    def render(
        self, kind: str, locale: str, time_zone: str, params: dict[str, Any], links: Links, channel: Channel
    ) -> Rendered: ...


@dataclass(frozen=True, slots=True)
class Sent:
    provider_id: str = ""
    segments: int = 0


class SendFailed(Exception):
    """A channel could not hand the message over; `permanent` ones are not tried again."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Outgoing:
    delivery_id: str
    address: str
    rendered: Rendered
    links: Links
    headers: dict[str, str] = field(default_factory=dict)


class ChannelSender(Protocol):
    async def send(self, message: Outgoing) -> Sent: ...


class ReceiptSource(Protocol):
    async def receipt(self, provider_id: str) -> str:
        """queued, delivered or failed (the SMS provider's delivery receipt)."""
        ...


class ScheduleSource(Protocol):
    async def rows(self, view: View, day: date) -> list[DigestRow]: ...
