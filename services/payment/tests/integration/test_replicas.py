"""Two payment replicas on one database: the room's log is handled once (one shared durable, one
transaction per event, deduplicated by event id), and each event goes out once through the
outbox (one relay at a time)."""

from __future__ import annotations

import uuid

import pytest

from gavel.events.v1 import payment_events_pb2 as pay
from gavel.payment.v1 import payment_service_pb2 as pb

pytestmark = pytest.mark.integration


async def test_two_replicas_invoice_every_sold_lot_once_and_announce_it_once(start_payment):
    first = await start_payment()
    second = await start_payment()
    sale_id = f"sale-{uuid.uuid4().hex[:8]}"
    lots = [f"lot-{uuid.uuid4().hex[:8]}" for _ in range(12)]
    for number, lot_id in enumerate(lots):
        await first.room.configure(lot_id, sale_id=sale_id)
        await first.room.sold(lot_id, f"bidder-{number % 3}", 1_000 + number)
    issued = await first.events.wait_for("invoice.issued", count=len(lots), within_s=30)
    listed = await second.admin.ListInvoices(pb.ListInvoicesRequest(sale_id=sale_id, page={"page_size": 100}))
    assert sorted(i.lot_id for i in listed.invoices) == sorted(lots)
    announced = [pay.InvoiceIssued.FromString(m.data) for m in issued]
    assert sorted(e.lot_id for e in announced) == sorted(lots)
    info = await first.js.stream_info("PAYMENT_EVENTS", subjects_filter="gavel.payment.invoice.issued.>")
    assert info.state.messages == len(lots)  # stored once each
    verified = await second.verify()
    assert not verified.mismatched_accounts
