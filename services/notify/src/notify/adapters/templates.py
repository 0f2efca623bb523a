"""Rendering notices with Jinja2 and Babel: `notify/templates/<locale>/<kind>.jinja` defines the
blocks subject, heading, body (paragraphs split by blank lines), items (one per line), action
(the button's label) and sms; the locale's `layout.txt.jinja` and `layout.html.jinja` put them in
an e-mail with the unsubscribe and preferences links. Money and times are formatted by Babel in
the user's locale and time zone; the SMS text avoids characters that would make it UCS-2
needlessly (Babel's narrow spaces) and its segments are counted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_skeleton, format_time, get_timezone_name
from babel.numbers import format_currency, get_currency_precision
from jinja2 import Environment, PackageLoader, StrictUndefined, Template, select_autoescape

from notify.app.ports import Links, Rendered
from notify.domain import sms
from notify.domain.kinds import Channel
from notify.domain.preferences import LOCALES

BLOCKS = ("subject", "heading", "body", "items", "action", "sms")
# Characters Babel uses that GSM-7 lacks and an SMS can do without (they would make it UCS-2).
_SMS_PLAIN = str.maketrans({"\u202f": " ", "\u00a0": " ", "\u2019": "'", "\u2018": "'", "\u2013": "-", "\u2014": "-"})


def _instant(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


class Formats:
    """The formatting functions a template sees, bound to one locale and zone."""

    def __init__(self, locale: str, time_zone: str) -> None:
        self.locale = Locale.parse(locale)
        self.zone = ZoneInfo(time_zone)

    def money(self, value: dict[str, Any] | None) -> str:
        if not value:
            return ""
        currency = str(value["currency"])
        amount = Decimal(int(value["amount_minor"])).scaleb(-get_currency_precision(currency))
        return str(format_currency(amount, currency, locale=self.locale))

    def _join(self, width: str, time_text: str, date_text: str) -> str:
        return str(self.locale.datetime_formats[width]).format(time_text, date_text)

    def when(self, value: str | datetime) -> str:
        """A weekday, date and time with the zone: "Sat, Dec 5, 2026, 6:30 PM"."""
        instant = _instant(value)
        day = format_skeleton("yMMMEd", instant, tzinfo=self.zone, locale=self.locale)
        return self._join("medium", format_time(instant, "short", tzinfo=self.zone, locale=self.locale), day)

    def when_short(self, value: str | datetime) -> str:
        instant = _instant(value)
        day = format_skeleton("MMMd", instant, tzinfo=self.zone, locale=self.locale)
        return self._join("short", format_time(instant, "short", tzinfo=self.zone, locale=self.locale), day)

    def day(self, value: str | datetime) -> str:
        return str(format_date(_instant(value).astimezone(self.zone).date(), "medium", locale=self.locale))

    def date(self, value: str | dt.date) -> str:
        day = dt.date.fromisoformat(value) if isinstance(value, str) else value
        return str(format_date(day, "medium", locale=self.locale))

    def month(self, value: str | dt.date) -> str:
        day = dt.date.fromisoformat(value) if isinstance(value, str) else value
        return str(format_skeleton("yMMMM", datetime(day.year, day.month, 1), locale=self.locale))

    def zone_name(self) -> str:
        return str(get_timezone_name(self.zone, locale=self.locale))

    def context(self) -> dict[str, Callable[..., str] | str]:
        return {
            "money": self.money,
            "when": self.when,
            "when_short": self.when_short,
            "day": self.day,
            "date": self.date,
            "month": self.month,
            "zone_name": self.zone_name(),
        }


class JinjaRenderer:
    """notify.app.ports.Renderer over the package's templates."""

    def __init__(self) -> None:
        loader = PackageLoader("notify", "templates")
        # The text parts and SMS are plain text (escaping would show "&amp;"); only the HTML layout
        # puts values into markup, and it escapes them.
        self._text = Environment(loader=loader, autoescape=False, undefined=StrictUndefined)  # noqa: S701
        self._html = Environment(loader=loader, autoescape=select_autoescape(["html.jinja"]), undefined=StrictUndefined)

    def template(self, locale: str, kind: str) -> Template:
        return self._text.get_template(f"{locale}/{kind}.jinja")

    def _blocks(self, template: Template, context: dict[str, Any]) -> dict[str, str]:
        rendered = {}
        for name in BLOCKS:
            block = template.blocks.get(name)
            rendered[name] = "".join(block(template.new_context(context))).strip() if block else ""
        return rendered

    def render(
        self, kind: str, locale: str, time_zone: str, params: dict[str, Any], links: Links, channel: Channel
    ) -> Rendered:
        locale = locale if locale in LOCALES else "en"
        formats = Formats(locale, time_zone)
        base = formats.context() | {"links": links}
        label = self._text.get_template(f"{locale}/lot_label.jinja")

        def lot_label(values: dict[str, Any]) -> str:
            return label.render(
                {"lot_number": values.get("lot_number", 0), "sale_title": values.get("sale_title", "")}
            ).strip()

        context: dict[str, Any] = (
            {
                "minimum": None,
                "starts_at": None,
                "reason": "",
                "sale_title": "",
                "lot_number": 0,
                "strikes": 0,
                "lots": [],
                "rows": [],
                "count": 0,
            }
            | base
            | params
        )
        context["lot_label"] = lot_label(params)
        context["lots"] = [
            {"price": None, "minimum": None} | dict(lot) | {"lot_label": lot_label(lot)}
            for lot in params.get("lots", [])
        ]
        blocks = self._blocks(self.template(locale, kind), context)
        paragraphs = [p.strip() for p in blocks["body"].split("\n\n") if p.strip()]
        items = [line.strip() for line in blocks["items"].splitlines() if line.strip()]
        action_url = str(params.get("lot_url") or links.preferences)
        layout = {
            "subject": blocks["subject"],
            "heading": blocks["heading"],
            "paragraphs": paragraphs,
            "items": items,
            "action": blocks["action"],
            "action_url": action_url,
            "links": links,
        }
        text = self._text.get_template(f"{locale}/layout.txt.jinja").render(layout).strip() + "\n"
        html = self._html.get_template(f"{locale}/layout.html.jinja").render(layout)
        sms_text = ""
        segments = 0
        if channel is Channel.SMS and blocks["sms"]:
            link = str(params.get("lot_url", ""))
            sms_text = sms.compose(blocks["sms"].translate(_SMS_PLAIN), link)
            segments = sms.segment(sms_text).count
        return Rendered(blocks["subject"], text, html, sms_text, segments)
