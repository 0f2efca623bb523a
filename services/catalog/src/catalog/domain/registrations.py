"""Registrations: a bidder asks to bid in a sale; the sale's rule or a sale admin decides.

Rules are deliberately few and explicit (see ApprovalRule). An automatic rule only ever
approves: when its condition does not hold, the registration waits for a sale admin instead of
being rejected, so no bidder is refused by a missing flag alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from catalog.domain.sales import ApprovalRule, RegistrationPolicy
from catalog.domain.states import invalid_state
from catalog.domain.validation import MAX_REASON, check_text
from gavel_core.errors import Violations


class RegistrationStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


def automatic_status(policy: RegistrationPolicy, bidder_id: str, deposit_verified: bool) -> RegistrationStatus:
    """What the sale's rule decides on its own: APPROVED, or PENDING for a sale admin."""
    approved = (
        policy.rule in (ApprovalRule.AUTO_ALL, ApprovalRule.OPEN)
        or (policy.rule is ApprovalRule.AUTO_VERIFIED_DEPOSIT and deposit_verified)
        or (policy.rule is ApprovalRule.AUTO_ALLOW_LIST and bidder_id in policy.allow_list)
    )
    return RegistrationStatus.APPROVED if approved else RegistrationStatus.PENDING


@dataclass(slots=True)
class Registration:
    id: str
    sale_id: str
    bidder_id: str
    status: RegistrationStatus
    created_at: datetime
    reason: str = ""
    decided_by: str = ""  # the sale admin; empty when the sale's rule decided
    decided_at: datetime | None = None

    @classmethod
    def submit(
        cls,
        registration_id: str,
        sale_id: str,
        policy: RegistrationPolicy,
        bidder_id: str,
        deposit_verified: bool,
        now: datetime,
    ) -> Registration:
        status = automatic_status(policy, bidder_id, deposit_verified)
        return cls(
            id=registration_id,
            sale_id=sale_id,
            bidder_id=bidder_id,
            status=status,
            created_at=now,
            decided_at=now if status is RegistrationStatus.APPROVED else None,
        )

    @property
    def is_approved(self) -> bool:
        return self.status is RegistrationStatus.APPROVED

    def decide(self, approve: bool, reason: str, admin_id: str, now: datetime) -> None:
        """A sale admin approves or rejects; a later decision may reverse an earlier one.

        Rejecting needs a reason (the bidder is told it); deciding what already stands is refused.
        """
        violations = Violations()
        check_text(violations, "reason", reason, max_length=MAX_REASON, required=not approve, multiline=True)
        violations.raise_if_any()
        target = RegistrationStatus.APPROVED if approve else RegistrationStatus.REJECTED
        if self.status is target:
            raise invalid_state("registration", self.id, self.status, "approve" if approve else "reject")
        self.status = target
        self.reason = reason.strip()
        self.decided_by = admin_id
        self.decided_at = now
