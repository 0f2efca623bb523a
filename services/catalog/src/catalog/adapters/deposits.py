"""The DepositChecker port, until the payment service exists.

`catalog.app.ports.DepositChecker` asks "does this bidder hold a verified deposit for this sale?"
for sales whose registration rule is AUTO_VERIFIED_DEPOSIT. The payment service
(gavel.payment.v1.PaymentService) will answer it; this port is where its client plugs in.

Until then `NoDepositsYet` answers False, which grants nothing: the rule only ever approves
automatically, so a False leaves the registration PENDING for a sale admin to decide, exactly as
for a bidder without a deposit. It is not a fake success.
"""

from __future__ import annotations


class NoDepositsYet:
    """No bidder has a verified deposit: registrations under AUTO_VERIFIED_DEPOSIT wait for a sale admin."""

    async def has_verified_deposit(self, bidder_id: str, sale_id: str) -> bool:
        return False
