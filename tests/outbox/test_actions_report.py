"""`sequencer actions` (issue 12 item 6): what a send left to look at, grouped by reason, and
each user's daily email volume against the limit — after real sends to the SMTP sink."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
import yaml

from pipelines.cli import main
from pipelines.db import connect
from pipelines.instants import local_date
from pipelines.metrics import build_metrics
from pipelines.outbox.reports import KEY_PREFIX
from pipelines.outbox.send import send_due
from pipelines.project import Project
from pipelines.workspace import load_workspace
from tests.delivery_fixtures import ENV, add_action, seed_contacts, write_workspace

T0 = dt.datetime(2026, 3, 2, 14, 30)  # Monday 09:30 in New York
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
ATTENTION = ("held", "failed", "deferred", "unknown", "expired")

BOB_SEQUENCE = """\
name: bob-seq
owner: bob
steps:
  - {id: hello, day: 1, action: email, template: bump.md.j2, subject: "Hello"}
"""


def no_wait(attempt: int) -> float:
    return 0.0


def add_users(root: Path) -> None:
    """Add an admin (olga) and a viewer (vera) to the send tests' users.yaml."""
    users = yaml.safe_load((root / "users.yaml").read_text())
    users["users"] += [
        {"id": "olga", "email": "olga@acme.example", "role": "admin"},
        {"id": "vera", "email": "vera@acme.example", "role": "viewer"},
    ]
    users["roles"].update(admin=["admin"], viewer=["view_sequences"])
    (root / "users.yaml").write_text(yaml.safe_dump(users))


@pytest.fixture
def sent(tmp_path, smtp_sink, monkeypatch):
    """One real send at T0 + 1 h over sequences `outbound` (alice, daily limit 1) and
    `bob-seq` (bob). Outcomes: alice's intro to c1 sent, to c3 and c4 deferred (limit 1);
    intro to c5 decided two days earlier expired; bob's html email to c2 failed (the sink
    answers 550 for bo@example.com); SMS to c2 and c4 held (no phone); bob-seq's email to c4
    unknown (the sink drops the connection at the first DATA, which is c4's: it sorts first),
    to c5 sent, to c6 (three days old) expired. Tasks for c1 (a call) are sent."""
    monkeypatch.setenv("TRACKING_SECRET", ENV["TRACKING_SECRET"])
    monkeypatch.setenv("SMS_TOKEN", ENV["SMS_TOKEN"])
    root = write_workspace(tmp_path / "ws", smtp_sink.port, alice_limit=1)
    (root / "sequences" / "bob-seq.yaml").write_text(BOB_SEQUENCE)
    add_users(root)
    db = tmp_path / "db.duckdb"
    con = connect(db)
    seed_contacts(con)
    for contact in ("c1", "c3", "c4"):
        add_action(con, contact, "intro", T0)
    add_action(con, "c5", "intro", T0 - 2 * DAY)
    add_action(con, "c2", "html", T0, day=8)
    add_action(con, "c2", "text", T0, action="sms", day=6)
    add_action(con, "c4", "text", T0, action="sms", day=6)
    add_action(con, "c1", "call", T0, action="call_reminder", day=5)
    for contact, at in (("c4", T0), ("c5", T0), ("c6", T0 - 3 * DAY)):
        add_action(con, contact, "hello", at, sequence="bob-seq")
    smtp_sink.reject["bo@example.com"] = "550 5.1.1 <bo@example.com>: no such user"
    smtp_sink.drop = 1
    report = send_due(con, load_workspace(root), T0 + HOUR, env=ENV, backoff=no_wait)
    assert (report.sent, report.deferred, report.expired) == (2, 2, 2)
    assert (report.failed, report.held, report.unknown, report.tasks) == (1, 2, 1, 1)
    con.close()
    return root, db


