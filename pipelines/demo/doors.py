"""The demo's engagement doors, real servers on 127.0.0.1: the tracking server (the same
Starlette app ``sequencer serve`` runs, on uvicorn, with the demo's simulated clock) and one
pymap IMAP server per user with an ``inbox:`` in users.yaml. :class:`EngagementDoors` starts
them and hands :mod:`pipelines.demo.recipients` the two ways a recipient acts."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from pipelines.demo.recipients import Doors
from pipelines.workspace import Workspace

PYMAP = "import sys; from pymap.main import main; sys.exit(main())"  # it has no __main__


class DemoClock:
    """The instant the tracking server stamps on events: the simulated time of the request."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 1)

    def __call__(self) -> dt.datetime:
        return self.now


def _wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


class EngagementDoors(contextlib.AbstractContextManager):
    def __init__(self, project: Path, ws: Workspace, http_port: int) -> None:
        self.project, self.ws, self.http_port = project, ws, http_port
        self.clock = DemoClock()
        self._imap: list[subprocess.Popen] = []
        self._boxes: dict = {}  # user email -> logged-in imap_tools MailBox
        self._server = None
        self._thread: threading.Thread | None = None
        self.inboxes = {u.email.lower(): u.inbox for u in ws.users.users if u.inbox}

    def __enter__(self) -> EngagementDoors:
        import uvicorn

        from pipelines.engagement.server import create_app

        for inbox in {(i.port, i.username, i.password_env) for i in self.inboxes.values()}:
            port, username, password_env = inbox
            self._imap.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        PYMAP,
                        "--port",
                        str(port),
                        "--no-tls",
                        "dict",
                        "--demo-user",
                        username,
                        "--demo-password",
                        os.environ[password_env],
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )  # fmt: skip
            )
        app = create_app(self.project, clock=self.clock)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.http_port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        for port in [self.http_port, *(i.port for i in self.inboxes.values())]:
            _wait_for_port(port)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.http.close()
        for box in self._boxes.values():
            with contextlib.suppress(Exception):
                box.logout()
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        for proc in self._imap:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    def doors(self) -> Doors:
        return Doors(fetch=self._fetch, deliver=self._deliver)

    def _fetch(self, method: str, path: str, at: dt.datetime, agent: str, body) -> int:
        self.clock.now = at
        headers = {"User-Agent": agent}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return self.http.request(method, path, headers=headers, content=body).status_code

    def _deliver(self, user_email: str, raw: bytes, at: dt.datetime) -> None:
        inbox = self.inboxes.get(user_email.lower())
        if inbox is None:
            return  # the sender reads no inbox: the reply lands where nothing listens
        box = self._boxes.get(user_email.lower())
        if box is None:  # one session per inbox for the whole play (a login costs ~0.3 s)
            from imap_tools import MailBoxUnencrypted

            box = MailBoxUnencrypted(inbox.host, inbox.port)
            # APPEND waits for the server's continuation between command and literal: without
            # TCP_NODELAY each message pays a delayed-ACK round (~40 ms)
            box.client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            box.login(inbox.username, os.environ[inbox.password_env])
            self._boxes[user_email.lower()] = box
        box.append(raw, "INBOX", dt=at.replace(tzinfo=dt.UTC), flag_set=())
