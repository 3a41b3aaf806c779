"""One email message → what it is (SPEC 10 door 3): pure functions, no database.

The order matters: an RFC 3464 delivery-status report first (DSNs usually carry
``Auto-Submitted: auto-replied``, so they must not be taken for auto-replies), then an RFC 5965
feedback report (a complaint), then an auto-reply (RFC 3834 headers or an out-of-office
subject), else a reply. A DSN gives one classification per recipient; any other message one.

>>> raw = b"From: Ann <ann@example.com>\\r\\nSubject: Re: Hi\\r\\nIn-Reply-To: <k1@acme.example>"
>>> [(str(c.kind), c.recipient, c.matched_message_id) for c in classify(raw + b"\\r\\n\\r\\nYes!")]
[('reply', 'ann@example.com', '<k1@acme.example>')]
"""

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

from pipelines.engagement.until import read_until


class Kind(StrEnum):
    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    DELIVERED = "delivered"
    OTHER = "other"


ACTIVITY_TYPE = {
    Kind.REPLY: "email_replied",
    Kind.AUTO_REPLY: "email_auto_replied",
    Kind.BOUNCE: "email_bounced",
    Kind.SOFT_BOUNCE: "email_soft_bounced",
    Kind.COMPLAINT: "email_complained",
    Kind.DELIVERED: "email_delivered",
    Kind.OTHER: "mailbox:other",  # not an activity type: quarantined when it matches a send
}
"""The activity each kind becomes (SPEC 10)."""


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


def classify(raw: bytes) -> list[Classification]:
    """Classify the bytes of one RFC 5322 message (see :func:`classify_message`)."""
    return classify_message(parse(raw))


def classify_message(msg: Message) -> list[Classification]:
    """DSN (per recipient) → feedback report → auto-reply → reply, in that order.

    >>> msg = parse(b"From: x@y.example\\r\\nSubject: Automatic reply: Hi\\r\\n\\r\\nAway.")
    >>> classify_message(msg)[0].kind
    <Kind.AUTO_REPLY: 'auto_reply'>
    """
    report = _report_type(msg)
    if report == "delivery-status":
        found = _dsn(msg)
        if found:
            return found
    if report == "feedback-report":
        return [_complaint(msg)]
    env = envelope(msg)
    candidates = referenced_ids(msg)
    matched = candidates[0] if candidates else None
    if is_auto_reply(msg, env.subject):
        until = read_until(env.subject, body_text(msg), env.date)
        return [Classification(Kind.AUTO_REPLY, env.sender, None, None, matched, until, candidates)]
    return [Classification(Kind.REPLY, env.sender, None, None, matched, None, candidates)]


# --- headers ---------------------------------------------------------------------------------

_MSGID = re.compile(r"<[^<>\s]+>")


