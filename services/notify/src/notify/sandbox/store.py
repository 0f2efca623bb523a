"""Where the sandboxes keep what was sent: `<var>/outbox/mail/*.eml` and `<var>/outbox/sms.jsonl`."""

from __future__ import annotations

import email
import email.policy
import json
import os
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any


def outbox_dir() -> Path:
    return Path(os.environ.get("GAVEL_VAR_DIR") or Path.cwd() / "var").resolve() / "outbox"


@dataclass(frozen=True, slots=True)
class StoredMail:
    path: Path
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def to(self) -> str:
        return str(self.message.get("To", ""))

    @property
    def date(self) -> str:
        return str(self.message.get("Date", ""))

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        return "" if body is None else str(body.get_content())  # type: ignore[attr-defined]


def read_mail(path: Path) -> StoredMail:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return StoredMail(path, message)


def mails(directory: Path) -> list[StoredMail]:
    if not directory.is_dir():
        return []
    return [read_mail(path) for path in sorted(directory.glob("*.eml"))]


def sms_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            records.append(json.loads(line))
    return records
