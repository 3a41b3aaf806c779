"""Simulated recipients for the demo: what a prospect base does with the emails the SMTP sink
received, through the real doors (SPEC 10) — no activity file is written.

- opens and clicks: an HTTP ``GET`` of the email's own pixel and link URLs against the local
  ``sequencer serve`` (the tracking domain of users.yaml resolves to it, as DNS would); some
  opens come from Apple Mail Privacy Protection's proxy (a machine open);
- unsubscribes: the RFC 8058 one-click ``POST`` to the ``List-Unsubscribe`` URL;
- replies, out-of-office auto-replies and bounces (hard 5.1.1, soft 4.2.2, policy 5.7.1): RFC
  5322 / RFC 3464 messages APPENDed into the sender's IMAP inbox (a local pymap server), which
  ``sequencer mailbox poll`` reads; spam complaints likewise, as the RFC 5965 feedback report
  a mailbox provider's feedback loop sends back.

Deterministic: every draw hashes the Message-ID with the seed, so the same demo tells the same
story. Event times fall inside the simulated day; the server stamps them with the demo's clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr, parsedate_to_datetime
from urllib.parse import urlsplit

APPLE_PROXY_UA = "Mozilla/5.0"  # what Apple Mail Privacy Protection's prefetch sends
MAIL_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Thunderbird/128.0"

# shares of the emails received (bounces first; the rest of each draw among delivered mail)
P_HARD, P_SOFT, P_POLICY = 0.02, 0.006, 0.004
P_OPEN, P_MACHINE, P_CLICK, P_REPLY, P_AUTO, P_UNSUB = 0.45, 0.10, 0.12, 0.18, 0.04, 0.015
P_COMPLAINT = 0.006


def draw(message_id: str, what: str, seed: str) -> float:
    digest = hashlib.sha256(f"{message_id}|{seed}|{what}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class Mail:
    """One received email, as a recipient sees it."""

    message_id: str
    sender: str
    recipient: str
    subject: str
    sent_at: dt.datetime  # naive UTC, from the Date header
    pixel: str | None
    links: list[str]
    unsubscribe: str | None
    headers: str  # the header block, returned inside a bounce

    @classmethod
    def parse(cls, msg: EmailMessage) -> Mail:
        html_part = msg.get_body(("html",))
        markup = html_part.get_content() if html_part is not None else ""
        pixel = re.search(r'<img src="([^"]+/o/[^"]+)"', markup)
        links = [u.replace("&amp;", "&") for u in re.findall(r'href="([^"]+/c/[^"]+)"', markup)]
        unsub = re.match(r"<([^>]+)>", msg.get("List-Unsubscribe", ""))
        sent = parsedate_to_datetime(msg["Date"]).astimezone(dt.UTC).replace(tzinfo=None)
        header_block = "".join(f"{k}: {v}\r\n" for k, v in msg.items())
        return cls(
            message_id=msg["Message-ID"],
            sender=parseaddr(msg["From"])[1],
            recipient=getaddresses([msg["To"]])[0][1],
            subject=str(msg["Subject"] or ""),
            sent_at=sent,
            pixel=pixel.group(1) if pixel else None,
            links=links,
            unsubscribe=unsub.group(1) if unsub else None,
            headers=header_block,
        )


@dataclass
class Doors:
    """Where recipients act: ``fetch(method, path, at, user_agent, body)`` hits the tracking
    server with the clock set to ``at``; ``deliver(user_email, raw_bytes, at)`` appends a
    message to that user's inbox."""

    fetch: Callable[[str, str, dt.datetime, str, bytes | None], int]
    deliver: Callable[[str, bytes, dt.datetime], None]


def act(mails: Iterable[Mail], doors: Doors, day_end: dt.datetime, seed: str = "demo") -> Counter:
    """Let each recipient act on their email; return what they did (for the demo's line)."""
    done: Counter = Counter()
    for mail in mails:
        for kind in _behaviour(mail, seed):
            at = min(mail.sent_at + _delay(mail, kind, seed), day_end - dt.timedelta(seconds=1))
            _do(kind, mail, at, doors)
            done[kind] += 1
    return done


def _behaviour(mail: Mail, seed: str) -> list[str]:
    p = lambda what: draw(mail.message_id, what, seed)  # noqa: E731
    bounce = p("bounce")
    if bounce < P_HARD:
        return ["hard_bounce"]
    if bounce < P_HARD + P_SOFT:
        return ["soft_bounce"]
    if bounce < P_HARD + P_SOFT + P_POLICY:
        return ["policy_block"]
    kinds = []
    if mail.pixel and p("machine") < P_MACHINE:
        kinds.append("machine_open")
    opened = p("open") < P_OPEN
    if opened and mail.pixel:
        kinds.append("open")
    if opened and mail.links and p("click") < P_CLICK / P_OPEN:
        kinds.append("click")
    if p("auto") < P_AUTO:
        kinds.append("auto_reply")
    elif opened and p("reply") < P_REPLY:
        kinds.append("reply")
    if mail.unsubscribe and p("unsub") < P_UNSUB:
        kinds.append("unsubscribe")
    elif "reply" not in kinds and p("complaint") < P_COMPLAINT:
        kinds.append("complaint")
    return kinds


