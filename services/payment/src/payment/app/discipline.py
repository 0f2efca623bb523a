"""Penalties, strikes and bans (payment.domain.discipline for the rules)."""

from __future__ import annotations

from datetime import datetime

from gavel_core.errors import FailedPrecondition, NotFound
from payment.app.common import Env, announce_buying_power, terms_for
from payment.app.deposits import release_deposits
from payment.app.ports import PaymentUnitOfWork
from payment.domain import accounts
from payment.domain.discipline import Penalty, PenaltyReason, reaches_ban, split_fee, strikes
from payment.domain.events import BidderBanned, BidderUnbanned, PenaltyCharged, PenaltyReversed
from payment.domain.ledger import transfer
from payment.domain.payments import Ban


async def strike_count(uow: PaymentUnitOfWork, env: Env, bidder_id: str, now: datetime) -> int:
    return strikes(await uow.store.penalties_of(bidder_id), now, env.policy)


async def charge_penalty(
    uow: PaymentUnitOfWork,
    env: Env,
    *,
    bidder_id: str,
    sale_id: str,
    lot_id: str,
    price_minor: int,
    currency: str,
    reason: PenaltyReason,
    cause: str,
    now: datetime,
) -> Penalty | None:
    """The sale's penalty fee (from the deposit held for the sale, the rest owed) and a strike;
    a ban when the strikes reach the policy's count. Once per cause."""
    lot = await uow.store.lot(lot_id)
    try:
        terms = await terms_for(uow, sale_id, lot)
    except NotFound:
        terms = None
    fee = terms.penalty_fee(price_minor) if terms is not None and terms.currency == currency else 0
    deposit = accounts.deposit(bidder_id, sale_id, currency)
    from_deposit, owed = split_fee(fee, await uow.ledger.balance(deposit))
    penalty = Penalty(
        id=env.ids.new_id(),
        bidder_id=bidder_id,
        sale_id=sale_id,
        lot_id=lot_id,
        currency=currency,
        amount=fee,
        from_deposit=from_deposit,
        reason=reason,
        cause=cause,
        created_at=now,
    )
    if not await uow.store.add_penalty(penalty):
        return None
    if fee:
        await uow.ledger.post(
            transfer(
                f"penalty:{penalty.id}",
                "penalty",
                cause,
                [
                    (deposit, accounts.house("penalties", currency), from_deposit),
                    (accounts.penalties_owed(bidder_id, currency), accounts.house("penalties", currency), owed),
                ],
                memo=reason.value,
            ),
            now,
        )
    if from_deposit:
        record = await uow.store.deposit(bidder_id, sale_id)
        if record is not None:
            record.forfeited += from_deposit
            await uow.store.save_deposit(record)
        await announce_buying_power(uow, env, bidder_id, sale_id, now)
    count = await strike_count(uow, env, bidder_id, now)
    await uow.collect(
        PenaltyCharged(
            event_id=env.ids.new_id(),
            occurred_at=now,
            penalty_id=penalty.id,
            bidder_id=bidder_id,
            sale_id=sale_id,
            lot_id=lot_id,
            currency=currency,
            amount_minor=fee,
            reason=reason.value,
            strikes=count,
            from_deposit_minor=from_deposit,
        )
    )
    if reaches_ban(count, env.policy):
        existing = await uow.store.ban(bidder_id, "")
        if existing is None or not existing.active:
            await ban(uow, env, bidder_id, "", f"{count} strikes within the window", "strikes", "payment", now)
    return penalty


async def reverse_penalty(
    uow: PaymentUnitOfWork, env: Env, penalty_id: str, actor: str, reason: str, now: datetime
) -> tuple[Penalty, int]:
    penalty = await uow.store.penalty(penalty_id, for_update=True)
    if penalty is None:
        raise NotFound("penalty", penalty_id)
    if not penalty.counts:
        raise FailedPrecondition(
            "INVALID_STATE",
            "the penalty was reversed already",
            {"resource": "penalty", "resource_id": penalty_id, "current_state": "reversed"},
        )
    if penalty.amount:
        deposit = accounts.deposit(penalty.bidder_id, penalty.sale_id, penalty.currency)
        house = accounts.house("penalties", penalty.currency)
        await uow.ledger.post(
            transfer(
                f"penalty:{penalty.id}:reversal",
                "penalty_reversed",
                f"admin:{actor}",
                [
                    (house, deposit, penalty.from_deposit),
                    (house, accounts.penalties_owed(penalty.bidder_id, penalty.currency), penalty.owed),
                ],
                memo=reason,
            ),
            now,
        )
    penalty.reversed_at = now
    penalty.reversed_by = actor
    penalty.reversal_reason = reason
    await uow.store.save_penalty(penalty)
    if penalty.from_deposit:
        record = await uow.store.deposit(penalty.bidder_id, penalty.sale_id)
        if record is not None:
            record.forfeited -= penalty.from_deposit
            was_released = record.released
            record.released = False
            await uow.store.save_deposit(record)
            if was_released:  # the sale is over: what came back is refunded too
                await release_deposits(uow, env, penalty.sale_id, now, bidder_id=penalty.bidder_id)
            else:
                await announce_buying_power(uow, env, penalty.bidder_id, penalty.sale_id, now)
    count = await strike_count(uow, env, penalty.bidder_id, now)
    await uow.collect(
        PenaltyReversed(
            event_id=env.ids.new_id(),
            occurred_at=now,
            penalty_id=penalty.id,
            bidder_id=penalty.bidder_id,
            reason=reason,
            strikes=count,
        )
    )
    return penalty, count


async def ban(
    uow: PaymentUnitOfWork, env: Env, bidder_id: str, sale_id: str, reason: str, source: str, actor: str, now: datetime
) -> Ban:
    existing = await uow.store.ban(bidder_id, sale_id)
    if existing is not None and existing.active:
        return existing
    record = Ban(bidder_id, sale_id, reason, source, True, now, actor)
    await uow.store.save_ban(record)
    await uow.collect(
        BidderBanned(event_id=env.ids.new_id(), occurred_at=now, bidder_id=bidder_id, sale_id=sale_id, reason=reason)
    )
    return record


async def lift_ban(
    uow: PaymentUnitOfWork, env: Env, bidder_id: str, sale_id: str, reason: str, actor: str, now: datetime
) -> Ban:
    record = await uow.store.ban(bidder_id, sale_id)
    if record is None or not record.active:
        raise FailedPrecondition(
            "INVALID_STATE",
            "the bidder is not banned" + (f" from sale {sale_id}" if sale_id else ""),
            {"resource": "ban", "resource_id": f"{bidder_id}:{sale_id}", "current_state": "lifted"},
        )
    record.active = False
    record.lifted_at = now
    record.lifted_by = actor
    record.lift_reason = reason
    await uow.store.save_ban(record)
    await uow.collect(BidderUnbanned(event_id=env.ids.new_id(), occurred_at=now, bidder_id=bidder_id, sale_id=sale_id))
    return record
