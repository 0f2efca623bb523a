"""The use cases behind NotifyService's RPCs: preferences, verification, test messages,
unsubscribe, and the lists users and admins read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gavel_core.auth import Principal, Role
from gavel_core.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, PermissionDenied
from notify.app.ports import DeliveryFilter, NotifyUnitOfWork, Page, Verification
from notify.domain.deliveries import Delivery, Status, delivery_id
from notify.domain.kinds import Channel
from notify.domain.preferences import Contact, Preferences, PreferencesInput, apply_input, mask
from notify.domain.tokens import Unsubscribe, code_digest, verify_unsubscribe

CODE_TTL = timedelta(minutes=15)
CODE_RESEND_AFTER = timedelta(seconds=30)
CODE_MAX_ATTEMPTS = 5
PRIVILEGED = (Role.SITE_ADMIN, Role.SERVICE)
MAX_ID = 128


def target_user(principal: Principal, user_id: str) -> str:
    """Whose preferences a call is about: the caller's, or (site admins, services) the named user's."""
    if not user_id or user_id == principal.subject:
        if not principal.subject or (principal.has(Role.SERVICE) and not user_id):
            raise InvalidArgument([FieldViolation("user_id", "a service must name the user")])
        return principal.subject
    if len(user_id) > MAX_ID or not user_id.isprintable():
        raise InvalidArgument([FieldViolation("user_id", f"must be an id of at most {MAX_ID} characters")])
    if not principal.has(*PRIVILEGED):
        raise PermissionDenied("only site admins and services act on another user's preferences")
    return user_id


async def get_preferences(uow: NotifyUnitOfWork, principal: Principal, user_id: str) -> Preferences:
    user = target_user(principal, user_id)
    return await uow.get_preferences(user) or Preferences(user)


async def set_preferences(
    uow: NotifyUnitOfWork, principal: Principal, user_id: str, wanted: PreferencesInput, now: datetime
) -> Preferences:
    user = target_user(principal, user_id)
    current = await uow.get_preferences(user) or Preferences(user)
    updated = apply_input(current, wanted, may_verify=principal.has(*PRIVILEGED), now=now)
    for channel in Channel:
        if updated.contact(channel).address != current.contact(channel).address:
            await uow.delete_verification(user, channel)
    await uow.save_preferences(updated)
    return updated


@dataclass(frozen=True, slots=True)
class CodeSent:
    sent_to: str
    expires_at: datetime


async def start_verification(
    uow: NotifyUnitOfWork, principal: Principal, channel: Channel, request_id: str, code: str, key: bytes, now: datetime
) -> CodeSent:
    """Send a one-time code to the caller's address on `channel` (at most one every 30 s)."""
    user = target_user(principal, "")
    preferences = await uow.get_preferences(user)
    address = preferences.contact(channel).address if preferences else ""
    if not address:
        raise FailedPrecondition("NO_ADDRESS", f"set a {channel.value} address first", {"channel": channel.value})
    previous = await uow.get_verification(user, channel)
    if (
        previous is not None
        and previous.address == address
        and previous.expires_at - CODE_TTL + CODE_RESEND_AFTER > now
    ):
        raise FailedPrecondition(
            "CODE_RECENTLY_SENT",
            "a code was sent moments ago; wait before asking again",
            {"retry_after_s": str(int(CODE_RESEND_AFTER.total_seconds()))},
        )
    expires = now + CODE_TTL
    await uow.save_verification(
        Verification(user, channel, address, code_digest(key, user, channel, address, code), expires)
    )
    dedupe = f"verify:{user}:{channel.value}:{request_id}"
    await uow.add_delivery(
        Delivery(
            id=delivery_id(dedupe),
            dedupe_key=dedupe,
            user_id=user,
            kind="verification",
            channel=channel,
            params={"code": code, "expires_at": expires.isoformat()},
            created_at=now,
            due_at=now,
            occurred_at=now,
            address=address,
        )
    )
    return CodeSent(mask(address), expires)


