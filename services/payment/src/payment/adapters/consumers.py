"""The payment service's JetStream consumers: the room's log (lots configured and sold, penalties)
and the catalog's lot outcomes (winners, sales closed), each one durable shared by the replicas."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from gavel.catalog.v1 import resources_pb2
from gavel.events.v1 import catalog_events_pb2, room_events_pb2
from gavel_core.errors import Aborted, GavelError
from gavel_kit import roomlog
from gavel_kit.consumers import DurableConsumer
from gavel_kit.logging import get_logger
from payment.adapters.sql import SqlPaymentUnitOfWork
from payment.app.charges import Payments
from payment.app.common import Env
from payment.app.room_events import Fact, LotConfigured, LotOutcome, LotSold, LotUnsold, PenaltyAssessed, handle
from payment.domain.payments import LotInfo

log = get_logger("payment.consumers")

ROOM_DURABLE = "payment-room-events"
CATALOG_DURABLE = "payment-lot-outcomes"
CATALOG_STREAM = "CATALOG"
OUTCOMES = "gavel.catalog.lot_outcome_recorded.>"


def room_fact(batch: room_events_pb2.LotEventBatch, event: room_events_pb2.RoomEvent) -> Fact | None:
    kind = event.WhichOneof("event")
    if kind == "lot_configured":
        lot = event.lot_configured.lot
        return LotConfigured(
            LotInfo(
                lot_id=lot.id or batch.lot_id,
                sale_id=lot.sale_id,
                seller_id=lot.seller_id,
                product_id=lot.product_id,
                currency=lot.currency,
                buyer_premium_bp=lot.buyer_premium_bp,
                tax_bp=lot.tax_bp,
            )
        )
    if kind == "lot_sold":
        sold = event.lot_sold
        return LotSold(
            batch.lot_id,
            sold.buyer,
            sold.hammer_price.amount_minor,
            sold.hammer_price.currency,
            sold.discount_bp if sold.HasField("discount_bp") else 0,
        )
    if kind == "lot_unsold":
        return LotUnsold(batch.lot_id)
    if kind == "penalty_assessed":
        penalty = event.penalty_assessed
        return PenaltyAssessed(
            batch.lot_id, penalty.bidder, penalty.price.amount_minor, penalty.price.currency, penalty.reason
        )
    return None


def outcome_fact(message: catalog_events_pb2.LotOutcomeRecorded) -> LotOutcome:
    sold = message.outcome == resources_pb2.LOT_OUTCOME_SOLD
    return LotOutcome(message.lot_id, message.sale_id, message.winner_id if sold else "", message.sale_closed)


class FactConsumer:
    """Handles each message's facts in one transaction (retried on conflicts), then sends the
    refunds they created to the provider."""

    def __init__(
        self,
        uow_factory: Callable[[], SqlPaymentUnitOfWork],
        env: Env,
        payments: Payments,
        clock: Callable[[], datetime],
    ) -> None:
        self._uow = uow_factory
        self._env = env
        self._payments = payments
        self._clock = clock

    async def apply(self, facts: Sequence[tuple[str, Fact]]) -> None:
        if not facts:
            return
        for attempt in range(5):
            try:
                async with self._uow() as uow:
                    for event_id, fact in facts:
                        await handle(uow, self._env, event_id, fact, self._clock())
                    await uow.commit()
                    refunds = list(uow.new_refunds)
                break
            except Aborted:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        await self._payments.refunds_now(refunds)

    async def room_messages(self, messages: Sequence[Msg]) -> list[Msg]:
        retry: list[Msg] = []
        for message in messages:
            facts = [
                (f"room:{event_id}", fact)
                for event_id, batch, event in roomlog.events(message.data)
                if (fact := room_fact(batch, event)) is not None
            ]
            if not await self._try(facts, message):
                retry.append(message)
        return retry

    async def catalog_messages(self, messages: Sequence[Msg]) -> list[Msg]:
        retry: list[Msg] = []
        for message in messages:
            event = catalog_events_pb2.LotOutcomeRecorded.FromString(message.data)
            if not await self._try([(f"catalog:{event.event_id}", outcome_fact(event))], message):
                retry.append(message)
        return retry

    async def _try(self, facts: list[tuple[str, Fact]], message: Msg) -> bool:
        try:
            await self.apply(facts)
            return True
        except GavelError as exc:
            log.warning("event not applied yet; redelivering", subject=message.subject, error=exc.message)
        except Exception:
            log.exception("event failed; redelivering", subject=message.subject)
        return False


def consumers(js: JetStreamContext, handler: FactConsumer) -> list[DurableConsumer]:
    return [
        DurableConsumer(js, roomlog.STREAM, ROOM_DURABLE, roomlog.SUBJECTS, handler.room_messages, batch=200),
        DurableConsumer(js, CATALOG_STREAM, CATALOG_DURABLE, OUTCOMES, handler.catalog_messages, batch=100),
    ]
