"""A real IMAP server for the mailbox tests: pymap's in-memory ``dict`` backend in a
subprocess on a free 127.0.0.1 port (each process has its own UIDVALIDITY), and the
imap_tools calls that put messages in and read their flags."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

from imap_tools import MailBoxUnencrypted

MAIL = Path(__file__).resolve().parent.parent / "fixtures" / "mail"
FIXTURE_ID = "<6ab9f1eb8f7d3388f4f9d586f66e99fd@acme.example>"
PYMAP = "import sys; from pymap.main import main; sys.exit(main())"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Imap(contextlib.AbstractContextManager):
    """``with Imap(user, password) as imap:`` a pymap server with one user (INBOX only)."""

    def __init__(self, user: str, password: str, port: int | None = None) -> None:
        self.user, self.password = user, password
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Imap:
        args = ["--port", str(self.port), "--no-tls", "dict"]
        args += ["--demo-user", self.user, "--demo-password", self.password]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PYMAP, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"pymap exited with {self.proc.returncode}")
            time.sleep(0.05)
        raise RuntimeError("pymap does not accept connections")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def box(self):
        return MailBoxUnencrypted("127.0.0.1", self.port).login(self.user, self.password)

    def append(self, *messages: bytes) -> None:
        with self.box() as mb:
            for raw in messages:
                mb.append(raw, "INBOX", flag_set=())

    def flags(self) -> dict[str, tuple[str, ...]]:
        """UID → flags of every INBOX message (read with BODY.PEEK: changes nothing)."""
        with self.box() as mb:
            return {m.uid: m.flags for m in mb.fetch(mark_seen=False, headers_only=True)}


def fixture(name: str, replace: dict[str, str]) -> bytes:
    """A fixture message of tests/fixtures/mail with some text replaced (addresses, ids)."""
    text = (MAIL / name).read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text, (name, old)
        text = text.replace(old, new)
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
