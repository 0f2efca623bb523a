"""The demo data `gavel up` seeds: one user per role and a published live sale with three lots.

Idempotent: users are created-or-updated by e-mail, and every catalog call carries a fixed
request id, so a restart returns the first answers instead of creating a second sale.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
import urllib.request
from collections.abc import Mapping

import grpc

from gavel.catalog.v1 import catalog_service_pb2 as catalog
from gavel.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from gavel.catalog.v1 import resources_pb2 as res
from gavel.common.v1.money_pb2 import Money
from gavel.notify.v1 import notify_service_pb2 as notify
from gavel.notify.v1 import notify_service_pb2_grpc as notify_grpc
from gavel_kit.grpc.client import bearer
from gavel_kit.settings import Settings

DEMO_PASSWORD_SUFFIX = "-demo-pass"  # noqa: S105 — printed demo logins, local only
DEMO_ROLES = ("bidder", "seller", "crier", "sale_admin", "site_admin")


def demo_users() -> dict[str, tuple[str, str]]:
    """role → (email, password) of the demo accounts (local development only)."""
    return {role: (f"{role.replace('_', '-')}@gavel.demo", f"{role}{DEMO_PASSWORD_SUFFIX}") for role in DEMO_ROLES}


def _create_user(env: Mapping[str, str], email: str, password: str, name: str, role: str) -> None:
    command = [sys.executable, "-m", "gateway.main", "create-user"]
    command += ["--email", email, "--name", name, "--roles", role]  # the password goes in on stdin, never argv
    result = subprocess.run(  # noqa: S603
        command, env=dict(env), input=f"{password}\n".encode(), capture_output=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"gavel up: creating demo user {email} failed:\n{result.stderr.decode(errors='replace')}")


def _login(gateway: Settings, email: str, password: str) -> str:
    request = urllib.request.Request(
        f"http://{gateway.grpc_host}:{gateway.grpc_port}/api/v1/auth/login",
        data=json.dumps({"email": email, "password": password}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        token: str = json.load(response)["access_token"]
        return token


def _subject(token: str) -> str:
    """The user id a token names (read without verifying: we just logged in with it)."""
    payload = token.split(".")[1]
    subject: str = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]
    return subject


# Contact points and languages of the demo users, so `gavel up` shows notify's mails and SMS in the
# outbox: verified by the seeding site admin (there is no inbox to click a code in).
DEMO_NOTIFY = {"bidder": ("en", "America/New_York", "+15555550101"), "seller": ("fr", "Europe/Paris", "")}


def _seed_notify(settings: Mapping[str, Settings], users: Mapping[str, tuple[str, str]]) -> None:
    admin = bearer(_login(settings["gateway"], *users["site_admin"]))
    with grpc.insecure_channel(settings["notify"].grpc_address) as channel:
        stub = notify_grpc.NotifyServiceStub(channel)
        for role, (locale, zone, phone) in DEMO_NOTIFY.items():
            email, password = users[role]
            preferences = notify.Preferences(
                locale=locale,
                time_zone=zone,
                email=notify.ContactPoint(address=email, verified=True),
                phone=notify.ContactPoint(address=phone, verified=bool(phone)),
                digests=[notify.DIGEST_PERIOD_DAILY],
            )
            token = _login(settings["gateway"], email, password)
            stub.SetPreferences(
                notify.SetPreferencesRequest(
                    request_id=f"demo-notify-{role}", user_id=_subject(token), preferences=preferences
                ),
                metadata=admin,
            )
            # A first message per channel, so the outbox shows the pipe works from the start.
            media = [notify.CHANNEL_EMAIL, notify.CHANNEL_SMS] if phone else [notify.CHANNEL_EMAIL]
            for medium in media:
                stub.SendTestMessage(
                    notify.SendTestMessageRequest(request_id=f"demo-test-{role}-{medium}", channel=medium),
                    metadata=bearer(token),
                )


def _usd(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="USD")


def demo_lots(product_ids: list[str]) -> list[res.Lot]:
    english, dutch, lucky = product_ids
    return [
        res.Lot(
            product_id=english,
            currency="USD",
            format=res.FORMAT_ENGLISH,
            duration_slots=1,
            english=res.EnglishParams(
                opening_bid=_usd(10_000),
                increment_preset="auction_house",
                reserve=_usd(25_000),
                close=res.ENGLISH_CLOSE_SOFT,
                duration_ms=5 * 60_000,
                soft_close_window_ms=30_000,
                soft_close_mode=res.SOFT_CLOSE_MODE_RESET,
                soft_close_max_extension_ms=5 * 60_000,
                vendor_may_accept=True,
            ),
            buyer_premium_bp=2_000,
            confirmation_timeout_ms=10 * 60_000,
        ),
        res.Lot(
            product_id=dutch,
            currency="USD",
            format=res.FORMAT_DUTCH,
            duration_slots=1,
            dutch=res.DutchParams(
                start_price=_usd(50_000),
                floor_price=_usd(20_000),
                tick_ms=2_000,
                step_mode=res.DUTCH_STEP_MODE_FIXED,
                step=_usd(1_000),
            ),
        ),
        res.Lot(
            product_id=lucky,
            currency="USD",
            format=res.FORMAT_LUCKY,
            duration_slots=1,
            lucky=res.LuckyParams(
                options=["red", "green", "blue", "gold"],
                price=_usd(5_000),
                window_ms=60_000,
                winning_rule=res.LUCKY_WINNING_RULE_DRAWN,
            ),
        ),
    ]


def seed(env: Mapping[str, str], settings: Mapping[str, Settings]) -> dict[str, tuple[str, str]]:
    """Create the demo users and the demo sale; return the credentials to print."""
    users = demo_users()
    for role, (email, password) in users.items():
        _create_user(env, email, password, f"Demo {role.replace('_', ' ')}", role)
    _seed_notify(settings, users)
    token = _login(settings["gateway"], *users["seller"])
    metadata = bearer(token)
    with grpc.insecure_channel(settings["catalog"].grpc_address) as channel:
        stub = catalog_grpc.CatalogServiceStub(channel)
        products = [
            ("Victorian walnut writing desk", "A mahogany-inlaid writing desk, c. 1870.", 1),
            ("Signed first-edition novel", "A first edition, signed by the author.", 1),
            ("Mystery box of studio pottery", "Three pieces of studio pottery.", 2),
        ]
        product_ids = []
        for index, (title, description, quantity) in enumerate(products):
            reply = stub.CreateProduct(
                catalog.CreateProductRequest(
                    request_id=f"demo-product-{index}",
                    product=res.Product(title=title, description=description, quantity=quantity),
                ),
                metadata=metadata,
            )
            product_ids.append(reply.product.id)
        session_day = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()
        sale = stub.CreateSale(
            catalog.CreateSaleRequest(
                request_id="demo-sale",
                sale=res.Sale(
                    title="Gavel demo evening sale",
                    description="Furniture, books and a lucky-dip of pottery.",
                    time_zone="UTC",
                    kind=res.SALE_KIND_LIVE_SESSION,
                    live_session=res.LiveSession(
                        date=session_day, time_slots=[res.TimeSlot(start="18:00", end="21:00")]
                    ),
                    registration=res.RegistrationPolicy(rule=res.APPROVAL_RULE_AUTO_ALL),
                ),
            ),
            metadata=metadata,
        ).sale
        for index, lot in enumerate(demo_lots(product_ids)):
            stub.AddLot(
                catalog.AddLotRequest(request_id=f"demo-lot-{index}", sale_id=sale.id, lot=lot), metadata=metadata
            )
        stub.PublishSale(catalog.PublishSaleRequest(request_id="demo-publish", sale_id=sale.id), metadata=metadata)
    return users