class WrongCode(FailedPrecondition):
    def __init__(self, attempts_left: int) -> None:
        super().__init__("WRONG_CODE", "the code does not match", {"attempts_left": str(attempts_left)})


async def confirm_verification(
    uow: NotifyUnitOfWork, principal: Principal, channel: Channel, code: str, key: bytes, now: datetime
) -> Preferences:
    """Mark the address verified if `code` is the one sent to it; a wrong code uses up one of five
    tries (the caller commits even when this raises WrongCode)."""
    user = target_user(principal, "")
    if not (len(code) == 6 and code.isdigit()):
        raise InvalidArgument([FieldViolation("code", "must be the 6 digits sent")])
    preferences = await uow.get_preferences(user)
    pending = await uow.get_verification(user, channel)
    if preferences is None or pending is None or pending.address != preferences.contact(channel).address:
        raise FailedPrecondition("NO_CODE_SENT", "ask for a code first (StartVerification)", {"channel": channel.value})
    if pending.expires_at <= now or pending.attempts >= CODE_MAX_ATTEMPTS:
        await uow.delete_verification(user, channel)
        raise FailedPrecondition("CODE_EXPIRED", "the code expired; ask for a new one", {"channel": channel.value})
    if code_digest(key, user, channel, pending.address, code) != pending.code_digest:
        attempts = pending.attempts + 1
        await uow.save_verification(
            Verification(user, channel, pending.address, pending.code_digest, pending.expires_at, attempts)
        )
        raise WrongCode(CODE_MAX_ATTEMPTS - attempts)
    contact = Contact(pending.address, now)
    if channel is Channel.EMAIL:
        preferences.email = contact
    else:
        preferences.phone = contact
    await uow.save_preferences(preferences)
    await uow.delete_verification(user, channel)
    return preferences


async def send_test(
    uow: NotifyUnitOfWork, principal: Principal, channel: Channel, request_id: str, now: datetime
) -> str:
    user = target_user(principal, "")
    preferences = await uow.get_preferences(user)
    if preferences is None or not preferences.contact(channel).verified:
        raise FailedPrecondition(
            "NOT_VERIFIED", f"verify your {channel.value} address first", {"channel": channel.value}
        )
    dedupe = f"test:{user}:{request_id}:{channel.value}"
    identifier = delivery_id(dedupe)
    await uow.add_delivery(
        Delivery(identifier, dedupe, user, "test", channel, {}, created_at=now, due_at=now, occurred_at=now)
    )
    return identifier


async def unsubscribe(uow: NotifyUnitOfWork, token: str, key: bytes, now: datetime) -> Unsubscribe:
    what = verify_unsubscribe(key, token)
    preferences = await uow.get_preferences(what.user_id)
    if preferences is not None:
        preferences.opt_out(what.kind, what.channel)
        preferences.updated_at = now
        await uow.save_preferences(preferences)
    return what


async def list_mine(uow: NotifyUnitOfWork, principal: Principal, page_size: int, page_token: str) -> Page:
    return await uow.list_deliveries(DeliveryFilter(user_id=target_user(principal, "")), page_size, page_token)


async def list_deliveries(uow: NotifyUnitOfWork, filter: DeliveryFilter, page_size: int, page_token: str) -> Page:
    return await uow.list_deliveries(filter, page_size, page_token)


async def retry_dead_letter(uow: NotifyUnitOfWork, identifier: str, now: datetime) -> Delivery:
    delivery = await uow.get_delivery(identifier)
    if delivery is None:
        raise NotFound("delivery", identifier)
    if delivery.status is not Status.DEAD:
        raise FailedPrecondition(
            "INVALID_STATE", "only dead letters are retried", {"current_state": delivery.status.value}
        )
    delivery.status, delivery.attempts, delivery.due_at, delivery.reason = Status.PENDING, 0, now, "retried"
    await uow.save_delivery(delivery)
    await uow.resolve_dead_letter(identifier, now)
    return delivery
