"""Money end to end on a real cluster (`gavel up`: separate processes, real NATS, the sandbox
provider): a lot sold in a room is invoiced, paid through the sandbox and settled to its seller; a
winner who lets the confirmation time out pays the penalty from their deposit, the strike bans
them and the room refuses their next bid; tickets spent on a lot someone else won become credit
on the spender's next invoice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import nats
import pytest

from gavel.catalog.v1 import catalog_service_pb2 as cat
from gavel.catalog.v1 import catalog_service_pb2_grpc as cat_grpc
from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1.money_pb2 import Money
from gavel.events.v1 import eligibility_events_pb2 as elig
from gavel.events.v1 import payment_events_pb2 as pay
from gavel.payment.v1 import payment_service_pb2 as pb
from gavel.payment.v1 import payment_service_pb2_grpc as pb_grpc
from gavel.room.v1 import room_service_pb2 as room
from gavel.room.v1 import room_service_pb2_grpc as room_grpc
from gavel_core.auth import Role
from gavel_kit import nats as gavel_nats
from gavel_kit.grpc.client import bearer
from gavel_kit.testing.identities import Identities
from gavel_kit.testing.plugin import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SERVICES = ("catalog", "room", "tender", "payment", "notify", "room-projector")
SUCCESS = "4242424242424242"


def eur(amount: int) -> Money:
    return Money(amount_minor=amount, currency="EUR")


def rid() -> str:
    return uuid.uuid4().hex


class Cluster:
    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.ports = {name: (free_port(), free_port()) for name in SERVICES}
        self.nats_port = free_port()
        self.env = {
            **os.environ,
            "GAVEL_VAR_DIR": str(var_dir),
            "GAVEL_EMBEDDED_NATS_PORT": str(self.nats_port),
            "GAVEL_GATEWAY_HTTP_PORT": str(free_port()),
            "GAVEL_PAYMENT_SANDBOX_PORT": str(free_port()),
            "GAVEL_PAYMENT_WEBHOOK_PORT": str(free_port()),
            "GAVEL_NOTIFY_SMTP_PORT": str(free_port()),
            "GAVEL_NOTIFY_SMS_SANDBOX_PORT": str(free_port()),
            "GAVEL_PAYMENT_STRIKES_TO_BAN": "1",
            "GAVEL_PAYMENT_RECONCILE_S": "1",
        }
        self.env.pop("GAVEL_NATS_URL", None)
        self.env.pop("GAVEL_DATABASE_URL", None)
        self.env.pop("GAVEL_KEYS_DIR", None)  # gavel up makes the cluster's own keys under var/keys
        for name, (grpc_port, metrics_port) in self.ports.items():
            prefix = f"GAVEL_{name.upper().replace('-', '_')}_"
            self.env[prefix + "GRPC_PORT"] = str(grpc_port)
            self.env[prefix + "METRICS_PORT"] = str(metrics_port)
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 240) -> None:
        gavel = Path(sys.executable).parent / "gavel"
        self.process = subprocess.Popen(
            [str(gavel), "up", "--no-seed"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self.process.stdout is not None
        output: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                break
            output.append(line)
            if line.startswith("Ctrl-C stops everything"):
                return
        raise AssertionError("gavel up did not come up:\n" + "".join(output))

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.communicate(timeout=60)

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name][0]}"

    def token(self, subject: str, *roles: Role) -> tuple[tuple[str, str], ...]:
        """Signed with the cluster's own keys: the gateway's for users, the service's own for a service."""
        keys = Identities(self.var_dir / "keys")
        if roles == (Role.SERVICE,):
            return bearer(keys.service_token(subject))
        return bearer(keys.user_token(subject, *roles))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = Cluster(tmp_path_factory.mktemp("gavel-pay"))
    running.start()
    yield running
    running.stop()


