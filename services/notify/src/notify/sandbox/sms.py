"""The SMS sandbox: an HTTP SMS provider that sends nothing and keeps everything.

API (what notify.adapters.channels.HttpSmsSender speaks; a real provider's adapter maps to it):

- `POST /v1/messages` with `Authorization: Bearer <key>`, `Idempotency-Key: <id>` and JSON
  `{from, to, text, reference}` → 201 `{id, status: "queued", encoding, segments, parts}`; the same
  idempotency key again → 200 and the first record (nothing is sent twice).
- `GET /v1/messages/<id>` → the record with its delivery receipt: `delivered`, or `failed` for
  numbers ending in 0000 (a way to try undeliverable numbers).
- `GET /v1/messages[?to=+33…]` → every record, oldest first.
- `POST /v1/sandbox/outage` `{"down": true}` → every send answers 503 until `{"down": false}`.
- `GET /` → the outbox page: every SMS and every mail the SMTP sandbox kept.

Records persist in `<var>/outbox/sms.jsonl`. `python -m notify.sandbox.sms [--host] [--port 8026]`.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from notify.domain import sms as segmentation
from notify.sandbox.store import mails, outbox_dir, sms_records

DEFAULT_PORT = 8026
MAX_TEXT = 1600
_PHONE = re.compile(r"^\+[1-9][0-9]{7,14}$")


class SmsBook:
    """Every message the sandbox took, by id and by idempotency key, kept in a JSONL file."""

    def __init__(self, path: Path, on_add: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.path = path
        self._on_add = on_add
        self._lock = threading.Lock()
        self.records: list[dict[str, Any]] = sms_records(path)
        self._by_key = {r["idempotency_key"]: r for r in self.records if r.get("idempotency_key")}
        self._by_id = {r["id"]: r for r in self.records}
        self.down = False

    def add(self, key: str, sender: str, to: str, text: str, reference: str) -> tuple[dict[str, Any], bool]:
        with self._lock:
            if key and key in self._by_key:
                return self._by_key[key], False
            parts = segmentation.segment(text)
            record = {
                "id": f"sms_{len(self.records) + 1:06d}",
                "idempotency_key": key,
                "from": sender,
                "to": to,
                "text": text,
                "reference": reference,
                "encoding": parts.encoding.value,
                "segments": parts.count,
                "parts": list(parts.parts),
                "status": "queued",
                "created_at": time.time(),
            }
            self.records.append(record)
            self._by_id[record["id"]] = record
            if key:
                self._by_key[key] = record
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as file:
                file.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self._on_add is not None:
            self._on_add(record)
        return record, True

    def get(self, message_id: str) -> dict[str, Any] | None:
        record = self._by_id.get(message_id)
        if record is None:
            return None
        return record | {"status": "failed" if str(record["to"]).endswith("0000") else "delivered"}


def create_app(book: SmsBook, key: str, mail_dir: Path) -> Starlette:
    def authorised(request: Request) -> bool:
        return request.headers.get("authorization", "") == f"Bearer {key}"

    async def send(request: Request) -> Response:
        if not authorised(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        if book.down:
            return JSONResponse({"error": "sandbox outage"}, status_code=503)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "body must be JSON"}, status_code=400)
        to, text = str(body.get("to", "")), str(body.get("text", ""))
        if not _PHONE.match(to):
            return JSONResponse({"error": "to must be an E.164 number"}, status_code=400)
        if not text or len(text) > MAX_TEXT:
            return JSONResponse({"error": f"text must be 1 to {MAX_TEXT} characters"}, status_code=400)
        record, created = book.add(
            request.headers.get("idempotency-key", "")[:200],
            str(body.get("from", ""))[:11],
            to,
            text,
            str(body.get("reference", ""))[:200],
        )
        return JSONResponse(record, status_code=201 if created else 200)

    async def one(request: Request) -> Response:
        if not authorised(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        record = book.get(request.path_params["message_id"])
        return JSONResponse(record) if record else JSONResponse({"error": "not found"}, status_code=404)

    async def listing(request: Request) -> Response:
        to = request.query_params.get("to", "")
        records = [book.get(r["id"]) for r in book.records if not to or r["to"] == to]
        return JSONResponse({"messages": records})

    async def outage(request: Request) -> Response:
        body = await request.json()
        book.down = bool(body.get("down"))
        return JSONResponse({"down": book.down})

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def page(request: Request) -> Response:
        return HTMLResponse(outbox_page(book.records, mail_dir))

    return Starlette(
        routes=[
            Route("/", page),
            Route("/healthz", health),
            Route("/v1/messages", send, methods=["POST"]),
            Route("/v1/messages", listing, methods=["GET"]),
            Route("/v1/messages/{message_id}", one),
            Route("/v1/sandbox/outage", outage, methods=["POST"]),
        ]
    )


def outbox_page(records: list[dict[str, Any]], mail_dir: Path) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(r['created_at'])))}</td><td>{e(r['to'])}</td>"
        f"<td>{e(r['text'])}</td><td>{r['segments']} ({e(r['encoding'])})</td></tr>"
        for r in reversed(records[-200:])
    )
    kept = mails(mail_dir)[-200:]
    mail_rows = "".join(
        f"<tr><td>{e(m.date)}</td><td>{e(m.to)}</td><td><details><summary>{e(m.subject)}</summary>"
        f"<pre style='white-space: pre-wrap'>{e(m.part('plain'))}</pre></details></td></tr>"
        for m in reversed(kept)
    )
    style = "body{font-family:sans-serif;margin:24px}td{border-top:1px solid #ddd;padding:4px 8px;vertical-align:top}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Gavel outbox</title><style>{style}</style></head>"
        f"<body><h1>Gavel outbox</h1><p>What notify sent in this local cluster (nothing leaves the machine).</p>"
        f"<h2>E-mail ({len(kept)})</h2><table><tr><th>date</th><th>to</th><th>subject</th></tr>{mail_rows}</table>"
        f"<h2>SMS ({len(records)})</h2><table><tr><th>time (UTC)</th><th>to</th><th>text</th><th>segments</th></tr>"
        f"{rows}</table></body></html>"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="notify.sandbox.sms", description="Local SMS provider keeping every SMS")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--file", type=Path, default=outbox_dir() / "sms.jsonl")
    parser.add_argument("--mail-dir", type=Path, default=outbox_dir() / "mail")
    args = parser.parse_args(argv)
    key = os.environ.get("GAVEL_NOTIFY_SMS_KEY", "sandbox-key")
    app = create_app(SmsBook(args.file), key, args.mail_dir)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