def actions_table(db: Path) -> list[dict]:
    con = connect(db)
    try:
        cur = con.execute("select * from actions")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def expected_groups(rows: list[dict], statuses=ATTENTION, sequences=None, step=None) -> dict:
    """(sequence, step, status, reason) → (count, oldest, newest), computed from the rows."""
    chosen = [
        r
        for r in rows
        if r["status"] in statuses
        and (sequences is None or r["sequence"] in sequences)
        and (step is None or r["step"] == step)
    ]
    out: dict = {}
    for r in chosen:
        key = (r["sequence"], r["step"], r["status"], r["error"])
        n, oldest, newest = out.get(key, (0, r["occurrence_at"], r["occurrence_at"]))
        out[key] = (n + 1, min(oldest, r["occurrence_at"]), max(newest, r["occurrence_at"]))
    return out


def as_dict(groups) -> dict:
    return {g.key: (g.actions, g.oldest, g.newest) for g in groups}


def test_default_report_groups_what_needs_a_look_with_counts_and_reasons(sent):
    root, db = sent
    rows = actions_table(db)
    assert Counter(r["status"] for r in rows) == {
        "sent": 3, "deferred": 2, "expired": 2, "held": 2, "failed": 1, "unknown": 1,
    }  # fmt: skip
    groups = Project(root, db_path=db).actions_report()
    assert as_dict(groups) == expected_groups(rows)
    assert [g.actions for g in groups] == sorted((g.actions for g in groups), reverse=True)
    by_status = {(g.sequence, g.status): g for g in groups}
    assert by_status["outbound", "deferred"].actions == 2
    assert by_status["outbound", "deferred"].reason.startswith("daily email limit reached")
    assert "550" in by_status["outbound", "failed"].reason
    assert by_status["outbound", "held"].reason.startswith("contact has no phone")
    assert by_status["outbound", "held"].actions == 2
    assert by_status["outbound", "expired"].reason.startswith("stale:")
    assert by_status["bob-seq", "expired"].oldest == T0 - 3 * DAY
    assert ("bob-seq", "unknown") in by_status and ("outbound", "sent") not in by_status


def test_status_sequence_and_step_filters(sent):
    root, db = sent
    rows, p = actions_table(db), Project(root, db_path=db)
    failed = p.actions_report(["failed"])
    assert as_dict(failed) == expected_groups(rows, ["failed"]) and len(failed) == 1
    both = p.actions_report(["sent", "expired"], sequence="bob-seq")
    assert as_dict(both) == expected_groups(rows, ["sent", "expired"], ["bob-seq"])
    assert {g.status for g in both} == {"sent", "expired"}
    step = p.actions_report(None, step="intro")
    assert as_dict(step) == expected_groups(rows, step="intro")
    assert {(g.status, g.actions) for g in step} == {("deferred", 2), ("expired", 1)}
    assert p.actions_report(["due"]) == []  # nothing left due after the send


def test_list_shows_the_first_actions_of_each_group_and_how_many_more(sent):
    root, db = sent
    rows = actions_table(db)
    [deferred] = Project(root, db_path=db).actions_report(["deferred"], list_limit=1)
    waiting = sorted(
        (r for r in rows if r["status"] == "deferred"),
        key=lambda r: (r["occurrence_at"], r["idempotency_key"]),
    )
    assert [a.idempotency_key for a in deferred.listed] == [waiting[0]["idempotency_key"]]
    assert deferred.listed[0].contact_id == waiting[0]["contact_id"] and deferred.more == 1


def test_a_rep_sees_only_their_sequences_and_is_refused_another_one(sent, capsys):
    root, db = sent
    rows = actions_table(db)
    alice = Project(root, db_path=db, user="alice").actions_report()
    assert as_dict(alice) == expected_groups(rows, sequences=["outbound"])
    bob = Project(root, db_path=db, user="bob").actions_report()
    assert as_dict(bob) == expected_groups(rows, sequences=["bob-seq"])
    admin = Project(root, db_path=db, user="olga").actions_report()
    assert as_dict(admin) == expected_groups(rows)
    assert Project(root, db_path=db, user="vera").actions_report() == []
    base = ["actions", "--project", str(root), "--db", str(db)]
    assert main([*base, "--user", "alice", "--sequence", "bob-seq"]) == 4
    assert "belongs to 'bob'" in capsys.readouterr().err
    assert main([*base, "--user", "alice", "--sequence", "ghost"]) == 1
    assert "no sequence named 'ghost'" in capsys.readouterr().err


