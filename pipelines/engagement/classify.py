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

import re
from email.message import Message

from pipelines.engagement.headers import (
    Classification,
    Envelope,
    Kind,
    body_text,
    envelope,
    header,
    parse,
    referenced_ids,
)
from pipelines.engagement.reports import delivery_report, feedback_report, report_type
from pipelines.engagement.until import read_until

__all__ = [
    "ACTIVITY_TYPE", "Classification", "Envelope", "Kind", "classify", "classify_message",
    "envelope", "is_auto_reply", "parse", "referenced_ids",
]  # fmt: skip

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


def classify(raw: bytes) -> list[Classification]:
    """Classify the bytes of one RFC 5322 message (see :func:`classify_message`)."""
    return classify_message(parse(raw))


def classify_message(msg: Message) -> list[Classification]:
    """DSN (per recipient) → feedback report → auto-reply → reply, in that order.

    >>> msg = parse(b"From: x@y.example\\r\\nSubject: Automatic reply: Hi\\r\\n\\r\\nAway.")
    >>> classify_message(msg)[0].kind
    <Kind.AUTO_REPLY: 'auto_reply'>
    """
    report = report_type(msg)
    if report == "delivery-status":
        found = delivery_report(msg)
        if found:
            return found
    if report == "feedback-report":
        return [feedback_report(msg)]
    env = envelope(msg)
    candidates = referenced_ids(msg)
    matched = candidates[0] if candidates else None
    if is_auto_reply(msg, env.subject):
        until = read_until(env.subject, body_text(msg), env.date)
        return [Classification(Kind.AUTO_REPLY, env.sender, None, None, matched, until, candidates)]
    return [Classification(Kind.REPLY, env.sender, None, None, matched, None, candidates)]


# --- auto-replies ----------------------------------------------------------------------------

OOO_SUBJECT = re.compile(
    # phrases that say it anywhere in the subject ("Automatic reply: Quick question")
    r"out of (the )?office|\bautomatic reply\b|\bauto[- ]?reply\b|\bautoreply\b"
    r"|\bauto[- ]?response\b|\bautoresponder\b"
    r"|abwesenheitsnotiz|automatische antwort|r[ée]ponse automatique|message d'absence"
    r"|respuesta autom[áa]tica|fuera de la oficina|automatisch antwoord|niet aanwezig"
    r"|risposta automatica|fuori ufficio|resposta autom[áa]tica|fora do escrit[óo]rio"
    # single words only as the subject's first word: "Re: Absence management demo" is a reply
    r"|^\s*(auto:|(on vacation|abwesend|absence|absent|ausente|afwezig|assente)\b)",
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
