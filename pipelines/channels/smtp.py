"""SMTP (SPEC 6 "Emails"): one connection per mailbox for a batch, and how a failure is
classified.

The SMTP transaction is driven command by command (MAIL, RCPT, DATA) instead of through
``send_message`` so that a failure can be classified exactly:

- before DATA's final reply nothing was delivered: a 4xx reply or a dropped connection is
  *transient* (retry), a 5xx reply is *permanent* (fail this action);
- a connection lost while waiting for the reply to the message data is *ambiguous*: the
  server may have queued it, so the action stays ``unknown`` for review, never re-sent.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from email.message import EmailMessage
from typing import Literal

from pipelines.channels.message import MailConfigError, wire_bytes
from pipelines.errors import SequencerError
from pipelines.models import Mailbox

SMTP_TIMEOUT = 30.0

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
