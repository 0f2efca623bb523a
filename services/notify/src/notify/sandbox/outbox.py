"""`gavel outbox`: what notify sent in the local cluster — the mails the SMTP sandbox kept and the
SMS the SMS sandbox took (newest last). `--follow` keeps printing new ones."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from notify.sandbox.store import StoredMail, mails, outbox_dir, sms_records


def _mail_line(mail: StoredMail) -> str:
    return f"mail  {mail.date:<31}  {mail.to:<28}  {mail.subject}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gavel outbox", description="What notify sent in the local cluster")
    parser.add_argument("--dir", type=Path, default=outbox_dir(), help="the outbox directory (var/outbox)")
    parser.add_argument("--limit", type=int, default=30, help="how many of each to show")
    parser.add_argument("--body", action="store_true", help="print each mail's text part and each SMS in full")
    parser.add_argument("--follow", action="store_true", help="keep printing new messages (Ctrl-C stops)")
    args = parser.parse_args(argv)
    seen_mail: set[Path] = set()
    seen_sms: set[str] = set()
    first = True
    while True:
        kept = mails(args.dir / "mail")
        records = sms_records(args.dir / "sms.jsonl")
        if first:
            print(f"outbox {args.dir}: {len(kept)} mails, {len(records)} SMS (the outbox page: the SMS sandbox's /)")
            seen_mail.update(mail.path for mail in kept[: -args.limit or None])
            seen_sms.update(record["id"] for record in records[: -args.limit or None])
        for mail in kept:
            if mail.path in seen_mail:
                continue
            seen_mail.add(mail.path)
            print(_mail_line(mail))
            if args.body:
                print("      " + mail.part("plain").replace("\n", "\n      "))
        for record in records:
            if record["id"] in seen_sms:
                continue
            seen_sms.add(record["id"])
            text = record["text"] if args.body or len(record["text"]) <= 90 else record["text"][:89] + "…"
            print(f"sms   {record['to']:<16}  {record['segments']} seg {record['encoding']:<4}  {text}")
        first = False
        if not args.follow:
            return 0
        try:
            time.sleep(1)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
