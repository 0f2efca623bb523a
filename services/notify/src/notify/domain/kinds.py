"""The kinds of notice notify sends: what each defaults to, when it goes stale, how it is limited.

Adding a kind is one entry here plus its templates (`notify/templates/<locale>/<kind>.jinja`) and,
if an event causes it, one entry in the event table (`notify.adapters.events`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class Staleness(StrEnum):
    """When a notice that has not gone out yet is no longer worth sending."""

    NEVER = "never"
    LOT_CLOSED = "lot_closed"  # outbid: the lot is over, the new minimum means nothing
    LOT_STARTED = "lot_started"  # "starting soon" / "next": it has started
    DEADLINE = "deadline"  # params["deadline"] has passed (confirmation, closing soon)


@dataclass(frozen=True, slots=True)
class KindSpec:
    name: str
    email: bool  # on by default on e-mail
    sms: bool  # on by default on SMS
    staleness: Staleness = Staleness.NEVER
    max_age: timedelta = timedelta(days=2)  # older events (a history replayed to a new deployment) are dropped
    foldable: bool = False  # over the per-user rate limit it is folded into a summary instead of sent
    quiet_exempt: bool = False  # the user asked for it just now (codes, tests): quiet hours do not apply
    needs_verified: bool = True  # only to a verified contact point
    channels: tuple[Channel, ...] = (Channel.EMAIL, Channel.SMS)  # channels it may use at all
    user_choice: bool = True  # listed in preferences (a user may opt in or out)
    summary_of: str = ""  # a summary kind: the kind it folds


def _kinds(*specs: KindSpec) -> dict[str, KindSpec]:
    return {spec.name: spec for spec in specs}


SHORT = timedelta(hours=1)
KINDS = _kinds(
    KindSpec("outbid", email=True, sms=True, staleness=Staleness.LOT_CLOSED, max_age=SHORT, foldable=True),
    KindSpec(
        "outbid_summary", email=True, sms=True, staleness=Staleness.LOT_CLOSED, user_choice=False, summary_of="outbid"
    ),
    KindSpec("reservation_confirmed", email=True, sms=False, staleness=Staleness.LOT_STARTED),
    KindSpec("lot_starting_soon", email=True, sms=True, staleness=Staleness.LOT_STARTED),
    KindSpec("lot_next", email=False, sms=True, staleness=Staleness.LOT_STARTED, max_age=SHORT),
    KindSpec("provisional_win", email=True, sms=True, staleness=Staleness.DEADLINE),
    KindSpec("won", email=True, sms=False),
    KindSpec("penalty", email=True, sms=False),
    KindSpec("banned", email=True, sms=False),
    KindSpec("unbanned", email=True, sms=False),
    KindSpec("registration_approved", email=True, sms=False),
    KindSpec("registration_rejected", email=True, sms=False),
    KindSpec("payment_due", email=True, sms=False),
    KindSpec("payment_overdue", email=True, sms=True),
    KindSpec("payment_failed", email=True, sms=False),
    KindSpec("payment_received", email=True, sms=False),
    KindSpec("penalty_reversed", email=True, sms=False),
    KindSpec("refund_completed", email=True, sms=False),
    KindSpec("closing_soon", email=False, sms=True, staleness=Staleness.DEADLINE, max_age=SHORT),
    # Fed by the tender book's events once it exists (one entry in notify.adapters.events).
    KindSpec("tender_closing_soon", email=True, sms=True, staleness=Staleness.DEADLINE),
    KindSpec("sale_cancelled", email=True, sms=False),
    KindSpec("schedule_digest", email=True, sms=False, channels=(Channel.EMAIL,)),
    KindSpec(
        "verification",
        email=True,
        sms=True,
        quiet_exempt=True,
        needs_verified=False,
        user_choice=False,
        max_age=timedelta(minutes=15),
    ),
    KindSpec("test", email=True, sms=True, quiet_exempt=True, user_choice=False),
)

USER_KINDS = tuple(name for name, spec in KINDS.items() if spec.user_choice)


def spec(kind: str) -> KindSpec:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown notice kind {kind!r}") from None
