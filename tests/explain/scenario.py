"""The workspace of the explain tests (``why``, ``preview --render``, the preview gap).

Sequence ``outbound`` (alice; 09:30 New York = 14:30Z in early March): an audience of two
``where`` lines, prevent_duplicate_emails, exclusive with ``nurture``; steps intro (email,
day 1, ``when`` not yet contacted), bump (email reply, day 2, ``when`` opened the previous
email), call (task, day 2), wrap (email, day 4). Contacts, all created 2026-01-01:

- ``c_enter`` lead 80: enters at T1, intro sent; at T2 bump skipped (no open) and the call
  task created (then done); replies; exits at T3 (replied);
- ``c_stage`` customer 80: out by ``lifecycle_stage = 'lead'``;
- ``c_score`` lead 10: out by ``lead_score >= 50``;
- ``c_excl`` lead 77: out by exclusive_with (``nurture`` enrols score 77 at the same instant,
  and sorts first);
- ``c_noemail`` lead 80, no email: out (outbound has email steps);
- ``c_unsub`` lead 80, unsubscribed before T1: out;
- ``c_zdup`` lead 80, ENTER@x.example (c_enter's address): a duplicate email.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipelines.db import connect
from tests.tick_helpers import activity, contact, insert
from tests.workspace_helpers import write_workspace

SECRET = "why-secret"
ENV = {"TRACKING_SECRET": SECRET}
T1 = dt.datetime(2026, 3, 2, 14, 30)  # Monday 09:30 New York
T2, T3 = T1 + dt.timedelta(days=1), T1 + dt.timedelta(days=2)
REPLY_AT = T2 + dt.timedelta(hours=5)

USERS = """\
users:
  - id: alice
    email: alice@acme.example
    name: Alice Smith
    role: rep
    timezone: America/New_York
    daily_email_limit: 100
    mailbox: {{host: 127.0.0.1, port: {port}, starttls: false}}
  - {{id: bruno, email: bruno@acme.example, role: rep, timezone: Europe/Berlin}}
roles:
  rep: [view_sequences, create_sequences]
tracking: {{base_url: "https://t.acme.example", secret_env: TRACKING_SECRET}}
"""

OUTBOUND = """\
name: outbound
owner: alice
schedule: {time: "09:30", timezone: America/New_York}
audience:
  where: ["lifecycle_stage = 'lead'", "lead_score >= 50"]
  prevent_duplicate_emails: true
exclusive_with: [nurture]
steps:
  - id: intro
    day: 1
    action: email
    template: intro.md.j2
    subject: "Quick question, {{ contact.first_name }}"
    when: ["last_contacted_mode = 'Not yet contacted'"]
    track_opens: true
    track_clicks: true
    unsubscribe_link: true
  - id: bump
    day: 2
    action: email
    template: intro.md.j2
    thread: reply
    when: [enrollment.opened_previous_email]
  - {id: call, day: 2, action: call_reminder, note: "Call {{ contact.first_name }}"}
  - {id: wrap, day: 4, action: email, template: intro.md.j2, subject: "Last note"}
"""

NURTURE = """\
name: nurture
owner: alice
schedule: {time: "09:30", timezone: America/New_York}
audience: {where: ["lead_score = 77"]}
steps: [{id: later, day: 5, action: call_reminder, note: "Call"}]
"""

OTHER = """\
name: brunos
owner: bruno
audience: {where: ["lead_score = 1"]}
steps: [{id: later, day: 1, action: call_reminder, note: "Call"}]
"""

TEMPLATES = {
    "intro.md.j2": "Hi {{ contact.first_name }},\n\nSee [our deck](https://acme.example/deck)."
    "\n\nAlice\n"
}

KEPT_OUT = {
    "c_stage": "where: lifecycle_stage = 'lead'",
    "c_score": "where: lead_score >= 50",
}


def build(root: Path, smtp_port: int) -> tuple[Path, Path]:
    """The workspace and its seeded database (no tick yet)."""
    write_workspace(
        root,
        {"outbound": OUTBOUND, "nurture": NURTURE, "brunos": OTHER},
        users=USERS.format(port=smtp_port),
        templates=TEMPLATES,
    )
    db = root / ".sequencer" / "sequencer.duckdb"
    con = connect(db)
    con.execute("alter table contacts add column lifecycle_stage varchar")
    con.execute("alter table contacts add column lead_score integer")
    leads = [
        ("c_enter", "enter@x.example", "lead", 80),
        ("c_stage", "", "customer", 80),
        ("c_score", "", "lead", 10),
        ("c_excl", "", "lead", 77),
        ("c_noemail", None, "lead", 80),
        ("c_unsub", "", "lead", 80),
        ("c_zdup", "ENTER@x.example", "lead", 80),
    ]
    insert(
        con,
        "contacts",
        [
            contact(cid, email, lifecycle_stage=stage, lead_score=score)
            for cid, email, stage, score in leads
        ],
    )
    insert(con, "activities", [activity("c_unsub", "unsubscribed", "2026-02-01 10:00")])
    con.close()
    return root, db


def add_reply(db: Path) -> None:
    con = connect(db)
    insert(
        con,
        "activities",
        [activity("c_enter", "email_replied", f"{REPLY_AT:%Y-%m-%d %H:%M}", sequence="outbound")],
    )
    con.close()


def fingerprint(db: Path) -> list:
    """Every table's row count and an order-independent hash of its rows (the database file,
    not temp tables)."""
    con = connect(db, read_only=True)
    try:
        tables = [r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()]
        query = "select count(*), sum(hash(t)::hugeint) from {} as t"
        return [(t, *con.execute(query.format(t)).fetchone()) for t in sorted(tables)]
    finally:
        con.close()
