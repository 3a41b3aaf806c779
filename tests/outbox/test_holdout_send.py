"""Holdout contacts never reach the SMTP sink (SPEC 11): a real tick, a real send to a real
SMTP server on 127.0.0.1, then the metrics: never contacted, never counted as sent, no task,
no part of the owner's daily limit."""

from __future__ import annotations

import textwrap

from pipelines.metrics import build_metrics
from pipelines.outbox.send import send_due
from pipelines.tick.experiments import bucket
from pipelines.workspace import load_workspace
from tests.delivery_fixtures import CONTACTS, ENV, TEMPLATES, USERS, seed_contacts
from tests.tick_helpers import open_db, tick, ts
from tests.workspace_helpers import write_workspace

HELD = """\
name: outbound
owner: alice
holdout_percent: 40
audience: {where: ["true"]}
schedule: {time: "09:30", timezone: America/New_York}
steps:
  - {id: intro, day: 1, action: email, template: intro.md.j2, subject: "Hi"}
  - {id: call, day: 1, action: call_reminder, note: "Call {{ contact.first_name }}"}
  - {id: text, day: 2, action: email, template: bump.md.j2, subject: "Bump"}
"""


def test_holdout_contacts_never_reach_the_sink_nor_count_as_sent(tmp_path, smtp_sink):
    """Buckets of outbound: c1 4247, c2 868, c3 3309, c4 528, c5 4850, c6 6673; 40 % holds
    out those below 4000: c2, c3, c4. Alice's daily limit is 3, the treated count. Ticks and
    sends on Monday 03-02 and Tuesday 03-03 (09:30 New York = 14:30Z): the sink receives
    intro and bump for c1, c5, c6 only (6 messages, none deferred: the holdouts took no
    share of the limit), call tasks for those three only, no action at all for c2, c3, c4;
    sequence_metrics counts 3 enrolled and 3 sent, holdout_metrics 3 treated and 3 held out."""
    users = USERS.format(
        port=smtp_sink.port, bob_port=smtp_sink.port, alice_limit=3, bob_limit=3,
        sms_url="http://127.0.0.1:9/send", bob_login="",
    )  # fmt: skip
    root = write_workspace(
        tmp_path / "ws",
        {"outbound": HELD},
        users=users,
        templates={name: textwrap.dedent(text) for name, text in TEMPLATES.items()},
    )
    con = open_db(tmp_path)
    seed_contacts(con)
    held = {c for c, *_ in CONTACTS if bucket("outbound", c) < 4000}
    assert held == {"c2", "c3", "c4"}
    ws = load_workspace(root)
    for day in ("2026-03-02", "2026-03-03"):
        tick(con, root, f"{day} 14:45")
        report = send_due(con, ws, ts(f"{day} 15:00"), env=ENV)
        assert (report.sent, report.tasks, report.deferred) == (3, 3 if day.endswith("2") else 0, 0)
        assert not report.problems
    emails = {cid: email for cid, email, *_ in CONTACTS}
    rcpts = sorted(m.rcpt_tos[0] for m in smtp_sink.messages)
    assert rcpts == sorted(2 * [emails["c1"], emails["c5"], emails["c6"]])
    assert not set(rcpts) & {emails[c] for c in held}
    statuses = con.execute("select contact_id, step, status from actions order by all").fetchall()
    assert {c for c, _, _ in statuses} == {"c1", "c5", "c6"}
    assert {s for _, _, s in statuses} == {"sent"}
    tasks = con.execute("select distinct contact_id from tasks order by 1").fetchall()
    assert tasks == [("c1",), ("c5",), ("c6",)]
    sent = con.execute(
        "select distinct contact_id from activities where type = 'email_sent' order by 1"
    ).fetchall()
    assert sent == [("c1",), ("c5",), ("c6",)]
    build_metrics(con, ws.sequences.values())
    enrolled, sent_n = con.execute(
        "select enrolled, sent from sequence_metrics where period = 'all'"
    ).fetchone()
    assert (enrolled, sent_n) == (3, 3)
    arms = con.execute(
        "select outcome, treated, holdout from holdout_metrics order by outcome"
    ).fetchall()
    assert arms == [("meeting", 3, 3), ("replied", 3, 3)]