def header(msg: Message, name: str) -> str:
    """A header as text ('' when absent), whitespace folded; one the parser chokes on is read
    raw (its encoded words decoded when they can be).

    >>> header(parse(b"Subject: =?utf-8?Q?R=C3=A9ponse?=\\r\\n   automatique\\r\\n\\r\\n"), "Subject")
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
    ids = _MSGID.findall(header(msg, "Message-ID"))
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
    ids = _MSGID.findall(header(msg, "In-Reply-To"))
    ids += reversed(_MSGID.findall(header(msg, "References")))
    return tuple(dict.fromkeys(ids))


def _report_type(msg: Message) -> str | None:
    if msg.get_content_type() != "multipart/report":
        return None
    return (msg.get_param("report-type") or "").lower() or None


# --- auto-replies ----------------------------------------------------------------------------

OOO_SUBJECT = re.compile(
    r"out of (the )?office|\bautomatic reply\b|^\s*auto:|\bauto[- ]?reply\b|\bautoreply\b"
    r"|\bauto[- ]?response\b|\bautoresponder\b|\bon vacation\b"
    r"|abwesenheitsnotiz|automatische antwort|\babwesend\b"
    r"|r[ée]ponse automatique|message d'absence|\babsence\b|\babsent\b"
    r"|respuesta autom[áa]tica|fuera de la oficina|\bausente\b"
    r"|\bafwezig\b|automatisch antwoord|niet aanwezig"
    r"|risposta automatica|fuori ufficio|\bassente\b"
    r"|resposta autom[áa]tica|fora do escrit[óo]rio",
    re.IGNORECASE,
)
"""Out-of-office subjects: English, German, French, Spanish, Dutch, Italian, Portuguese."""


def is_auto_reply(msg: Message, subject: str) -> bool:
    """RFC 3834 ``Auto-Submitted`` other than ``no``, ``X-Autoreply``, ``X-Autorespond``,
    ``Precedence: auto_reply|bulk|junk``, or an out-of-office subject.

    >>> is_auto_reply(parse(b"Auto-Submitted: no\\r\\n\\r\\n"), "Re: Hi")
    False
    >>> is_auto_reply(parse(b"Precedence: bulk\\r\\n\\r\\n"), "Re: Hi")
    True
    """
    submitted = header(msg, "Auto-Submitted").split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return True
    if header(msg, "X-Autoreply") or header(msg, "X-Autorespond"):
        return True
    if header(msg, "Precedence").lower() in ("auto_reply", "bulk", "junk"):
        return True
    return bool(OOO_SUBJECT.search(subject))


def body_text(msg: Message, limit: int = 20_000) -> str:
    """The first text/plain part (else text/html without tags), at most ``limit`` chars."""
    html = None
    for part in msg.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain":
            return _content(part)[:limit]
        if ctype == "text/html" and html is None:
            html = re.sub(r"<[^>]*>", " ", _content(part))
    return (html or "")[:limit]


def _content(part: Message) -> str:
    try:
        return str(part.get_content())
    except (LookupError, ValueError, AttributeError, KeyError):
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


# --- delivery-status reports (RFC 3464) ------------------------------------------------------

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"(?:^|;\s*|\s)([245])\d\d\b")
_NO_SUCH_USER = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient)|does not exist|"
    r"recipient (address )?rejected|unknown recipient|invalid recipient|mailbox unavailable",
    re.IGNORECASE,
)


def _dsn(msg: Message) -> list[Classification]:
    """One classification per recipient block of the message/delivery-status part."""
    blocks = _status_blocks(msg)
    original = _returned_headers(msg)
    candidates = tuple(dict.fromkeys([*original, *referenced_ids(msg)]))
    matched = candidates[0] if candidates else None
    out = []
    for block in blocks[1:]:  # the first block is per message, the others per recipient
        recipient = _recipient(block)
        if recipient is None:
            continue
        kind, status = dsn_kind(
            header(block, "Action"), header(block, "Status"), header(block, "Diagnostic-Code")
        )
        diagnostic = header(block, "Diagnostic-Code") or None
        out.append(Classification(kind, recipient, status, diagnostic, matched, None, candidates))
    return out


def dsn_kind(action: str, status: str, diagnostic: str = "") -> tuple[Kind, str | None]:
    """A recipient's Action and Status → (kind, status).

    >>> dsn_kind("failed", "5.1.1"), dsn_kind("failed", "5.7.1"), dsn_kind("delayed", "4.2.2")
    ((<Kind.BOUNCE: 'bounce'>, '5.1.1'), (<Kind.SOFT_BOUNCE: 'soft_bounce'>, '5.7.1'), \
(<Kind.SOFT_BOUNCE: 'soft_bounce'>, '4.2.2'))
    >>> dsn_kind("failed", "5.0.0", "smtp; 550 5.0.0 <x@y>: User unknown")[0]
    <Kind.BOUNCE: 'bounce'>
    """
    action = action.split(";")[0].strip().lower()
    found = _STATUS.search(status) or _STATUS.search(diagnostic)
    code = ".".join(found.groups()) if found else None
    if code is None and (smtp := _SMTP_CODE.search(diagnostic)):
        code = f"{smtp.group(1)}.0.0"
    if action == "delivered":
        return Kind.DELIVERED, code
    if action == "delayed" or (code or "").startswith("4"):
        return Kind.SOFT_BOUNCE, code
    if action != "failed":
        return Kind.OTHER, code  # relayed, expanded: nothing about the address
    return _failed_kind(code, diagnostic), code


def _failed_kind(code: str | None, diagnostic: str) -> Kind:
    """A permanent failure: the address is gone (bounce) or the message was refused
    (soft bounce: policy blocks 5.7.x, message size 5.3.4, content 5.6.x, mailbox full 5.2.2;
    docs/decisions.md)."""
    if code is None:
        return Kind.BOUNCE if _NO_SUCH_USER.search(diagnostic) else Kind.SOFT_BOUNCE
    klass, subject, _ = code.split(".")
    if subject in ("1", "5") or code == "5.2.1":
        return Kind.BOUNCE
    if code == "5.0.0" and _NO_SUCH_USER.search(diagnostic):
        return Kind.BOUNCE
    return Kind.SOFT_BOUNCE


def _status_blocks(msg: Message) -> list[Message]:
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            if isinstance(payload, list):
                return payload
            return _blocks_from_text(str(payload))
    return []


def _blocks_from_text(text: str) -> list[Message]:
    return [email.message_from_string(b.strip() + "\n") for b in re.split(r"\n\s*\n", text)]


def _recipient(block: Message) -> str | None:
    for name in ("Final-Recipient", "Original-Recipient"):
        value = header(block, name)
        if value:
            return first_address(value.split(";", 1)[-1]) or value.split(";", 1)[-1].strip()
    return None


def _returned_headers(msg: Message) -> list[str]:
    """The Message-ID of the returned original (text/rfc822-headers or message/rfc822)."""
    original = _returned_original(msg)
    return _MSGID.findall(header(original, "Message-ID")) if original is not None else []


# --- feedback reports (RFC 5965) -------------------------------------------------------------

COMPLAINT_TYPES = frozenset({"abuse", "opt-out", "fraud", "virus"})


def _complaint(msg: Message) -> Classification:
    """A feedback report: abuse, opt-out (also fraud, virus) → complaint; not-spam,
    auth-failure and the rest → other. The recipient is Original-Rcpt-To, else the
    returned original's To."""
    fields = next(
        (p for p in msg.walk() if p.get_content_type() == "message/feedback-report"), None
    )
    report = fields.get_payload()[0] if fields and isinstance(fields.get_payload(), list) else None
    feedback = header(report, "Feedback-Type").lower() if report else ""
    kind = Kind.COMPLAINT if feedback in COMPLAINT_TYPES else Kind.OTHER
    recipient = first_address(header(report, "Original-Rcpt-To")) if report else None
    original = _returned_original(msg)
    if recipient is None and original is not None:
        recipient = first_address(header(original, "To"))
    ids = _MSGID.findall(header(original, "Message-ID")) if original is not None else []
    candidates = tuple(dict.fromkeys([*ids, *referenced_ids(msg)]))
    matched = candidates[0] if candidates else None
    return Classification(kind, recipient, feedback or None, None, matched, None, candidates)


def _returned_original(msg: Message) -> Message | None:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "text/rfc822-headers":
            return email.message_from_string(_content(part).lstrip() + "\n")
        if ctype == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            return inner if isinstance(inner, Message) else None
    return None
