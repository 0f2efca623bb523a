"""Between gavel.payment.v1 messages and the payment domain."""

from __future__ import annotations

from gavel.common.v1.money_pb2 import Money
from gavel.payment.v1 import payment_service_pb2 as pb
from gavel_core.errors import FieldViolation, InvalidArgument
from payment.adapters.events import money, timestamp
from payment.domain.discipline import Penalty
from payment.domain.invoices import Invoice, InvoiceStatus
from payment.domain.payments import Ban, Charge, ChargeStatus, DepositRecord, Purpose
from payment.domain.terms import Band, CreditScope, SaleTerms, TaxBase
from payment.domain.tickets import TicketPack

DEFAULT_PAGE = 50
MAX_PAGE = 500

INVOICE_STATUS = {
    InvoiceStatus.ISSUED: pb.INVOICE_STATUS_ISSUED,
    InvoiceStatus.OVERDUE: pb.INVOICE_STATUS_OVERDUE,
    InvoiceStatus.PAID: pb.INVOICE_STATUS_PAID,
}
INVOICE_STATUS_OF = {v: k for k, v in INVOICE_STATUS.items()}
CHARGE_STATUS = {
    ChargeStatus.PENDING: pb.PAYMENT_STATUS_PENDING,
    ChargeStatus.REQUIRES_ACTION: pb.PAYMENT_STATUS_REQUIRES_ACTION,
    ChargeStatus.AUTHORIZED: pb.PAYMENT_STATUS_AUTHORIZED,
    ChargeStatus.CAPTURED: pb.PAYMENT_STATUS_CAPTURED,
    ChargeStatus.FAILED: pb.PAYMENT_STATUS_FAILED,
    ChargeStatus.VOIDED: pb.PAYMENT_STATUS_VOIDED,
}
PURPOSE = {
    Purpose.INVOICE: pb.PAYMENT_PURPOSE_INVOICE,
    Purpose.DEPOSIT: pb.PAYMENT_PURPOSE_DEPOSIT,
    Purpose.TICKETS: pb.PAYMENT_PURPOSE_TICKETS,
}
TAX_BASE = {TaxBase.PREMIUM: pb.TAX_BASE_PREMIUM, TaxBase.WHOLE: pb.TAX_BASE_WHOLE}
CREDIT_SCOPE = {CreditScope.PRODUCT: pb.CREDIT_SCOPE_PRODUCT, CreditScope.ANY: pb.CREDIT_SCOPE_ANY}


def page_size(page: object) -> int:
    size = int(getattr(page, "page_size", 0))
    if size < 0:
        raise InvalidArgument([FieldViolation("page.page_size", "must not be negative")])
    return min(size or DEFAULT_PAGE, MAX_PAGE)


def amount_of(value: Money, currency: str, field: str) -> int:
    if value.currency and value.currency != currency:
        raise InvalidArgument([FieldViolation(f"{field}.currency", f"must be {currency}")])
    if value.amount_minor < 0 or value.amount_minor > 10**15:
        raise InvalidArgument([FieldViolation(f"{field}.amount_minor", "0 to 10^15 minor units")])
    return int(value.amount_minor)


def terms_of(message: pb.SaleTerms) -> SaleTerms:
    currency = message.currency
    return SaleTerms(
        sale_id=message.sale_id,
        currency=currency,
        premium_bands=tuple(Band(b.from_minor, b.bp) for b in message.premium_bands) or (Band(0, 0),),
        tax_bp=message.tax_bp,
        tax_base=TaxBase.PREMIUM if message.tax_base == pb.TAX_BASE_PREMIUM else TaxBase.WHOLE,
        commission_bp=message.commission_bp,
        deposit_minor=amount_of(message.deposit, currency, "terms.deposit"),
        buying_power_bp=message.buying_power_bp or 10_000,
        penalty_fee_minor=amount_of(message.penalty_fee, currency, "terms.penalty_fee"),
        penalty_fee_bp=message.penalty_fee_bp,
        payment_due_days=message.payment_due_days or 7,
        credit_scope=CreditScope.ANY if message.credit_scope == pb.CREDIT_SCOPE_ANY else CreditScope.PRODUCT,
    ).validate()


