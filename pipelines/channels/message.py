"""One email as data (SPEC 6 "Emails"): identifiers, addresses, threading headers, the
MIME message and its unsubscribe footer. Sending it is :mod:`pipelines.channels.smtp`'s job;
choosing which actions to send, and recording the outcome, is :mod:`pipelines.outbox`'s.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, formataddr
from typing import Any

from pipelines.errors import SequencerError
from pipelines.models import User, UsersFile

# --- identifiers ---------------------------------------------------------------------------


def domain_of(address: str) -> str:
    """The domain of an address, for the Message-ID.

    >>> domain_of("Alice <alice@acme.example>")
    'acme.example'
    """
    return address.rsplit("@", 1)[-1].strip(" >").lower() or "localhost"


def message_id(key: str, domain: str) -> str:
    """The deterministic ``Message-ID`` of an action: a retry or replay reuses it.

    >>> message_id("k1", "acme.example")
    '<6ab9f1eb8f7d3388f4f9d586f66e99fd@acme.example>'
    """
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


# --- addresses and the message -------------------------------------------------------------


class MailConfigError(SequencerError):
    """users.yaml cannot send this step (no such user, no mailbox, no tracking secret)."""


def resolve_address(users: UsersFile, spec: str, owner: User) -> tuple[str, str]:
    """``owner``, a user id, or an address → (display name, address)."""
    if spec == "owner":
        return (owner.name or "", owner.email)
    user = users.user(spec)
    if user is not None:
        return (user.name or "", user.email)
    if "@" in spec:
        return ("", spec)
    raise MailConfigError(f"{spec!r} is neither 'owner', a user id, nor an address")


def sender_user(users: UsersFile, spec: str, owner: User) -> User:
    """The user whose mailbox sends: the owner, or the user named by ``from:``."""
    user = owner if spec == "owner" else users.user(spec)
    if user is None:
        raise MailConfigError(f"from: {spec!r} is not a user id in users.yaml")
    return user


@dataclass
class Draft:
    """Everything that goes into one email; :func:`build_message` turns it into MIME."""

    message_id: str
    sender: tuple[str, str]
    to: tuple[str, str]
    subject: str
    text: str
    html: str
    reply_to: tuple[str, str] | None = None
    cc: list[tuple[str, str]] = field(default_factory=list)
    bcc: list[tuple[str, str]] = field(default_factory=list)
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    unsubscribe_url: str | None = None

    @property
    def recipients(self) -> list[str]:
        return [a for _, a in [self.to, *self.cc, *self.bcc]]


def build_message(draft: Draft, date: Any) -> EmailMessage:
    """Multipart/alternative text + HTML. Bcc is envelope-only; a header value that would
    need a line break (header injection through data) raises ``ValueError``."""
    msg = EmailMessage()
    msg["Message-ID"] = draft.message_id
    msg["Date"] = format_datetime(date)
    msg["From"] = formataddr(draft.sender)
    msg["To"] = formataddr(draft.to)
    if draft.cc:
        msg["Cc"] = ", ".join(formataddr(a) for a in draft.cc)
    if draft.reply_to and draft.reply_to[1] != draft.sender[1]:
        msg["Reply-To"] = formataddr(draft.reply_to)
    msg["Subject"] = draft.subject
    if draft.in_reply_to:
        msg["In-Reply-To"] = draft.in_reply_to
        msg["References"] = " ".join(draft.references or [draft.in_reply_to])
    if draft.unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{draft.unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(draft.text, cte="quoted-printable")
    msg.add_alternative(draft.html, subtype="html", cte="quoted-printable")
    return msg


def with_unsubscribe_footer(text: str, markup: str, url: str) -> tuple[str, str]:
    """Append an unsubscribe line unless the template already placed the link."""
    if url not in text:
        text = text.rstrip("\n") + f"\n\n--\nUnsubscribe: {url}\n"
    if url not in markup and html.escape(url) not in markup:
        markup += f'\n<p style="font-size:small"><a href="{url}">Unsubscribe</a></p>'
    return text, markup


def wire_bytes(msg: EmailMessage) -> bytes:
    """CRLF bytes for DATA. Lines may reach RFC 5322's 998: at the default 78 a long
    ``List-Unsubscribe`` URL (no place to fold) would be RFC 2047-encoded and unusable."""
    return msg.as_bytes(policy=SMTP_POLICY.clone(max_line_length=998))