class World:
    """Stubs and callers over the cluster, and a tap on gavel.payment.>."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.catalog = cat_grpc.CatalogServiceStub(grpc.aio.insecure_channel(cluster.address("catalog")))
        self.room = room_grpc.RoomServiceStub(grpc.aio.insecure_channel(cluster.address("room")))
        self.payment = pb_grpc.PaymentServiceStub(grpc.aio.insecure_channel(cluster.address("payment")))
        self.seller = cluster.token("seller-e2e", Role.SELLER)
        self.crier = cluster.token("crier-e2e", Role.CRIER)
        self.sale_admin = cluster.token("sale-admin-e2e", Role.SALE_ADMIN)
        self.site_admin = cluster.token("site-admin-e2e", Role.SITE_ADMIN)
        self.tender = cluster.token("tender", Role.SERVICE)
        self.messages: list[nats.aio.msg.Msg] = []
        self.arrived = asyncio.Condition()

    def bidder(self, name: str) -> tuple[tuple[str, str], ...]:
        return self.cluster.token(name, Role.BIDDER)

    async def tap(self) -> None:
        self.nc = await nats.connect(
            f"nats://127.0.0.1:{self.cluster.nats_port}",
            **gavel_nats.client_options(self.cluster.var_dir / "secrets" / "nats" / "ops.json"),
        )

        async def got(msg: nats.aio.msg.Msg) -> None:
            async with self.arrived:
                self.messages.append(msg)
                self.arrived.notify_all()

        await self.nc.subscribe("gavel.payment.>", cb=got)

    async def event(self, subject_prefix: str, within_s: float = 60) -> nats.aio.msg.Msg:
        def found() -> list[nats.aio.msg.Msg]:
            return [m for m in self.messages if m.subject.startswith(subject_prefix)]

        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: bool(found())), within_s)
        return found()[0]

    async def sale_with_lots(self, count: int, confirmation_ms: int = 0) -> tuple[res.Sale, list[res.Lot]]:
        earliest = datetime.now(UTC) + timedelta(minutes=2)
        midnight = earliest.replace(hour=0, minute=0, second=0, microsecond=0)
        start = midnight + -(-(earliest - midnight) // timedelta(minutes=10)) * timedelta(minutes=10)
        minute = start.hour * 60 + start.minute
        last = min(minute + 120, 24 * 60)
        created = await self.catalog.CreateSale(
            cat.CreateSaleRequest(
                request_id=rid(),
                sale=res.Sale(
                    title="Money sale",
                    time_zone="UTC",
                    live_session=res.LiveSession(
                        date=start.date().isoformat(),
                        time_slots=[
                            res.TimeSlot(start=start.strftime("%H:%M"), end=f"{last // 60:02d}:{last % 60:02d}")
                        ],
                    ),
                    registration=res.RegistrationPolicy(rule=res.APPROVAL_RULE_OPEN),  # bidders need none
                ),
            ),
            metadata=self.seller,
        )
        for number in range(count):
            product = await self.catalog.CreateProduct(
                cat.CreateProductRequest(request_id=rid(), product=res.Product(title=f"Lot {number}", quantity=1)),
                metadata=self.seller,
            )
            await self.catalog.AddLot(
                cat.AddLotRequest(
                    request_id=rid(),
                    sale_id=created.sale.id,
                    lot=res.Lot(
                        product_id=product.product.id,
                        currency="EUR",
                        format=res.FORMAT_ENGLISH,
                        english=res.EnglishParams(
                            opening_bid=eur(1_000), increment_preset="flat_100", close=res.ENGLISH_CLOSE_CRIER
                        ),
                        buyer_premium_bp=1000,
                        confirmation_timeout_ms=confirmation_ms,
                    ),
                ),
                metadata=self.seller,
            )
        published = await self.catalog.PublishSale(
            cat.PublishSaleRequest(request_id=rid(), sale_id=created.sale.id), metadata=self.seller
        )
        for user, role in (("crier-e2e", res.STAFF_ROLE_CRIER), ("sale-admin-e2e", res.STAFF_ROLE_SALE_ADMIN)):
            await self.catalog.AssignStaff(  # staff act only on the sales they are assigned to
                cat.AssignStaffRequest(request_id=rid(), sale_id=created.sale.id, user_id=user, role=role),
                metadata=self.site_admin,
            )
        return published.sale, list(published.lots)

    async def open(self, lot: res.Lot) -> None:
        """The sale's crier starts the lot in the catalog, the room runs it, the crier opens it."""
        await self.catalog.StartLot(cat.StartLotRequest(request_id=rid(), lot_id=lot.id), metadata=self.crier)
        for _ in range(400):
            try:
                await self.room.GetLotState(room.GetLotStateRequest(lot_id=lot.id), timeout=5)
                break
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
                    raise
                await asyncio.sleep(0.05)
        await self.room.OpenLot(room.OpenLotRequest(request_id=rid(), lot_id=lot.id), metadata=self.crier, timeout=30)

    async def open_and_hammer(self, lot: res.Lot, bidder: tuple[tuple[str, str], ...], amount: int) -> None:
        await self.open(lot)
        await self.room.PlaceBid(
            room.PlaceBidRequest(request_id=rid(), lot_id=lot.id, max_amount=eur(amount)), metadata=bidder, timeout=30
        )
        await self.room.Hammer(room.HammerRequest(request_id=rid(), lot_id=lot.id), metadata=self.crier, timeout=30)

    async def invoice_of(self, lot_id: str) -> pb.Invoice:
        async with self.arrived:
            await asyncio.wait_for(
                self.arrived.wait_for(
                    lambda: any(
                        pay.InvoiceIssued.FromString(m.data).lot_id == lot_id
                        for m in self.messages
                        if ".invoice.issued." in m.subject
                    )
                ),
                60,
            )
        issued = next(
            pay.InvoiceIssued.FromString(m.data)
            for m in self.messages
            if ".invoice.issued." in m.subject and pay.InvoiceIssued.FromString(m.data).lot_id == lot_id
        )
        return (
            await self.payment.GetInvoice(pb.GetInvoiceRequest(invoice_id=issued.invoice_id), metadata=self.sale_admin)
        ).invoice


