"""A real SMTP server on 127.0.0.1 (aiosmtpd) for the tests and the demo, with failure knobs.

In a test::

    from pipelines.demo.smtp_sink import SmtpSink    # or the ``smtp_sink`` fixture of tests/
    with SmtpSink() as sink:                 # SmtpSink(starttls=ctx) / SmtpSink(ssl=ctx): TLS
        sink.reject["bad@x.example"] = "550 5.1.1 no such user"
        sink.tempfail = 2                    # the next 2 DATA commands get 451
        sink.on_data = lambda envelope: ...  # runs when DATA arrives, before the reply
        ...
        sink.messages[0].message["Message-ID"]

Standalone, for subprocess tests (prints ``PORT <n>`` and writes each message to DIR)::

    python -m pipelines.demo.smtp_sink --maildir DIR [--port N] [--delay SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import email
import socket
import ssl as ssl_
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: str | None = None  # the TLS version it came over ("TLSv1.3"), None in plain text

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=default_policy)  # type: ignore[return-value]


class SinkHandler:
    """Stores every accepted message; can refuse recipients, tempfail, delay or drop."""

    def __init__(self, maildir: Path | None = None) -> None:
        self.messages: list[Received] = []
        self.reject: dict[str, str] = {}  # recipient → full reply, e.g. "550 5.1.1 unknown"
        self.tempfail = 0  # reply 451 to the next N DATA commands
        self.delay = 0.0  # seconds to wait before answering DATA
        self.drop = 0  # close the connection instead of answering the next N DATA
        self.attempts = 0  # DATA commands seen
        self.on_data: Callable[[Any], None] | None = None  # called with the envelope at DATA
        self.maildir = maildir
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.reject:
            return self.reject[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.on_data is not None:
            self.on_data(envelope)
        with self.lock:
            self.attempts += 1
            if self.tempfail > 0:
                self.tempfail -= 1
                return "451 4.3.0 try again later"
            if self.drop > 0:
                self.drop -= 1
                self._store(envelope, server)  # delivered, but the client never hears so
                server.transport.close()
                return "250 OK"
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self._store(envelope, server)
        return "250 OK"

    def _store(self, envelope: Any, server: Any) -> None:
        tls = server.transport.get_extra_info("ssl_object")
        received = Received(
            envelope.mail_from,
            list(envelope.rcpt_tos),
            envelope.content,
            tls.version() if tls is not None else None,
        )
        self.messages.append(received)
        if self.maildir is not None:
            path = self.maildir / f"{len(self.messages):06d}.eml"
            path.write_bytes(received.data)


class SmtpSink:
    """A started aiosmtpd controller; ``auth=(user, password)`` requires that login;
    ``starttls=context`` offers and requires STARTTLS, ``ssl=context`` speaks TLS from the
    first byte (implicit TLS, as on port 465), both with that server-side context."""

    def __init__(
        self,
        maildir: Path | None = None,
        port: int | None = None,
        auth: tuple | None = None,
        *,
        starttls: ssl_.SSLContext | None = None,
        ssl: ssl_.SSLContext | None = None,
    ):
        self.handler = SinkHandler(maildir)
        self.port = port or free_port()
        kwargs: dict[str, Any] = {}
        if auth:
            kwargs = {
                "auth_require_tls": False,
                "auth_required": True,
                "authenticator": _authenticator(*auth),
            }
        if starttls is not None:
            kwargs.update(tls_context=starttls, require_starttls=True)
        if ssl is not None:
            kwargs["ssl_context"] = ssl
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def __getattr__(self, name: str) -> Any:  # messages, reject, tempfail, delay, drop…
        return getattr(self.__dict__["handler"], name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("handler", "port", "controller"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.handler, name, value)

    def message_ids(self) -> list[str]:
        return [m.message["Message-ID"] for m in self.messages]


def _authenticator(user: str, password: str):
    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (user, password)
        return AuthResult(success=ok)

    return check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maildir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    args.maildir.mkdir(parents=True, exist_ok=True)
    with SmtpSink(args.maildir, args.port or None) as sink:
        sink.delay = args.delay
        print(f"PORT {sink.port}", flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
