"""The invoice as a document: HTML (escaped, self-contained) and PDF rendered from it by WeasyPrint."""

from __future__ import annotations

import asyncio
from html import escape

from gavel_core.money import Money
from payment.domain.invoices import Invoice


def _money(amount: int, currency: str) -> str:
    return escape(str(Money(amount, currency)))


def invoice_html(invoice: Invoice, balance_due: int) -> str:
    a, c = invoice.amounts, invoice.currency
    rows = [
        ("Hammer price", a.hammer),
        ("Paddle discount", -a.discount),
        ("Buyer's premium", a.premium),
        ("Tax", a.tax),
        ("Total", a.gross),
        ("Deposit applied", -a.deposit_applied),
        ("Ticket credit applied", -a.credit_applied),
        ("Balance due", balance_due),
    ]
    lines = "\n".join(
        f'<tr class="{"total" if label in ("Total", "Balance due") else ""}"><td>{escape(label)}</td>'
        f'<td class="amount">{_money(amount, c)}</td></tr>'
        for label, amount in rows
        if amount or label in ("Hammer price", "Total", "Balance due")
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice {escape(invoice.number)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
h1 {{ font-size: 1.6em; margin-bottom: 0.2em; }}
table {{ border-collapse: collapse; width: 100%; max-width: 36em; margin-top: 1.5em; }}
td {{ padding: 0.35em 0.5em; border-bottom: 1px solid #ddd; }}
td.amount {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.total td {{ font-weight: bold; }}
.meta {{ color: #555; }}
</style></head>
<body>
<h1>Invoice {escape(invoice.number)}</h1>
<p class="meta">Status: {escape(invoice.status.value)} &middot; issued {invoice.issued_at:%Y-%m-%d}
&middot; due {invoice.due_at:%Y-%m-%d}</p>
<p>Buyer: {escape(invoice.bidder_id)}<br>Sale: {escape(invoice.sale_id)}<br>Lot: {escape(invoice.lot_id)}</p>
<table>
{lines}
</table>
</body></html>
"""


async def invoice_pdf(html: str) -> bytes:
    """Rendered in a worker thread: layout takes tens of milliseconds of CPU."""

    def render() -> bytes:
        import weasyprint  # imported on first use: it loads Pango

        pdf: bytes = weasyprint.HTML(string=html).write_pdf()
        return pdf

    return await asyncio.to_thread(render)