@pytest.fixture
async def world(cluster):
    w = World(cluster)
    await w.tap()
    yield w
    await w.nc.close()


async def test_a_lot_sold_in_a_room_is_invoiced_paid_through_the_sandbox_and_settled(world):
    sale, lots = await world.sale_with_lots(1)
    await world.payment.SetSaleTerms(
        pb.SetSaleTermsRequest(
            request_id=rid(),
            terms=pb.SaleTerms(
                sale_id=sale.id,
                currency="EUR",
                premium_bands=[pb.PremiumBand(from_minor=0, bp=1000)],
                commission_bp=500,
            ),
        ),
        metadata=world.sale_admin,
    )
    buyer = world.bidder("buyer-e2e")
    await world.open_and_hammer(lots[0], buyer, 20_000)
    invoice = await world.invoice_of(lots[0].id)
    assert invoice.bidder_id == "buyer-e2e"
    assert (invoice.hammer.amount_minor, invoice.premium.amount_minor) == (1_000, 100)  # the opening bid wins alone
    paid = await world.payment.PayInvoice(
        pb.PayInvoiceRequest(request_id=rid(), invoice_id=invoice.id, payment_method=SUCCESS), metadata=buyer
    )
    assert paid.payment.status == pb.PAYMENT_STATUS_CAPTURED
    assert paid.invoice.status == pb.INVOICE_STATUS_PAID
    statement = await world.payment.GetSettlementStatement(
        pb.GetSettlementStatementRequest(sale_id=sale.id), metadata=world.seller
    )
    assert statement.settled.amount_minor == 1_000 - 50
    verified = await world.payment.VerifyLedger(pb.VerifyLedgerRequest(), metadata=world.site_admin)
    assert not verified.mismatched_accounts
    assert not verified.unbalanced_transactions