def _delay(mail: Mail, kind: str, seed: str) -> dt.timedelta:
    order = ["machine_open", "hard_bounce", "soft_bounce", "policy_block", "auto_reply",
             "open", "click", "reply", "unsubscribe", "complaint"]  # fmt: skip
    base = 1 + int(draw(mail.message_id, "delay", seed) * 180)
    return dt.timedelta(minutes=base * (1 + order.index(kind)) // 3 + 1)


def _do(kind: str, mail: Mail, at: dt.datetime, doors: Doors) -> None:
    if kind in ("open", "machine_open"):
        agent = APPLE_PROXY_UA if kind == "machine_open" else MAIL_UA
        doors.fetch("GET", _path(mail.pixel), at, agent, None)
    elif kind == "click":
        doors.fetch("GET", _path(mail.links[0]), at, MAIL_UA, None)
    elif kind == "unsubscribe":
        doors.fetch("POST", _path(mail.unsubscribe), at, MAIL_UA, b"List-Unsubscribe=One-Click")
    else:
        doors.deliver(mail.sender, _message(kind, mail, at), at)


def _path(url: str | None) -> str:
    parts = urlsplit(url or "")
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _message(kind: str, mail: Mail, at: dt.datetime) -> bytes:
    own_id = f"<{kind}-{hashlib.sha256(mail.message_id.encode()).hexdigest()[:20]}@demo.example>"
    date = format_datetime(at.replace(tzinfo=dt.UTC))
    if kind == "reply":
        return _rfc5322(
            mail.recipient, mail.sender, f"Re: {mail.subject}", date, own_id,
            {"In-Reply-To": mail.message_id, "References": mail.message_id},
            "Thanks for reaching out - could we talk next week?\r\n",
        )  # fmt: skip
    if kind == "auto_reply":
        back = (at + dt.timedelta(days=7)).date()
        return _rfc5322(
            mail.recipient, mail.sender, f"Automatic reply: {mail.subject}", date, own_id,
            {"In-Reply-To": mail.message_id, "Auto-Submitted": "auto-replied"},
            f"I am out of the office until {back:%d %B %Y} with limited access to email.\r\n",
        )  # fmt: skip
    if kind == "complaint":
        return _arf(mail, date, own_id)
    status, diagnostic, action = {
        "hard_bounce": ("5.1.1", "550 5.1.1 The email account does not exist", "failed"),
        "soft_bounce": ("4.2.2", "452 4.2.2 Mailbox full, try again later", "delayed"),
        "policy_block": ("5.7.1", "550 5.7.1 Message rejected by policy", "failed"),
    }[kind]
    return _dsn(mail, date, own_id, status, diagnostic, action)


def _rfc5322(
    sender: str, to: str, subject: str, date: str, msg_id: str, extra: dict, body: str
) -> bytes:
    head = {"From": sender, "To": to, "Subject": subject, "Date": date, "Message-ID": msg_id}
    head.update(extra)
    lines = "".join(f"{k}: {v}\r\n" for k, v in head.items())
    return (lines + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            + body).encode()  # fmt: skip


def _dsn(mail: Mail, date: str, msg_id: str, status: str, diagnostic: str, action: str) -> bytes:
    """An RFC 3464 delivery-status notification, as Postfix writes one."""
    boundary = "dsn-" + msg_id.strip("<>").split("@")[0]
    mta = "mx." + mail.recipient.rsplit("@", 1)[-1]
    return (
        f"From: MAILER-DAEMON@{mta}\r\nTo: {mail.sender}\r\nDate: {date}\r\n"
        f"Message-ID: {msg_id}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        f"\r\n--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"This is the mail system at host {mta}.\r\n"
        f"I'm sorry to have to inform you that your message could not be delivered.\r\n"
        f"\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; {mta}\r\nArrival-Date: {date}\r\n\r\n"
        f"Final-Recipient: rfc822; {mail.recipient}\r\nOriginal-Recipient: rfc822; "
        f"{mail.recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n"
        f"\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n{mail.headers}"
        f"\r\n--{boundary}--\r\n"
    ).encode()


def _arf(mail: Mail, date: str, msg_id: str) -> bytes:
    """An RFC 5965 abuse report (a feedback loop's "this is spam"), the original's headers
    returned in it."""
    boundary = "arf-" + msg_id.strip("<>").split("@")[0]
    fbl = "fbl." + mail.recipient.rsplit("@", 1)[-1]
    return (
        f"From: feedback@{fbl}\r\nTo: {mail.sender}\r\nDate: {date}\r\n"
        f"Message-ID: {msg_id}\r\nSubject: FW: {mail.subject}\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"'
        f"\r\n\r\n--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is an email abuse report for a message sent to one of our users.\r\n"
        f"\r\n--{boundary}\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nUser-Agent: demo-fbl/1.0\r\nVersion: 1\r\n"
        f"Original-Mail-From: <{mail.sender}>\r\nOriginal-Rcpt-To: <{mail.recipient}>\r\n"
        f"\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n{mail.headers}"
        f"\r\n--{boundary}--\r\n"
    ).encode()
