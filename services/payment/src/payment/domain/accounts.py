"""Named accounts of the ledger (see `payment.domain.ledger` for ids and floors)."""

from __future__ import annotations

from payment.domain.ledger import AccountId, tickets_unit


def cash(bidder: str, currency: str) -> AccountId:
    return AccountId("bidder", bidder, "cash", currency)


def deposit(bidder: str, sale: str, currency: str) -> AccountId:
    return AccountId("bidder", bidder, "deposit", currency, sale)


def ticket_funds(bidder: str, currency: str) -> AccountId:
    """Money paid for tickets not spent yet (refundable)."""
    return AccountId("bidder", bidder, "ticket_funds", currency)


def tickets(bidder: str, currency: str) -> AccountId:
    """Unspent bid tickets, counted (unit TICKETS:<currency>)."""
    return AccountId("bidder", bidder, "tickets", tickets_unit(currency))


def ticket_spend(bidder: str, lot: str, currency: str) -> AccountId:
    """Money value of the tickets a bidder spent on a lot whose outcome is not known yet."""
    return AccountId("bidder", bidder, "ticket_spend", currency, lot)


def credit(bidder: str, scope: str, currency: str) -> AccountId:
    """Ticket spend turned into credit: scope = the product it is redeemable on, or `*` for any invoice."""
    return AccountId("bidder", bidder, "credit", currency, scope)


def penalties_owed(bidder: str, currency: str) -> AccountId:
    return AccountId("bidder", bidder, "penalties_owed", currency)


def invoice_due(invoice: str, currency: str) -> AccountId:
    return AccountId("invoice", invoice, "due", currency)


def seller_pending(seller: str, currency: str) -> AccountId:
    """Hammer value of the seller's sold lots whose invoices are not paid yet."""
    return AccountId("seller", seller, "pending", currency)


def seller_settlement(seller: str, currency: str) -> AccountId:
    """What the house owes the seller: paid lots net of commission."""
    return AccountId("seller", seller, "settlement", currency)


def house(kind: str, currency: str) -> AccountId:
    return AccountId("house", "house", kind, currency)


def house_tickets(kind: str, currency: str) -> AccountId:
    return AccountId("house", "house", kind, tickets_unit(currency))


def provider(currency: str) -> AccountId:
    return AccountId("external", "provider", "provider", currency)


def bank(currency: str) -> AccountId:
    return AccountId("external", "bank", "bank", currency)