def test_the_command_prints_groups_and_lists_read_only(sent, capsys):
    root, db = sent
    rows = actions_table(db)
    holder = connect(db, read_only=True)  # another reader: a read-only report still opens
    try:
        code = main(["actions", "--project", str(root), "--db", str(db), "--list"])
    finally:
        holder.close()
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    expected = expected_groups(rows)
    assert out[0] == f"{sum(n for n, _, _ in expected.values())} action(s) " + (
        f"held, failed, deferred, unknown, expired: {len(expected)} group(s)"
    )
    group_lines = [line.split() for line in out[2:] if not line.startswith(" " * 10)]
    order = sorted(expected.items(), key=lambda kv: (-kv[1][0], *kv[0]))  # count desc, then key
    assert [line[:3] for line in group_lines] == [
        [str(n), status, f"{seq}/{step}"] for (seq, step, status, _), (n, _, _) in order
    ]
    assert [" ".join(line[7:]) for line in group_lines] == [reason for (*_, reason), _ in order]
    listed = {line.split()[0] for line in out if line.startswith(" " * 10)}
    attention = {r["idempotency_key"][:KEY_PREFIX] for r in rows if r["status"] in ATTENTION}
    assert listed == attention  # fewer than 50 per group: every one listed, nothing "more"


def test_metrics_count_the_send_outcomes_per_step(sent):
    root, db = sent
    rows = actions_table(db)
    con = connect(db)
    try:
        build_metrics(con)
        cur = con.execute(
            "select sequence, step, held, failed, deferred, expired, unknown from step_metrics"
            " where period = 'all'"
        )
        steps = {(r[0], r[1]): r[2:] for r in cur.fetchall()}
        totals = dict(
            con.execute(
                "select sequence, [held, failed, deferred, expired, unknown]"
                " from sequence_metrics where period = 'all'"
            ).fetchall()
        )
    finally:
        con.close()
    for (seq, step), counts in steps.items():
        mine = [r for r in rows if (r["sequence"], r["step"]) == (seq, step)]
        want = [
            len({r["contact_id"] for r in mine if r["status"] == s})
            for s in ("held", "failed", "deferred", "expired", "unknown")
        ]
        assert list(counts) == want, (seq, step)
    assert totals == {"outbound": [2, 1, 2, 1, 0], "bob-seq": [0, 0, 0, 1, 1]}