async def test_a_confirmation_timeout_costs_the_deposit_bans_the_bidder_and_the_room_refuses_the_next_bid(world):
    sale, lots = await world.sale_with_lots(2, confirmation_ms=1_500)
    await world.payment.SetSaleTerms(
        pb.SetSaleTermsRequest(
            request_id=rid(),
            terms=pb.SaleTerms(sale_id=sale.id, currency="EUR", deposit=eur(5_000), penalty_fee=eur(2_000)),
        ),
        metadata=world.sale_admin,
    )
    defaulter = world.bidder("defaulter-e2e")
    deposit = await world.payment.PlaceDeposit(
        pb.PlaceDepositRequest(request_id=rid(), sale_id=sale.id, payment_method=SUCCESS), metadata=defaulter
    )
    assert deposit.deposit.held.amount_minor == 5_000
    await world.open_and_hammer(lots[0], defaulter, 3_000)  # ... and never confirms
    charged = pay.PenaltyCharged.FromString((await world.event("gavel.payment.penalty.charged.defaulter-e2e")).data)
    assert (charged.amount.amount_minor, charged.from_deposit.amount_minor, charged.strikes) == (2_000, 2_000, 1)
    banned = elig.BidderBanned.FromString((await world.event("gavel.payment.bidder.banned.defaulter-e2e")).data)
    assert banned.sale_id == ""
    await world.open(lots[1])
    refused = None
    for amount in range(1_000, 1_000 + 100 * 20, 100):  # the room applies the ban from the stream at once
        try:
            await world.room.PlaceBid(
                room.PlaceBidRequest(request_id=rid(), lot_id=lots[1].id, max_amount=eur(amount)),
                metadata=defaulter,
                timeout=30,
            )
        except grpc.aio.AioRpcError as exc:
            refused = exc
            break
    assert refused is not None
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "banned" in (refused.details() or "")
    eligibility = await world.payment.GetEligibility(
        pb.GetEligibilityRequest(bidder_id="defaulter-e2e", sale_id=sale.id), metadata=world.tender
    )
    assert eligibility.banned
    assert eligibility.deposit_held.amount_minor == 3_000


async def test_tickets_spent_on_a_lot_someone_else_won_become_credit_on_the_spenders_invoice(world):
    sale, lots = await world.sale_with_lots(2)
    await world.payment.SetSaleTerms(
        pb.SetSaleTermsRequest(
            request_id=rid(), terms=pb.SaleTerms(sale_id=sale.id, currency="EUR", credit_scope=pb.CREDIT_SCOPE_ANY)
        ),
        metadata=world.sale_admin,
    )
    await world.payment.DefineTicketPack(
        pb.DefineTicketPackRequest(
            request_id=rid(), pack=pb.TicketPack(id="e2e-five", tickets=5, unit_price=eur(50), active=True)
        ),
        metadata=world.site_admin,
    )
    spender, other = world.bidder("spender-e2e"), world.bidder("other-e2e")
    bought = await world.payment.BuyTicketPack(
        pb.BuyTicketPackRequest(request_id=rid(), pack_id="e2e-five", payment_method=SUCCESS), metadata=spender
    )
    assert bought.payment.status == pb.PAYMENT_STATUS_CAPTURED
    for bid_id in ("t1", "t2"):  # the tender book would call this per bid; here for a room lot
        await world.payment.ConsumeBidTicket(
            pb.ConsumeBidTicketRequest(
                request_id=f"{sale.id}-{bid_id}",
                bidder_id="spender-e2e",
                sale_id=sale.id,
                lot_id=lots[0].id,
                product_id=lots[0].product_id,
                currency="EUR",
            ),
            metadata=world.tender,
        )
    await world.open_and_hammer(lots[0], other, 5_000)
    await world.invoice_of(lots[0].id)
    await world.open_and_hammer(lots[1], spender, 5_000)
    invoice = await world.invoice_of(lots[1].id)
    assert invoice.credit_applied.amount_minor == 100
    assert invoice.balance_due.amount_minor == invoice.total.amount_minor - 100
