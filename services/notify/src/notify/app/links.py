"""The links a message carries: one-click unsubscribe (signed) and the preferences page."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from notify.app.ports import Links
from notify.domain.kinds import Channel
from notify.domain.tokens import Unsubscribe, sign_unsubscribe


@dataclass(frozen=True, slots=True)
class LinkBuilder:
    """`web_url` is the gateway's public address: its `/notify/unsubscribe` route (issue 14) calls
    Unsubscribe with the token; `/lots/<id>` is the room page (issue 15)."""

    key: bytes
    web_url: str

    def unsubscribe_url(self, user_id: str, kind: str, channel: Channel) -> str:
        token = sign_unsubscribe(self.key, Unsubscribe(user_id, kind, channel))
        return f"{self.web_url}/notify/unsubscribe?token={quote(token)}"

    def links(self, user_id: str, kind: str, channel: Channel) -> Links:
        return Links(
            unsubscribe=self.unsubscribe_url(user_id, kind, channel),
            unsubscribe_all=self.unsubscribe_url(user_id, "*", channel),
            preferences=f"{self.web_url}/account/notifications",
        )

    def lot_url(self, lot_id: str) -> str:
        return f"{self.web_url}/lots/{quote(lot_id)}"