def test_volume_counts_sent_and_unknown_per_local_day_and_what_is_deferred(sent, capsys):
    root, db = sent
    p = Project(root, db_path=db)
    volume = {(d.sender_id, d.local_day): d for d in p.volume_report(7, T0 + 2 * HOUR)}
    assert len(volume) == 14  # alice and bob, 7 days each; olga and vera sent nothing
    today = local_date(T0 + HOUR, "America/New_York")
    assert (volume["alice", today].sent, volume["alice", today].daily_limit) == (1, 1)
    assert volume["alice", today].deferred_now == 2
    bob_today = volume["bob", local_date(T0 + HOUR, "Europe/Berlin")]
    assert (bob_today.sent, bob_today.deferred_now) == (2, 0)  # sent + unknown; failed not
    assert sum(d.sent for d in volume.values()) == 3
    assert min(day for _, day in volume) == today - dt.timedelta(days=6)
    before = p.volume_report(7, T0)  # as of before the send: nothing sent yet, 2 deferred
    assert {(d.sender_id, d.sent) for d in before} == {("alice", 0)}
    later = Project(root, db_path=db, user="bob").volume_report(7, T0 + 30 * DAY)
    assert later == []  # nothing sent in those days, nothing deferred for bob
    mine = Project(root, db_path=db, user="bob").volume_report(3, T0 + 2 * HOUR)
    berlin = local_date(T0 + HOUR, "Europe/Berlin")
    assert {(d.sender_id, d.local_day, d.sent) for d in mine} == {
        ("bob", berlin - dt.timedelta(days=n), 2 if n == 0 else 0) for n in range(3)
    }
    code = main(["actions", "--volume", "--days", "2", "--as-of", (T0 + 2 * HOUR).isoformat(),
                 "--project", str(root), "--db", str(db)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "alice (America/New_York): limit 1/day, deferred now 2" in out
    assert f"  {today}  sent     1 of 1  (limit reached)" in out


ZONE_USERS = """\
users:
  - {id: kiri, email: kiri@acme.example, role: rep, timezone: Pacific/Auckland,
     daily_email_limit: 40, mailbox: {host: 127.0.0.1, port: PORT, starttls: false}}
  - {id: lou, email: lou@acme.example, role: rep, timezone: America/Los_Angeles,
     daily_email_limit: 30, mailbox: {host: 127.0.0.1, port: PORT, starttls: false}}
roles:
  rep: [view_sequences, create_sequences]
"""
STEPS = "".join(
    f"\n  - {{id: s{i}, day: {i + 1}, action: email, template: t.md.j2, subject: Hi,"
    " unsubscribe_link: false}"
    for i in range(6)
)
# (owner, instant of the send): local midnights, a DST day each, Auckland across the date line
SENDS = [
    ("lou", dt.datetime(2026, 3, 8, 7, 59)),  # Mar 7 23:59 PST
    ("lou", dt.datetime(2026, 3, 8, 8, 0)),  # Mar 8 00:00 PST
    ("lou", dt.datetime(2026, 3, 9, 6, 59)),  # Mar 8 23:59 PDT: a 23-hour day
    ("lou", dt.datetime(2026, 3, 9, 7, 0)),  # Mar 9 00:00 PDT (-8 h would still say Mar 8)
    ("kiri", dt.datetime(2026, 3, 2, 10, 59)),  # Mar 2 23:59 NZDT (UTC: Mar 2)
    ("kiri", dt.datetime(2026, 3, 2, 11, 0)),  # Mar 3 00:00 NZDT (UTC: still Mar 2)
    ("kiri", dt.datetime(2026, 4, 5, 11, 30)),  # Apr 5 23:30 NZST: the 25-hour day
]
EXPECTED_DAYS = {
    ("lou", dt.date(2026, 3, 7)): 1,
    ("lou", dt.date(2026, 3, 8)): 2,
    ("lou", dt.date(2026, 3, 9)): 1,
    ("kiri", dt.date(2026, 3, 2)): 1,
    ("kiri", dt.date(2026, 3, 3)): 1,
    ("kiri", dt.date(2026, 4, 5)): 1,
}


def test_volume_days_are_the_senders_local_days(tmp_path, smtp_sink, workspace):
    """Real sends at instants around local midnights, DST days and the date line; each email
    counts on local_date(finished_at, owner's timezone), as the send's daily limit counts."""
    root = workspace(
        {owner: f"name: {owner}-seq\nowner: {owner}\nsteps:{STEPS}" for owner in ("kiri", "lou")},
        users=ZONE_USERS.replace("PORT", str(smtp_sink.port)),
        templates={"t.md.j2": "Hi {{ contact.first_name }}"},
    )
    db = tmp_path / "zones.duckdb"
    con = connect(db)
    seed_contacts(con)
    ws = load_workspace(root)
    for n, (owner, at) in enumerate(SENDS):
        add_action(con, "c1", f"s{n % 6}", at - dt.timedelta(minutes=1), sequence=f"{owner}-seq")
        assert send_due(con, ws, at, env=ENV, backoff=no_wait).sent == 1
    finished = con.execute(
        "select sender_id, finished_at from actions where status = 'sent'"
    ).fetchall()
    zones = {"kiri": "Pacific/Auckland", "lou": "America/Los_Angeles"}
    by_local_date = Counter((who, local_date(at, zones[who])) for who, at in finished)
    assert by_local_date == EXPECTED_DAYS
    as_of = dt.datetime(2026, 4, 6, 0, 0)
    volume = Project(root, db_path=db).volume_report(45, as_of, con=con)
    con.close()
    reported = {(d.sender_id, d.local_day): d.sent for d in volume if d.sent}
    assert reported == EXPECTED_DAYS
    last = {d.sender_id: d.local_day for d in volume}
    assert last == {who: local_date(as_of, zone) for who, zone in zones.items()}
    assert {(d.sender_id, d.daily_limit) for d in volume} == {("kiri", 40), ("lou", 30)}
