"""Reports, not replies: RFC 3464 delivery-status notifications (one classification per
recipient) and RFC 5965 feedback reports (complaints). Pure functions."""

from __future__ import annotations

import email
import re
from email.message import Message

from pipelines.engagement.headers import (
    MSGID,
    Classification,
    Kind,
    content,
    first_address,
    header,
    referenced_ids,
)


def report_type(msg: Message) -> str | None:
    if msg.get_content_type() != "multipart/report":
        return None
    return (msg.get_param("report-type") or "").lower() or None


# --- delivery-status reports (RFC 3464) ------------------------------------------------------

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"(?:^|;\s*|\s)([245])\d\d\b")
_NO_SUCH_USER = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient)|does not exist|"
    r"recipient (address )?rejected|unknown recipient|invalid recipient|mailbox unavailable",
    re.IGNORECASE,
)


def delivery_report(msg: Message) -> list[Classification]:
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
    return MSGID.findall(header(original, "Message-ID")) if original is not None else []


# --- feedback reports (RFC 5965) -------------------------------------------------------------

COMPLAINT_TYPES = frozenset({"abuse", "opt-out", "fraud", "virus"})


def feedback_report(msg: Message) -> Classification:
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
    ids = MSGID.findall(header(original, "Message-ID")) if original is not None else []
    candidates = tuple(dict.fromkeys([*ids, *referenced_ids(msg)]))
    matched = candidates[0] if candidates else None
    return Classification(kind, recipient, feedback or None, None, matched, None, candidates)


def _returned_original(msg: Message) -> Message | None:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "text/rfc822-headers":
            return email.message_from_string(content(part).lstrip() + "\n")
        if ctype == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            return inner if isinstance(inner, Message) else None
    return None
