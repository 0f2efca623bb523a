"""The two channels: e-mail over SMTP (aiosmtplib) and SMS through an HTTP provider (httpx).

Both raise `SendFailed` for what did not go out — `permanent` when trying again cannot help (a
5xx SMTP reply to the recipient, a 4xx from the SMS provider other than 429) — and the dispatcher
retries the rest with backoff. Both carry the delivery id: the e-mail's Message-ID and the SMS
request's Idempotency-Key, so a resend after a crash between sending and recording can be
recognised (the SMS sandbox and most providers drop the duplicate).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import aiosmtplib
import httpx

from notify.app.ports import Outgoing, SendFailed, Sent
from notify.domain import sms


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 2525
    security: str = "none"  # none, starttls or tls
    username: str = ""
    password: str = ""
    sender: str = "Gavel <notify@gavel.local>"
    timeout_s: float = 10.0
    message_id_domain: str = "gavel.local"
    ca_file: str = ""  # a CA bundle to verify the server's certificate with (a private CA); "" = the system's

    def __post_init__(self) -> None:
        if self.security not in ("none", "starttls", "tls"):
            raise ValueError("GAVEL_NOTIFY_SMTP_SECURITY must be none, starttls or tls")


def build_email(config: SmtpConfig, message: Outgoing) -> EmailMessage:
    email = EmailMessage()
    email["Subject"] = message.rendered.subject
    email["From"] = config.sender
    email["To"] = message.address
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Message-ID"] = f"<{message.delivery_id}@{config.message_id_domain}>"
    # RFC 2369 + RFC 8058: mail clients show an unsubscribe button that POSTs to the link.
    email["List-Unsubscribe"] = f"<{message.links.unsubscribe}>"
    email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.rendered.text)
    email.add_alternative(message.rendered.html, subtype="html")
    for name, value in message.headers.items():  # after the body: set_content drops Content-* headers
        email[name] = value
    return email


class SmtpSender:
    """notify.app.ports.ChannelSender for e-mail."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    async def send(self, message: Outgoing) -> Sent:
        config = self._config
        email = build_email(config, message)
        try:
            await aiosmtplib.send(
                email,
                hostname=config.host,
                port=config.port,
                username=config.username or None,
                password=config.password or None,
                use_tls=config.security == "tls",
                start_tls=config.security == "starttls",
                cert_bundle=config.ca_file or None,
                timeout=config.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise SendFailed(f"recipient refused: {exc}", permanent=True) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise SendFailed(f"SMTP {exc.code}: {exc.message}", permanent=500 <= exc.code < 600) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendFailed(f"SMTP unavailable: {exc!r}") from exc
        return Sent(provider_id=email["Message-ID"])


@dataclass(frozen=True, slots=True)
class SmsConfig:
    """The HTTP SMS provider (the sandbox's API, docs/notify.md): POST {endpoint}/v1/messages,
    GET {endpoint}/v1/messages/{id} for the delivery receipt."""

    endpoint: str = "http://127.0.0.1:8026"
    key: str = "sandbox-key"
    sender_id: str = "Gavel"
    timeout_s: float = 10.0


class HttpSmsSender:
    """notify.app.ports.ChannelSender and ReceiptSource for SMS."""

    def __init__(self, config: SmsConfig, client: httpx.AsyncClient | None = None) -> None:
        self._config = config
        self._client = client or httpx.AsyncClient(timeout=config.timeout_s)

    def _headers(self, **extra: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self._config.key}", **extra}

    async def send(self, message: Outgoing) -> Sent:
        text = message.rendered.sms
        body = {"from": self._config.sender_id, "to": message.address, "text": text, "reference": message.delivery_id}
        try:
            response = await self._client.post(
                f"{self._config.endpoint}/v1/messages",
                json=body,
                headers=self._headers(**{"idempotency-key": message.delivery_id}),
            )
        except httpx.HTTPError as exc:
            raise SendFailed(f"SMS provider unreachable: {exc!r}") from exc
        if response.status_code >= 400:
            permanent = response.status_code < 500 and response.status_code != 429
            raise SendFailed(
                f"SMS provider answered {response.status_code}: {response.text[:300]}", permanent=permanent
            )
        reply: dict[str, Any] = response.json()
        return Sent(
            provider_id=str(reply.get("id", "")), segments=int(reply.get("segments") or sms.segment(text).count)
        )

    async def receipt(self, provider_id: str) -> str:
        try:
            response = await self._client.get(
                f"{self._config.endpoint}/v1/messages/{provider_id}", headers=self._headers()
            )
        except httpx.HTTPError:
            return "queued"
        if response.status_code != 200:
            return "queued"
        return str(response.json().get("status", "queued"))

    async def close(self) -> None:
        await self._client.aclose()
