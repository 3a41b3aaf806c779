"""The parts of a mail message the mailbox door reads (SPEC 10 door 3): decoded headers,
addresses, the Date in UTC, the Message-IDs it names, its text; and the classification types.
Pure functions; a header the parser chokes on is read raw, never an exception."""

from __future__ import annotations

import datetime as dt
import email
import re
from dataclasses import dataclass
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from enum import StrEnum


class Kind(StrEnum):
    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    DELIVERED = "delivered"
    OTHER = "other"


@dataclass(frozen=True)
class Classification:
    """What one message says about one recipient of our mail.

    ``candidates`` are the Message-IDs it names, best first (``matched_message_id`` is the
    first): the returned original's for a DSN or a feedback report, else In-Reply-To then
    References from the newest."""

    kind: Kind
    recipient: str | None = None
    status: str | None = None
    diagnostic: str | None = None
    matched_message_id: str | None = None
    until: str | None = None
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class Envelope:
    """The headers of a message that matching and the activity need."""

    message_id: str | None
    sender: str | None  # the From address, lower case
    date: dt.datetime | None  # naive UTC
    subject: str


def parse(raw: bytes) -> Message:
    """The message (``email.policy.default``: decoded headers, MIME-encoded subjects)."""
    return email.message_from_bytes(raw, policy=policy.default)


MSGID = re.compile(r"<[^<>\s]+>")


def header(msg: Message, name: str) -> str:
    """A header as text ('' when absent), whitespace folded; one the parser chokes on is read
    raw (its encoded words decoded when they can be).

    >>> msg = parse(b"Subject: =?utf-8?Q?R=C3=A9ponse?=\\r\\n   automatique\\r\\n\\r\\n")
    >>> header(msg, "Subject")
    'Réponse automatique'
    """
    try:
        value = msg.get(name)
    except (ValueError, IndexError, TypeError, AttributeError, LookupError):
        value = _raw_header(msg, name)
    return " ".join(str(value or "").split())


def _raw_header(msg: Message, name: str) -> str:
    raw = next((str(v) for k, v in msg.raw_items() if k.lower() == name.lower()), "")
    try:
        return str(make_header(decode_header(raw)))
    except (ValueError, IndexError, TypeError, LookupError, UnicodeError):
        return raw


def envelope(msg: Message) -> Envelope:
    ids = MSGID.findall(header(msg, "Message-ID"))
    return Envelope(
        message_id=ids[0] if ids else None,
        sender=first_address(header(msg, "From")),
        date=message_date(msg),
        subject=header(msg, "Subject"),
    )


def first_address(value: str) -> str | None:
    """The first address of an address header, lower case.

    >>> first_address('"Lee, Ann" <Ann@Example.com>'), first_address("")
    ('ann@example.com', None)
    """
    for _, addr in getaddresses([value]):
        if "@" in addr:
            return addr.strip().lower()
    return None


def message_date(msg: Message) -> dt.datetime | None:
    """The Date header as naive UTC (a date without an offset is UTC); None if unreadable."""
    text = header(msg, "Date")
    try:
        when = parsedate_to_datetime(text) if text else None
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when if 1990 <= when.year <= 2200 else None


def referenced_ids(msg: Message) -> tuple[str, ...]:
    """In-Reply-To's ids, then References' from the newest (the last) to the oldest."""
    ids = MSGID.findall(header(msg, "In-Reply-To"))
    ids += reversed(MSGID.findall(header(msg, "References")))
    return tuple(dict.fromkeys(ids))


def body_text(msg: Message, limit: int = 20_000) -> str:
    """The first text/plain part (else text/html without tags), at most ``limit`` chars."""
    html = None
    for part in msg.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain":
            return content(part)[:limit]
        if ctype == "text/html" and html is None:
            html = re.sub(r"<[^>]*>", " ", content(part))
    return (html or "")[:limit]


def content(part: Message) -> str:
    try:
        return str(part.getcontent())
    except (LookupError, ValueError, AttributeError, KeyError):
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
