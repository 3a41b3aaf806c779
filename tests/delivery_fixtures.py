"""The send tests' workspace (users alice and bob, sequence ``outbound``) and action rows.
The SMTP sink fixture is in ``tests/conftest.py``."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb

from pipelines.outbox.send import FaultHook
from tests.workspace_helpers import write_workspace as build_workspace

SECRET = "s3cret-tracking"
ENV = {"TRACKING_SECRET": SECRET, "SMS_TOKEN": "sms-token", "BOB_SMTP_PASSWORD": "hunter2"}

USERS = """\
users:
  - id: alice
    email: alice@acme.example
    name: Alice Smith
    role: rep
    timezone: America/New_York
    daily_email_limit: {alice_limit}
    mailbox: {{host: 127.0.0.1, port: {port}, starttls: false}}
  - id: bob
    email: bob@acme.example
    name: Bob Jones
    role: rep
    timezone: Europe/Berlin
    daily_email_limit: {bob_limit}
    mailbox: {{host: 127.0.0.1, port: {bob_port}, starttls: false{bob_login}}}
roles:
  rep: [view_sequences, create_sequences]
sms_gateway: {{url: "{sms_url}", token_env: SMS_TOKEN}}
tracking: {{base_url: "https://t.acme.example", secret_env: TRACKING_SECRET}}
"""

SEQUENCE = """\
name: outbound
owner: alice
stale_after_hours: {stale}
steps:
  - id: intro
    day: 1
    action: email
    template: intro.md.j2
    subject: "Quick question, {{{{ contact.first_name | default('there') }}}}"
    cc: [manager@acme.example]
    bcc: [bob]
    reply_to: bob
    track_opens: true
    track_clicks: true
    unsubscribe_link: true
  - {{id: bump, day: 3, action: email, template: bump.md.j2, subject: "unused", thread: reply}}
  - {{id: remind, day: 4, action: email_reminder, template: bump.md.j2, subject: "Checking in"}}
  - id: call
    day: 5
    action: call_reminder
    note: "Call {{{{ contact.first_name }}}} at {{{{ contact.phone | default('?') }}}}"
  - {{id: text, day: 6, action: sms, body: "Hi {{{{ contact.first_name }}}}, {{{{ owner.name }}}}"}}
  - {{id: broken, day: 7, action: email, template: missing.md.j2, subject: "x"}}
  - {{id: html, day: 8, action: email, template: offer.html.j2, subject: "Offer",
      from: bob, unsubscribe_link: false}}
"""

TEMPLATES = {
    "intro.md.j2": """\
        Hi {{ contact.first_name }},

        See [our deck](https://acme.example/deck?a=1&b=2) for {{ account.name | default('you') }}.
        Unsubscribe here: {{ links.unsubscribe_url }}

        {{ owner.name }}
        """,
    "bump.md.j2": "Just bumping this, {{ contact.first_name }}.\n",
    "missing.md.j2": "Hi {{ contact.nickname }}\n",
    "offer.html.j2": "<p>Hello {{ contact.first_name }}</p>"
    '<p><a href="https://acme.example/offer">offer</a></p>',
}


def write_workspace(
    root: Path,
    port: int,
    *,
    alice_limit: int = 500,
    bob_limit: int = 500,
    stale: float = 24,
    sms_url: str = "http://127.0.0.1:9/send",
    bob_port: int | None = None,
    bob_login: bool = False,
) -> Path:
    """A workspace with users alice and bob (mailboxes on the sink) and sequence ``outbound``."""
    login = ", username: bob, password_env: BOB_SMTP_PASSWORD" if bob_login else ""
    users = USERS.format(
        port=port,
        bob_port=bob_port or port,
        alice_limit=alice_limit,
        bob_limit=bob_limit,
        sms_url=sms_url,
        bob_login=login,
    )
    return build_workspace(
        root,
        {"outbound": SEQUENCE.format(stale=stale)},
        users=users,
        templates={name: textwrap.dedent(text) for name, text in TEMPLATES.items()},
    )


CONTACTS = [
    # contact_id, email, first_name, last_name, account_id, phone, unsubscribed
    ("c1", "ann@example.com", "Ann", "Lee", "a1", "+15550001", False),
    ("c2", "bo@example.com", "<script>alert(1)</script>", "Bo", None, None, False),
    ("c3", "cy@example.com", "Cy", None, "a1", "+15550003", False),
    ("c4", "di@example.com", "Di", "Ma", None, None, False),
    ("c5", "ed@example.com", "Ed", None, None, None, False),
    ("c6", "fay@example.com", "Fay", None, None, None, False),
]


def seed_contacts(con: duckdb.DuckDBPyConnection, rows=CONTACTS) -> None:
    con.execute("alter table contacts add column if not exists phone varchar")
    con.execute("insert into accounts (account_id, name) values ('a1', 'Acme Corp')")
    for cid, email, first, last, account, phone, unsub in rows:
        con.execute(
            "insert into contacts (contact_id, email, first_name, last_name, account_id,"
            " owner_id, phone, unsubscribed) values (?, ?, ?, ?, ?, 'alice', ?, ?)",
            [cid, email, first, last, account, phone, unsub],
        )


def key_of(contact: str, step: str, sequence: str = "outbound") -> str:
    return f"{sequence}|{contact}|{step}|e-{contact}"


def add_action(
    con: duckdb.DuckDBPyConnection,
    contact: str,
    step: str,
    at: dt.datetime,
    *,
    action: str = "email",
    status: str = "due",
    day: int = 1,
    sequence: str = "outbound",
) -> str:
    """Insert an action row as the tick would; returns its idempotency key."""
    key = key_of(contact, step, sequence)
    con.execute(
        "insert into actions (idempotency_key, sequence, contact_id, enrollment_id, step, day,"
        " action, occurrence_on, occurrence_at, status, attempts, decided_at)"
        " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
        [key, sequence, contact, f"e-{contact}", step, day, action, at.date(), at, status, at],
    )
    return key


def action_rows(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    cur = con.execute("select * from actions order by idempotency_key")
    names = [d[0] for d in cur.description]
    return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def statuses(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {k: v["status"] for k, v in action_rows(con).items()}


def kill_at(spec: str) -> FaultHook:
    """The crash tests' fault hook: ``"after_claim:3"`` SIGKILLs this process at the 3rd claim;
    several points comma-separated (``after_claim``, ``after_send``, ``after_record``);
    ``""`` never fires."""
    at = {p: int(n) for p, _, n in (s.partition(":") for s in spec.split(",") if s)}
    seen: dict[str, int] = {}

    def hook(point: str, key: str) -> None:
        seen[point] = seen.get(point, 0) + 1
        if seen[point] == at.get(point):
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


class Gateway:
    """A real SMS gateway over HTTP on 127.0.0.1: records every POST; answers the next codes
    in ``replies`` (then 200 with an id)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.replies: list[int] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                gateway.requests.append(
                    {
                        "path": self.path,
                        "auth": self.headers.get("Authorization"),
                        "content_type": self.headers.get("Content-Type"),
                        "json": json.loads(body),
                    }
                )
                code = gateway.replies.pop(0) if gateway.replies else 200
                payload = json.dumps({"id": f"gw-{len(gateway.requests)}"}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Gateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
