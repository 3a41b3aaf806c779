"""Building and sending one email (SPEC 6 "Emails"): headers, threading, tracking, SMTP.

Everything here works on one message; choosing which actions to send, and recording the
outcome, is :mod:`pipelines.deliver`'s job.

The SMTP transaction is driven command by command (MAIL, RCPT, DATA) instead of through
``send_message`` so that a failure can be classified exactly:

- before DATA's final reply nothing was delivered: a 4xx reply or a dropped connection is
  *transient* (retry), a 5xx reply is *permanent* (fail this action);
- a connection lost while waiting for the reply to the message data is *ambiguous*: the
  server may have queued it, so the action stays ``unknown`` for review, never re-sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import os
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, formataddr
from typing import Any, Literal

from pipelines.errors import SequencerError
from pipelines.models import Mailbox, Tracking, User, UsersFile

SMTP_TIMEOUT = 30.0


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


# --- tracking ------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(secret: bytes, payload: dict[str, Any]) -> str:
    """``base64url(json).base64url(hmac_sha256(secret, that))``: readable, tamper-evident.

    >>> verify_token(b"s", sign_token(b"s", {"k": "x"}))
    {'k': 'x'}
    """
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    sig = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    return f"{body}.{sig}"


def verify_token(secret: bytes, token: str) -> dict[str, Any]:
    """The payload of a token signed with ``secret``; ``ValueError`` when forged or damaged."""
    body, _, sig = token.partition(".")
    expected = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    if not sig or not hmac.compare_digest(sig, expected):
        raise ValueError("bad tracking token signature")
    return json.loads(_unb64(body))


@dataclass(frozen=True)
class Tracker:
    """Makes the signed URLs of one message: open pixel, click redirects, unsubscribe."""

    base_url: str
    secret: bytes
    key: str
    contact_id: str
    message_id: str

    def _url(self, kind: str, extra: dict[str, str] | None = None) -> str:
        payload = {"k": self.key, "c": self.contact_id, **(extra or {})}
        return f"{self.base_url.rstrip('/')}/{kind}/{sign_token(self.secret, payload)}"

    def open_url(self) -> str:
        return self._url("o") + ".gif"

    def click_url(self, url: str) -> str:
        return self._url("c", {"u": url})

    def unsubscribe_url(self) -> str:
        return self._url("u")


def tracker_for(
    tracking: Tracking | None, key: str, contact_id: str, msg_id: str, env: dict[str, str]
) -> Tracker:
    """The tracker for a message; a :class:`MailConfigError` when users.yaml lacks tracking."""
    if tracking is None:
        raise MailConfigError("tracking and unsubscribe links need `tracking:` in users.yaml")
    if not tracking.secret_env or not env.get(tracking.secret_env):
        raise MailConfigError(
            f"tracking secret missing: set tracking.secret_env and its variable "
            f"({tracking.secret_env or 'unset'})"
        )
    secret = env[tracking.secret_env].encode()
    return Tracker(tracking.base_url, secret, key, contact_id, msg_id)


_HREF = re.compile(r'(<a\b[^>]*?\bhref=")(https?://[^"]+)(")', re.I)


def rewrite_links(markup: str, tracker: Tracker, keep: set[str]) -> str:
    """Point every http(s) link of the HTML part at the click redirect, except ``keep``."""

    def swap(m: re.Match[str]) -> str:
        url = html.unescape(m.group(2))
        if url in keep:
            return m.group(0)
        return m.group(1) + html.escape(tracker.click_url(url)) + m.group(3)

    return _HREF.sub(swap, markup)


def add_open_pixel(markup: str, url: str) -> str:
    pixel = f'<img src="{url}" width="1" height="1" alt="" style="display:none">'
    if re.search(r"</body>", markup, re.I):
        return re.sub(r"</body>", pixel + "</body>", markup, count=1, flags=re.I)
    return markup + "\n" + pixel


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


# --- SMTP ----------------------------------------------------------------------------------

Outcome = Literal["transient", "permanent", "ambiguous"]


class SendError(SequencerError):
    """A send did not (certainly) go through; ``kind`` says what the caller may do next."""

    def __init__(self, kind: Outcome, message: str, code: int | None = None) -> None:
        self.kind = kind
        self.code = code
        super().__init__(message)


def _by_code(code: int, text: str) -> SendError:
    kind: Outcome = "permanent" if code >= 500 else "transient"
    return SendError(kind, f"SMTP {code} {text}", code)


def _reply(resp: bytes | str) -> str:
    return resp.decode(errors="replace") if isinstance(resp, bytes) else str(resp)


class SmtpPool:
    """One open SMTP connection per mailbox for a batch; dropped after any failure."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = os.environ if env is None else env
        self._conns: dict[tuple[str, int, str | None], smtplib.SMTP] = {}

    def check(self, mailbox: Mailbox | None, user_id: str) -> Mailbox:
        """The mailbox is usable: present, and its password variable set when it logs in."""
        if mailbox is None:
            raise MailConfigError(f"user {user_id!r} has no mailbox in users.yaml")
        if mailbox.username and not (mailbox.password_env and self.env.get(mailbox.password_env)):
            raise MailConfigError(
                f"mailbox of {user_id!r} logs in but its password variable "
                f"{mailbox.password_env or '(password_env unset)'} is not set"
            )
        return mailbox

    def _connect(self, mb: Mailbox) -> smtplib.SMTP:
        key = (mb.host, mb.port, mb.username)
        conn = self._conns.get(key)
        if conn is not None:
            return conn
        try:
            # both TLS modes verify the server's certificate and name against the machine's
            # trust store (OpenSSL's default paths: SSL_CERT_FILE / SSL_CERT_DIR); SMTP_SSL
            # without a context would accept any certificate
            if mb.ssl:
                context = ssl.create_default_context()
                conn = smtplib.SMTP_SSL(mb.host, mb.port, timeout=SMTP_TIMEOUT, context=context)
            else:
                conn = smtplib.SMTP(mb.host, mb.port, timeout=SMTP_TIMEOUT)
            conn.ehlo()
            if mb.starttls and not mb.ssl:
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if mb.username:
                conn.login(mb.username, self.env[mb.password_env or ""])
        except smtplib.SMTPResponseException as exc:
            raise _by_code(exc.smtp_code, _reply(exc.smtp_error)) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise SendError("transient", f"connect {mb.host}:{mb.port}: {exc!r}") from exc
        self._conns[key] = conn
        return conn

    def _drop(self, mb: Mailbox) -> None:
        conn = self._conns.pop((mb.host, mb.port, mb.username), None)
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def send(self, mb: Mailbox, envelope_from: str, msg: EmailMessage, rcpts: list[str]) -> dict:
        """Deliver ``msg`` to ``rcpts`` (the contact first, then cc and bcc); returns the cc/bcc
        recipients the server refused. A refused contact raises and nothing is sent."""
        conn = self._connect(mb)
        try:
            refused = self._envelope(conn, envelope_from, rcpts)
        except SendError:
            self._drop(mb)
            raise
        except (smtplib.SMTPException, OSError) as exc:
            self._drop(mb)
            raise SendError("transient", f"SMTP before DATA: {exc!r}") from exc
        try:
            code, resp = conn.data(wire_bytes(msg))
        except smtplib.SMTPResponseException as exc:  # the server answered: not delivered
            self._drop(mb)
            raise _by_code(exc.smtp_code, _reply(exc.smtp_error)) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self._drop(mb)
            raise SendError("ambiguous", f"connection lost during DATA: {exc!r}") from exc
        if code != 250:  # smtplib returns, not raises, the reply to the message data
            self._drop(mb)
            raise _by_code(code, _reply(resp))
        return refused

    def _envelope(self, conn: smtplib.SMTP, sender: str, rcpts: list[str]) -> dict:
        code, resp = conn.mail(sender)
        if code != 250:
            conn.rset()
            raise _by_code(code, _reply(resp))
        refused: dict[str, tuple[int, str]] = {}
        for rcpt in rcpts:
            code, resp = conn.rcpt(rcpt)
            if code not in (250, 251):
                refused[rcpt] = (code, _reply(resp))
        if rcpts and rcpts[0] in refused:  # the contact itself: sending to cc alone is wrong
            conn.rset()
            code, text = refused[rcpts[0]]
            raise _by_code(code, f"recipient {rcpts[0]} refused: {text}")
        return refused

    def close(self) -> None:
        for conn in self._conns.values():
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
        self._conns.clear()
