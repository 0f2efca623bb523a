"""Every template in every language, rendered with locale formatting (snapshot tests).

Snapshots live in `snapshots/<locale>/<kind>.txt` (subject, SMS with its segments, text part);
`GAVEL_UPDATE_SNAPSHOTS=1` rewrites them after a deliberate change — then read the diff.
"""

import os
from pathlib import Path

import pytest

from notify.adapters.templates import JinjaRenderer
from notify.app.ports import Links
from notify.domain.kinds import KINDS, Channel
from notify.domain.preferences import LOCALES

SNAPSHOTS = Path(__file__).parent / "snapshots"
ZONES = {"en": "America/New_York", "fr": "Europe/Paris", "ko": "Asia/Seoul", "zh": "Asia/Shanghai"}
LINKS = Links(
    "https://gavel.example/notify/unsubscribe?token=T1",
    "https://gavel.example/notify/unsubscribe?token=T2",
    "https://gavel.example/account/notifications",
)
EUR = "EUR"
PARAMS = {
    "lot_id": "lot-1",
    "lot_number": 3,
    "sale_title": "Salon <Art> & Design",
    "lot_url": "https://gavel.example/lots/lot-1",
    "price": {"amount_minor": 123_450, "currency": EUR},
    "minimum": {"amount_minor": 128_450, "currency": EUR},
    "starts_at": "2026-12-05T17:30:00+00:00",
    "deadline": "2026-12-05T18:10:00+00:00",
    "offset_minutes": 10,
    "amount": {"amount_minor": 5_000, "currency": EUR},
    "reason": "confirmation_timeout",
    "strikes": 2,
    "total": {"amount_minor": 1_481_340, "currency": "KRW"},
    "due_at": "2026-12-12T23:00:00+00:00",
    "invoice_id": "inv-1",
    "settled": True,
    "purpose": "deposit_release",
    "code": "042917",
    "expires_at": "2026-12-05T17:45:00+00:00",
    "count": 7,
    "lots": [
        {
            "lot_number": 3,
            "sale_title": "Salon",
            "price": {"amount_minor": 123_450, "currency": EUR},
            "minimum": {"amount_minor": 128_450, "currency": EUR},
        },
        {"lot_number": 4, "sale_title": "Salon", "price": {"amount_minor": 9_900, "currency": EUR}},
    ],
    "period": "weekly",
    "first": "2026-11-30",
    "last": "2026-12-06",
    "rows": [
        {
            "lot_id": "l1",
            "sale_title": "Salon",
            "product_title": "Walnut desk",
            "format": "english",
            "starts_at": "2026-12-01T09:00:00+00:00",
            "start_price": {"amount_minor": 10_000, "currency": "USD"},
            "price": None,
            "quantity": 1,
            "lot_url": "https://gavel.example/lots/l1",
        },
        {
            "lot_id": "l2",
            "sale_title": "Salon",
            "product_title": "Pottery box",
            "format": "lucky",
            "starts_at": "2026-12-03T23:30:00+00:00",
            "start_price": None,
            "price": {"amount_minor": 5_000, "currency": "USD"},
            "quantity": 2,
            "lot_url": "https://gavel.example/lots/l2",
        },
    ],
}
RENDERER = JinjaRenderer()


def snapshot(locale: str, kind: str) -> str:
    email = RENDERER.render(kind, locale, ZONES[locale], PARAMS, LINKS, Channel.EMAIL)
    sms = RENDERER.render(kind, locale, ZONES[locale], PARAMS, LINKS, Channel.SMS)
    return f"subject: {email.subject}\nsms ({sms.segments} segments): {sms.sms}\n\n{email.text}"


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_renders_in_every_language_as_its_snapshot(locale, kind):
    rendered = snapshot(locale, kind)
    path = SNAPSHOTS / locale / f"{kind}.txt"
    if os.environ.get("GAVEL_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    assert rendered == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("locale", LOCALES)
def test_the_html_part_escapes_what_sellers_and_admins_wrote_and_carries_the_links(locale):
    html = RENDERER.render("outbid", locale, ZONES[locale], PARAMS, LINKS, Channel.EMAIL).html
    assert "Salon &lt;Art&gt; &amp; Design" in html
    assert "<Art>" not in html
    assert 'href="https://gavel.example/lots/lot-1"' in html
    assert 'href="https://gavel.example/notify/unsubscribe?token=T1"' in html
    assert f'<html lang="{locale}">' in html


def test_money_and_times_follow_the_locale_and_the_users_zone():
    def text(locale: str) -> str:
        return RENDERER.render("provisional_win", locale, ZONES[locale], PARAMS, LINKS, Channel.EMAIL).text

    assert "€1,234.50" in text("en")
    assert "1:10\u202fPM" in text("en")
    assert "1\u202f234,50\xa0€" in text("fr")
    assert "19:10" in text("fr")
    assert "€1,234.50" in text("ko")
    assert "AM 3:10" in text("ko")
    assert "€1,234.50" in text("zh")
    assert "02:10" in text("zh")


def test_korean_and_chinese_sms_are_ucs2_and_short_ones_fit_one_segment():
    for locale in ("ko", "zh"):
        rendered = RENDERER.render("lot_next", locale, ZONES[locale], {"lot_number": 2}, LINKS, Channel.SMS)
        assert rendered.segments == 1
    long = RENDERER.render("outbid", "ko", ZONES["ko"], PARAMS, LINKS, Channel.SMS)
    assert long.segments == 2  # the lot link does not fit one UCS-2 segment with the amounts: sent in two parts