def terms_message(terms: SaleTerms) -> pb.SaleTerms:
    c = terms.currency
    return pb.SaleTerms(
        sale_id=terms.sale_id,
        currency=c,
        premium_bands=[pb.PremiumBand(from_minor=b.from_minor, bp=b.bp) for b in terms.premium_bands],
        tax_bp=terms.tax_bp,
        tax_base=TAX_BASE[terms.tax_base],
        commission_bp=terms.commission_bp,
        deposit=money(terms.deposit_minor, c),
        buying_power_bp=terms.buying_power_bp,
        penalty_fee=money(terms.penalty_fee_minor, c),
        penalty_fee_bp=terms.penalty_fee_bp,
        payment_due_days=terms.payment_due_days,
        credit_scope=CREDIT_SCOPE[terms.credit_scope],
        frozen=terms.frozen,
    )


def invoice_message(invoice: Invoice, balance_due: int) -> pb.Invoice:
    a, c = invoice.amounts, invoice.currency
    return pb.Invoice(
        id=invoice.id,
        number=invoice.number,
        bidder_id=invoice.bidder_id,
        seller_id=invoice.seller_id,
        sale_id=invoice.sale_id,
        lot_id=invoice.lot_id,
        product_id=invoice.product_id,
        hammer=money(a.hammer, c),
        discount=money(a.discount, c),
        premium=money(a.premium, c),
        tax=money(a.tax, c),
        total=money(a.gross, c),
        deposit_applied=money(a.deposit_applied, c),
        credit_applied=money(a.credit_applied, c),
        balance_due=money(balance_due, c),
        status=INVOICE_STATUS[invoice.status],
        issued_at=timestamp(invoice.issued_at),
        due_at=timestamp(invoice.due_at),
        paid_at=timestamp(invoice.paid_at),
        paid_by=invoice.paid_by,
    )


def payment_message(charge: Charge) -> pb.Payment:
    target = charge.detail.get("sale_id", charge.target_id) if charge.purpose is Purpose.DEPOSIT else charge.target_id
    return pb.Payment(
        id=charge.id,
        purpose=PURPOSE[charge.purpose],
        target_id=target,
        bidder_id=charge.bidder_id,
        amount=money(charge.amount, charge.currency),
        status=CHARGE_STATUS[charge.status],
        action_url=charge.action_url,
        failure_reason=charge.failure_reason,
        created_at=timestamp(charge.created_at),
        updated_at=timestamp(charge.updated_at),
        refunded=money(charge.refunded, charge.currency),
    )


def deposit_message(record: DepositRecord, held: int, power: int) -> pb.Deposit:
    c = record.currency
    return pb.Deposit(
        bidder_id=record.bidder_id,
        sale_id=record.sale_id,
        held=money(held, c),
        buying_power=money(power, c),
        applied=money(record.applied, c),
        forfeited=money(record.forfeited, c),
        refunded=money(record.refunded, c),
        released=record.released,
    )


def penalty_message(penalty: Penalty) -> pb.Penalty:
    c = penalty.currency
    return pb.Penalty(
        id=penalty.id,
        bidder_id=penalty.bidder_id,
        sale_id=penalty.sale_id,
        lot_id=penalty.lot_id,
        amount=money(penalty.amount, c),
        from_deposit=money(penalty.from_deposit, c),
        reason=penalty.reason.value,
        cause=penalty.cause,
        created_at=timestamp(penalty.created_at),
        reversed_at=timestamp(penalty.reversed_at),
        reversed_by=penalty.reversed_by,
        reversal_reason=penalty.reversal_reason,
    )


def ban_message(ban: Ban) -> pb.Ban:
    return pb.Ban(
        bidder_id=ban.bidder_id,
        sale_id=ban.sale_id,
        reason=ban.reason,
        source=ban.source,
        banned_at=timestamp(ban.banned_at),
        banned_by=ban.banned_by,
        lifted_at=timestamp(ban.lifted_at),
        lifted_by=ban.lifted_by,
        lift_reason=ban.lift_reason,
    )


def pack_message(pack: TicketPack) -> pb.TicketPack:
    return pb.TicketPack(
        id=pack.id,
        tickets=pack.tickets,
        unit_price=money(pack.unit_minor, pack.currency),
        price=money(pack.price_minor, pack.currency),
        active=pack.active,
    )
