"""Metrics from given enrollments/actions/activities rows (SPEC 7), the CLI table and the
snapshot readers use."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import duckdb
import pytest

from pipelines import db
from pipelines.metrics import build_metrics, metrics_table, publish_snapshot

D1, D2, D3 = dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 4)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute))


# sequence, contact, enrolled_on, status, exit_reason, exited_on
ENROLLMENTS = [
    ("s1", "c1", D1, "active", None, None),
    ("s1", "c2", D1, "exited", "replied", D2),
    ("s1", "c3", D1, "exited", "bounced", D2),
    ("s1", "c4", D1, "exited", "manual", D1),
    ("s1", "c5", D2, "active", None, None),
]
# sequence, contact, step, step_index, action, occurrence_on, status, message_id, finished_at
ACTIONS = [
    ("s1", "c1", "intro", 0, "email", D1, "sent", "m1", at(D1, 14, 31)),
    ("s1", "c2", "intro", 0, "email", D1, "sent", "m2", at(D1, 14, 31)),
    ("s1", "c3", "intro", 0, "email", D1, "sent", "m3", at(D1, 14, 31)),
    ("s1", "c4", "intro", 0, "email", D1, "skipped", None, None),
    ("s1", "c1", "bump", 1, "email", D3, "sent", "m4", at(D3, 14, 31)),
]
# id, contact, type, occurred_at, sequence, step, message_id
ACTIVITIES = [
    ("a1", "c1", "email_opened", at(D1, 15), None, None, "m1"),
    ("a2", "c1", "email_opened", at(D1, 16), None, None, "m1"),  # a second open: still one
    ("a3", "c2", "email_clicked", at(D1, 15), None, None, "m2"),  # click without open
    ("a4", "c3", "email_opened", at(D1, 17), "s1", "intro", None),  # by sequence/step
    ("a5", "c4", "email_opened", at(D1, 17), "s1", "intro", None),  # never sent: not counted
    ("a6", "c1", "email_replied", at(D1, 16, 31), "s1", None, None),  # nearest email: intro
    ("a7", None, "email_replied", at(D2, 0, 31), None, None, "m2"),  # contact from message
    ("a8", "c3", "email_bounced", at(D1, 14, 40), None, None, "m3"),
    ("a9", "c1", "email_opened", at(D1, 18), None, None, None),  # no sequence: not counted
    ("a10", "c2", "email_delivered", at(D1, 14, 32), None, None, "m2"),
]


def load_rows(con) -> None:
    """Insert the given rows above (also used by the notebook test)."""
    for seq, contact, on, status, reason, exited_on in ENROLLMENTS:
        con.execute(
            "insert into enrollments (sequence, contact_id, enrollment_id, enrolled_on,"
            " enrolled_at, status, exit_reason, exited_on) values (?, ?, ?, ?, ?, ?, ?, ?)",
            [seq, contact, f"{seq}:{contact}", on, at(on, 14, 30), status, reason, exited_on],
        )
    for seq, contact, step, idx, action, on, status, message_id, finished in ACTIONS:
        con.execute(
            "insert into actions (idempotency_key, sequence, contact_id, enrollment_id, step,"
            " step_index, day, action, occurrence_on, occurrence_at, status, message_id,"
            " finished_at) values (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
            [f"{seq}:{contact}:{step}", seq, contact, f"{seq}:{contact}", step, idx, action,
             on, at(on, 14, 30), status, message_id, finished],
        )  # fmt: skip
    con.executemany(
        "insert into activities (activity_id, contact_id, type, occurred_at, sequence, step,"
        " message_id) values (?, ?, ?, ?, ?, ?, ?)",
        ACTIVITIES,
    )


@pytest.fixture
def con(tmp_path):
    con = db.connect(tmp_path / "m.duckdb")
    load_rows(con)
    yield con
    con.close()


def rows(con, sql: str, params=None) -> list[dict]:
    rel = con.execute(sql, params or [])
    names = [d[0] for d in rel.description]
    return [dict(zip(names, r, strict=True)) for r in rel.fetchall()]


def one(con, table: str, where: str) -> dict:
    found = rows(con, f"select * from {table} where {where}")
    assert len(found) == 1, found
    return found[0]


def test_sequence_totals_count_unique_contacts_and_clamp_to_sent(con):
    build_metrics(con)
    total = one(con, "sequence_metrics", "sequence = 's1' and period = 'all'")
    assert total["metric_date"] is None
    assert (total["enrolled"], total["active"], total["exited"]) == (5, 2, 3)
    assert (total["exited_replied"], total["exited_bounced"], total["exited_manual"]) == (1, 1, 1)
    assert total["exited_completed"] == total["exited_condition"] == 0
    # c1 opened twice and got two emails: one contact. c4 opened an email never sent: no.
    assert total["sent"] == 3
    assert total["opened"] == 3  # c1 open, c2 click (a click counts as an open), c3 by step
    assert total["clicked"] == 1
    assert total["replied"] == 2
    assert total["bounced"] == 1
    assert total["delivered"] == 3  # c2's event; c1 and c3 proven by their opens
    assert total["open_rate"] == pytest.approx(1.0)
    assert total["reply_rate"] == pytest.approx(2 / 3)
    assert total["bounce_rate"] == pytest.approx(1 / 3)
    assert total["unsubscribe_rate"] == 0


def test_reply_time_percentiles_from_the_send_of_the_replied_email(con):
    build_metrics(con)
    total = one(con, "sequence_metrics", "sequence = 's1' and period = 'all'")
    # c1: 14:31 -> 16:31 = 2 h (a reply with no step belongs to the latest email before it);
    # c2: 14:31 -> 00:31 next day = 10 h.
    assert total["reply_hours_p50"] == pytest.approx(6.0)
    assert total["reply_hours_p90"] == pytest.approx(9.2)
    intro = one(con, "step_metrics", "step = 'intro' and period = 'all'")
    assert intro["reply_hours_p50"] == pytest.approx(6.0)


def test_daily_rows_use_occurrence_dates_and_active_at_end_of_day(con):
    build_metrics(con)
    days = rows(
        con,
        "select metric_date, enrolled, active, exited, sent, opened from sequence_metrics"
        " where period = 'day' order by metric_date",
    )
    assert [tuple(d.values()) for d in days] == [
        (D1, 4, 3, 1, 3, 3),
        (D2, 1, 2, 2, 0, 0),
        (D3, 0, 2, 0, 1, 0),  # the bump to c1: counted on its own send date, not opened
    ]


def test_step_metrics_per_step(con):
    build_metrics(con)
    intro = one(con, "step_metrics", "step = 'intro' and period = 'all'")
    assert (intro["reached"], intro["skipped"], intro["active"]) == (4, 1, 0)
    assert (intro["exited"], intro["exited_replied"], intro["exited_bounced"]) == (3, 1, 1)
    assert intro["exited_manual"] == 1
    assert (intro["sent"], intro["opened"], intro["clicked"], intro["replied"]) == (3, 3, 1, 2)
    bump = one(con, "step_metrics", "step = 'bump' and period = 'all'")
    assert (bump["reached"], bump["active"], bump["sent"], bump["opened"]) == (1, 1, 1, 0)
    assert bump["open_rate"] == 0
    intro_days = rows(
        con,
        "select metric_date, reached, active from step_metrics"
        " where step = 'intro' and period = 'day' order by metric_date",
    )
    assert [tuple(d.values()) for d in intro_days] == [(D1, 4, 3), (D2, 0, 1), (D3, 0, 0)]


def test_email_outcomes_hold_one_row_per_sent_email(con):
    assert build_metrics(con)["email_outcomes"] == 4
    replies = rows(
        con, "select contact_id, step, reply_hours from email_outcomes where replied order by 1"
    )
    assert replies == [
        {"contact_id": "c1", "step": "intro", "reply_hours": pytest.approx(2.0)},
        {"contact_id": "c2", "step": "intro", "reply_hours": pytest.approx(10.0)},
    ]


def test_no_count_exceeds_sent_and_rates_are_null_without_sends(con):
    build_metrics(con)
    for table in ("sequence_metrics", "step_metrics"):
        bad = rows(
            con,
            f"select * from {table} where greatest(delivered, opened, clicked, replied,"
            " bounced, unsubscribed) > sent or clicked > opened",
        )
        assert bad == []
    quiet = one(con, "sequence_metrics", f"period = 'day' and metric_date = '{D2}'")
    assert quiet["sent"] == 0 and quiet["open_rate"] is None


def test_rebuild_is_stable_and_empty_database_builds(con, tmp_path):
    first = build_metrics(con)
    snapshot = rows(con, "select * from sequence_metrics")
    assert build_metrics(con) == first
    assert rows(con, "select * from sequence_metrics") == snapshot
    empty = db.connect(tmp_path / "empty.duckdb")
    assert set(build_metrics(empty).values()) == {0}
    assert "no metrics yet" in metrics_table(empty)
    empty.close()


def test_metrics_table_is_fixed_width_text(con):
    build_metrics(con)
    text = metrics_table(con)
    header, row = text.splitlines()[:2]
    assert header.split()[:5] == ["sequence", "enrolled", "active", "exited", "sent"]
    assert row.split()[:5] == ["s1", "5", "2", "3", "3"]
    assert "100.0" in row and "66.7" in row and "6.0" in row
    assert len(header) == len(row)
    assert "no metrics for sequence 'nope'" in metrics_table(con, "nope")
    assert metrics_table(con, only=["s1"]).splitlines()[1].startswith("s1 ")


def table_rows(text: str) -> list[dict[str, str]]:
    """The data rows of :func:`metrics_table`'s text as {header: cell}; every row must have
    exactly one cell per header (a cell never holds a space)."""
    header, *body, footer = text.splitlines()
    assert footer.startswith("counts are unique contacts"), footer
    names = header.split()
    return [
        dict(zip(names, line.split(), strict=True))
        for line in body
        if not line.startswith("(no metrics")
    ]


def test_metrics_table_lists_only_the_sequences_a_user_may_see(con):
    """Given s1 (the rows above) and s2 (one enrolment added here), the table lists s1 and s2
    for everyone, exactly s1 for a user whose only sequence is s1, and no row at all for a
    user who owns neither (only=["other"]): the unscoped table would show both."""
    con.execute(
        "insert into enrollments (sequence, contact_id, enrollment_id, enrolled_on,"
        " enrolled_at, status) values ('s2', 'c9', 's2:c9', ?, ?, 'active')",
        [D1, at(D1, 14, 30)],
    )
    build_metrics(con)
    everyone = table_rows(metrics_table(con))
    assert [(r["sequence"], r["enrolled"]) for r in everyone] == [("s1", "5"), ("s2", "1")]
    assert [r["sequence"] for r in table_rows(metrics_table(con, only=["s1"]))] == ["s1"]
    assert [r["sequence"] for r in table_rows(metrics_table(con, only=["s2"]))] == ["s2"]
    nobody = metrics_table(con, only=["other"])
    assert table_rows(nobody) == []
    assert "(no metrics yet)" in nobody.splitlines()


def test_snapshot_is_readable_while_another_process_holds_the_database(con, tmp_path):
    build_metrics(con)
    snapshot = publish_snapshot(tmp_path / "m.duckdb", tmp_path / "snap" / "snapshot.duckdb")
    assert not list(snapshot.parent.glob("*.tmp"))
    # `con` (this process) still holds m.duckdb for writing; another process reads the copy.
    query = "select sent from sequence_metrics where period = 'all'"
    reader = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True);"
        f" print(c.execute({query!r}).fetchone()[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", reader, str(snapshot)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "3"
    blocked = subprocess.run(
        [sys.executable, "-c", reader, str(tmp_path / "m.duckdb")], capture_output=True
    )
    assert blocked.returncode != 0  # the reason the snapshot exists


def test_snapshot_is_replaced_atomically_with_new_rows(con, tmp_path):
    path = tmp_path / "snapshot.duckdb"
    build_metrics(con)
    publish_snapshot(tmp_path / "m.duckdb", path)
    con.execute("delete from enrollments where contact_id = 'c5'")
    build_metrics(con)
    publish_snapshot(tmp_path / "m.duckdb", path)
    reader = duckdb.connect(str(path), read_only=True)
    enrolled = reader.execute(
        "select enrolled from sequence_metrics where period = 'all'"
    ).fetchone()
    reader.close()
    assert enrolled == (4,)


def test_machine_opens_soft_bounces_and_complaints_are_reported_apart(con):
    """SPEC 10: open rates count human opens only; a machine open (privacy proxy, scanner) is
    reported in ``machine_opened`` and still proves delivery; soft bounces and complaints have
    their own columns. c5 gets an email on D2 that only a proxy opened; c1's second email
    (bump) soft-bounced and then drew a complaint; an auto-reply to intro is not a reply."""
    machine = '{"machine": true, "user_agent": "Mozilla/5.0"}'
    con.execute(
        "insert into actions (idempotency_key, sequence, contact_id, enrollment_id, step,"
        " step_index, day, action, occurrence_on, occurrence_at, status, message_id,"
        " finished_at) values ('s1:c5:intro', 's1', 'c5', 's1:c5', 'intro', 0, 1, 'email',"
        " ?, ?, 'sent', 'm5', ?)",
        [D2, at(D2, 14, 30), at(D2, 14, 31)],
    )
    con.executemany(
        "insert into activities (activity_id, contact_id, type, occurred_at, message_id,"
        " detail) values (?, ?, ?, ?, ?, ?)",
        [
            ("b1", "c5", "email_opened", at(D2, 14, 32), "m5", machine),
            ("b2", "c1", "email_soft_bounced", at(D3, 14, 35), "m4", None),
            ("b3", "c1", "email_complained", at(D3, 15), "m4", None),
            ("b4", "c1", "email_opened", at(D3, 16), "m4", machine),
            ("b5", "c3", "email_auto_replied", at(D1, 18), "m3", '{"until": "2026-03-20"}'),
        ],
    )
    build_metrics(con)
    total = one(con, "sequence_metrics", "sequence = 's1' and period = 'all'")
    assert total["sent"] == 4
    assert total["opened"] == 3  # c1, c2, c3 as before: c5's proxy open is not an open
    assert total["machine_opened"] == 2  # c5 (intro) and c1 (bump)
    assert total["delivered"] == 4  # c5's delivery is proven by the machine open
    assert total["open_rate"] == pytest.approx(3 / 4)
    assert (total["soft_bounced"], total["complained"]) == (1, 1)
    assert total["complaint_rate"] == pytest.approx(1 / 4)
    assert total["replied"] == 2  # the auto-reply is not a reply
    bump = one(con, "step_metrics", "step = 'bump' and period = 'all'")
    assert (bump["opened"], bump["machine_opened"], bump["complained"]) == (0, 1, 1)
    assert (bump["soft_bounced"], bump["open_rate"]) == (1, 0)
    table = metrics_table(con)
    header, row = table.splitlines()[:2]
    cells = dict(zip(header.split(), row.split(), strict=True))
    assert (cells["opened"], cells["m.opened"], cells["soft"], cells["compl"]) == (
        "3", "2", "1", "1",
    )  # fmt: skip


OUTCOMES = ("held", "failed", "deferred", "expired", "unknown")
D4 = dt.date(2026, 3, 5)


def test_send_outcomes_count_unique_contacts_on_the_occurrence_date(con):
    """held, failed, deferred, expired and unknown: contacts with an action in that status,
    on its occurrence date; c5 has a held and a failed action, c1 an expired and an unknown
    one; c3's expired call on D4 is the only thing on D4 (a new day row, nothing else on it).
    Every other column keeps its value: a build without these actions agrees on them."""
    build_metrics(con)
    old = {
        (r["period"], r["metric_date"]): r
        for r in rows(
            con, "select * exclude (held, failed, deferred, expired, unknown) from sequence_metrics"
        )  # fmt: skip
    }
    extra = [  # contact, step, action, occurrence_on, status
        ("c5", "intro", "email", D2, "held"),
        ("c5", "bump", "email", D3, "failed"),
        ("c2", "bump", "email", D3, "deferred"),
        ("c1", "text", "sms", D3, "expired"),
        ("c1", "call", "call_reminder", D3, "unknown"),
        ("c3", "call", "call_reminder", D4, "expired"),
    ]
    for contact, step, action, on, status in extra:
        con.execute(
            "insert into actions (idempotency_key, sequence, contact_id, enrollment_id, step,"
            " day, action, occurrence_on, occurrence_at, status) values (?, 's1', ?, ?, ?, 1,"
            " ?, ?, ?, ?)",
            [f"x:{contact}:{step}", contact, f"s1:{contact}", step, action, on, at(on, 14, 30),
             status],
        )  # fmt: skip
    build_metrics(con)
    total = one(con, "sequence_metrics", "period = 'all'")
    assert [total[c] for c in OUTCOMES] == [1, 1, 1, 2, 1]
    days = rows(
        con,
        "select metric_date, held, failed, deferred, expired, unknown, enrolled, active, sent"
        " from sequence_metrics where period = 'day' order by metric_date",
    )
    assert [tuple(d.values()) for d in days] == [
        (D1, 0, 0, 0, 0, 0, 4, 3, 3),
        (D2, 1, 0, 0, 0, 0, 1, 2, 0),
        (D3, 0, 1, 1, 1, 1, 0, 2, 1),
        (D4, 0, 0, 0, 1, 0, 0, 2, 0),
    ]
    new = rows(con, "select * exclude (held, failed, deferred, expired, unknown)"
               " from sequence_metrics where metric_date is distinct from ?", [D4])  # fmt: skip
    assert {(r["period"], r["metric_date"]): r for r in new} == old
    steps = {
        r["step"]: [r[c] for c in OUTCOMES]
        for r in rows(con, "select * from step_metrics where period = 'all'")
    }
    assert steps == {
        "intro": [1, 0, 0, 0, 0],
        "bump": [0, 1, 1, 0, 0],
        "text": [0, 0, 0, 1, 0],
        "call": [0, 0, 0, 1, 1],
    }
    call = rows(con, "select metric_date, reached, expired, unknown from step_metrics"
                " where step = 'call' and period = 'day' and reached > 0 order by 1")  # fmt: skip
    assert [tuple(r.values()) for r in call] == [(D3, 1, 0, 1), (D4, 1, 1, 0)]


def test_paused_counts_the_enrolments_a_pause_began_for(con):
    """Rows: c1 paused by hand on D2 10:00; an out-of-office from c5 on D2 16:00 (enrolled D2
    14:30, so active); the whole of s1 paused on D3 09:00 (active then: c1 and c5; c2 and c3
    exited on D2, c4 on D1); an out-of-office from c4 on D2 (exited: not counted).
    Expected: D2 2 (c1, c5), D3 2 (c1, c5), all 2 (unique contacts)."""
    con.execute("update enrollments set exited_at = exited_on + interval 14 hour")
    con.execute(
        "insert into pauses (sequence, contact_id, paused_at) values"
        " ('s1', 'c1', ?), ('s1', null, ?)",
        [at(D2, 10), at(D3, 9)],
    )
    for aid, contact in (("o5", "c5"), ("o4", "c4")):
        con.execute(
            "insert into activities (activity_id, contact_id, type, occurred_at)"
            " values (?, ?, 'email_auto_replied', ?)",
            [aid, contact, at(D2, 16)],
        )
    build_metrics(con)
    assert one(con, "sequence_metrics", "period = 'all'")["paused"] == 2
    days = rows(con, "select metric_date, paused from sequence_metrics where period = 'day'"
                " order by metric_date")  # fmt: skip
    assert [tuple(d.values()) for d in days] == [(D1, 0), (D2, 2), (D3, 2)]
