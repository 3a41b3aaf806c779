"""Smart sequences, edits between runs, manual enrolment, engagement, preview, late data,
and the one-writer lock (SPEC 6, 8)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path

from pipelines.tick.enrollment import enroll, unenroll
from pipelines.tick.run import preview_occurrence
from tests.tick_helpers import (
    actions,
    activity,
    classic,
    compile_root,
    contact,
    enrollments,
    insert,
    open_db,
    tick,
    ts,
    write_sequences,
)

SMART = """\
name: sm
owner: alice
type: smart
starts_on: 2026-03-02
interval_days: 2
duration_days: 7
audience: {where: ["true"]}
schedule: {time: '09:00', timezone: UTC}
steps:
  - {id: s1, action: follow_up, when: ["last_activity_type = 'meeting'"]}
  - {id: s2, action: follow_up}
  - {id: s3, action: follow_up, when: ["last_activity_type = 'chat'"]}
"""


def test_smart_interval_and_duration(tmp_path):
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("m1"), contact("m2")])
    insert(
        con,
        "activities",
        [
            activity("m1", "meeting", "2026-03-02 10:00"),  # after day 1's instant
            activity("m1", "chat", "2026-03-05 10:00"),
        ],
    )
    root = write_sequences(tmp_path / "ws", {"sm": SMART})
    tick(con, root, "2026-03-12")
    # evaluations on days 1, 3, 5, 7 (03-02, 03-04, 03-06, 03-08); one step each at most
    assert actions(con) == [
        ("sm", "m1", "s1", 3, "2026-03-04", "due"),
        ("sm", "m1", "s2", 1, "2026-03-02", "due"),
        ("sm", "m1", "s3", 5, "2026-03-06", "due"),
        ("sm", "m2", "s2", 1, "2026-03-02", "due"),
    ]
    assert enrollments(con) == [
        ("sm", "m1", "2026-03-02", "exited", "completed", "2026-03-06"),  # every step done
        ("sm", "m2", "2026-03-02", "exited", "completed", "2026-03-08"),  # day duration_days
    ]


def test_edits_between_runs(tmp_path):
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    ws = tmp_path / "ws"
    write_sequences(
        ws,
        {
            "s": classic(
                "s",
                """
        - {id: a, day: 1, action: follow_up}
        - {id: b, day: 3, action: follow_up}
        - {id: c, day: 4, action: follow_up}
        - {id: d, day: 5, action: follow_up}
        """,
                extra="starts_on: 2026-03-02",
            )
        },
    )
    tick(con, ws, "2026-03-02 12:00")
    # a already decided; b moves to day 2, c's condition becomes false, d is removed,
    # a new step on an already-passed day is added, a's condition changes after the fact
    write_sequences(
        ws,
        {
            "s": classic(
                "s",
                """
        - {id: a, day: 1, action: follow_up, when: ["false"]}
        - {id: late, day: 1, action: follow_up}
        - {id: b, day: 2, action: follow_up}
        - {id: c, day: 4, action: follow_up, when: ["false"]}
        """,
                extra="starts_on: 2026-03-02",
            )
        },
    )
    tick(con, ws, "2026-03-10")
    assert actions(con) == [
        ("s", "c1", "a", 1, "2026-03-02", "due"),
        ("s", "c1", "b", 2, "2026-03-03", "due"),
        ("s", "c1", "c", 4, "2026-03-05", "skipped"),
    ]
    # the last step is now day 4: completed there; d never executed
    assert enrollments(con) == [("s", "c1", "2026-03-02", "exited", "completed", "2026-03-05")]


def test_manual_enrol_and_unenrol(tmp_path):
    con = open_db(tmp_path)
    insert(
        con,
        "contacts",
        [contact("c1"), contact("c2", unsubscribed=True), contact("c3", email=None), contact("c4")],
    )
    ws_root = write_sequences(
        tmp_path / "ws",
        {
            "m": (
                "name: m\nowner: alice\naudience: {}\nschedule: {time: '09:00', timezone: UTC}\n"
                "starts_on: 2026-03-02\nsteps:\n"
                "  - {id: e, day: 1, action: email, template: intro.md.j2, subject: Hi}\n"
                "  - {id: f, day: 9, action: follow_up}\n"
            )
        },
    )
    ws, _ = compile_root(con, ws_root)
    at = ts("2026-03-02 08:00")
    assert enroll(con, ws, "m", ["c1", "c2", "c3", "c9"], at) == {
        "c1": "pending",
        "c2": "pending",
        "c3": "pending",
        "c9": "unknown_contact",
    }
    assert enroll(con, ws, "m", ["c1"], at)["c1"] == "already_pending"
    # requested after 03-02's occurrence: resolved at 03-03's
    enroll(con, ws, "m", ["c4"], ts("2026-03-02 09:30"))
    tick(con, ws_root, "2026-03-02 12:00")
    assert enrollments(con) == [("m", "c1", "2026-03-02", "active", None, None)]
    assert con.execute(
        "select contact_id, status, reason from manual_requests order by 1"
    ).fetchall() == [
        ("c1", "enrolled", None),
        ("c2", "rejected", "unsubscribed"),
        ("c3", "rejected", "no_email"),
        ("c4", "pending", None),
    ]
    assert con.execute("select bool_and(manual) from enrollments").fetchone() == (True,)
    assert enroll(con, ws, "m", ["c1"], at)["c1"] == "already_enrolled"
    out = unenroll(con, ws, "m", ["c1", "c4", "c2", "c9"], ts("2026-03-03 08:00"))
    assert out == {
        "c1": "unenrolled",
        "c4": "request_cancelled",
        "c2": "not_enrolled",
        "c9": "unknown_contact",
    }
    tick(con, ws_root, "2026-03-04 12:00")
    assert enrollments(con) == [("m", "c1", "2026-03-02", "exited", "manual", "2026-03-03")]
    assert enroll(con, ws, "m", ["c1"], ts("2026-03-05"))["c1"] == "previously_enrolled"


def test_enrollment_engagement_columns(tmp_path):
    con = open_db(tmp_path)
    insert(con, "contacts", [contact(c) for c in ("o1", "o2", "o3", "o4")])
    insert(
        con,
        "activities",
        [
            activity("o1", "email_opened", "2026-03-02 12:00", sequence="e", step="intro"),
            activity("o3", "email_clicked", "2026-03-02 12:00", message_id="m-3"),
            activity("o4", "email_opened", "2026-03-02 08:00", sequence="e", step="intro"),
            activity("o2", "email_opened", "2026-03-02 12:00", sequence="other", step="intro"),
        ],
    )
    ws = write_sequences(
        tmp_path / "ws",
        {
            "e": classic(
                "e",
                """
        - {id: intro, day: 1, action: email, template: intro.md.j2, subject: Hi}
        - {id: opened, day: 2, action: follow_up, when: ["enrollment.opened_previous_email"]}
        - {id: clicked, day: 2, action: follow_up, when: ["enrollment.clicked_any_email"]}
        - {id: one, day: 2, action: follow_up, when: ["enrollment.emails_sent = 1"]}
        """,
                extra="starts_on: 2026-03-02",
            )
        },
    )
    tick(con, ws, "2026-03-02 12:00")
    con.execute("update actions set message_id = 'm-3' where contact_id = 'o3'")
    tick(con, ws, "2026-03-03 12:00")
    got = {(c, s): st for _, c, s, _, _, st in actions(con) if s != "intro"}
    assert got == {
        ("o1", "opened"): "due",
        ("o1", "clicked"): "skipped",
        ("o1", "one"): "due",
        ("o2", "opened"): "skipped",
        ("o2", "clicked"): "skipped",
        ("o2", "one"): "due",
        ("o3", "opened"): "due",
        ("o3", "clicked"): "due",
        ("o3", "one"): "due",
        # an open before the enrolment does not count
        ("o4", "opened"): "skipped",
        ("o4", "clicked"): "skipped",
        ("o4", "one"): "due",
    }


def _snapshot(con):
    tables = (
        "enrollments",
        "actions",
        "occurrences",
        "contact_activity_state",
        "tick_state",
        "sequence_state",
        "manual_requests",
        "runs",
    )
    return {t: con.execute(f"select * from {t} order by all").fetchall() for t in tables}


def test_preview_writes_nothing(tmp_path):
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1"), contact("c2", created_at="2026-03-02 10:00")])
    ws_root = write_sequences(
        tmp_path / "ws",
        {
            "s": classic(
                "s",
                """
            - {id: a, day: 1, action: follow_up}
            - {id: b, day: 2, action: follow_up, when: ["false"]}
            """,
                extra="starts_on: 2026-03-02",
            ),
        },
    )
    tick(con, ws_root, "2026-03-02 12:00")
    # a sequence added after the run: its first occurrence is the latest ≤ as_of
    (ws_root / "sequences" / "new.yaml").write_text(
        classic("new", "- {id: a, day: 1, action: follow_up}"), encoding="utf-8"
    )
    before = _snapshot(con)
    ws, compilation = compile_root(con, ws_root)
    got = preview_occurrence(con, ws, compilation, "s", ts("2026-03-02 12:00"))
    assert got == {
        "sequence": "s",
        "occurrence_on": dt.date(2026, 3, 3),
        "occurrence_at": dt.datetime(2026, 3, 3, 9),
        "entries": 1,
        "manual_rejected": {},
        "exits": {"completed": 1},
        "steps": {"a": {"due": 1}, "b": {"skipped": 1}},
    }
    assert preview_occurrence(con, ws, compilation, "new", ts("2026-03-02 12:00"))[
        "occurrence_on"
    ] == dt.date(2026, 3, 2)
    assert _snapshot(con) == before


def test_late_activity_counts_from_the_next_occurrence(tmp_path):
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    root = write_sequences(
        tmp_path / "ws",
        {
            "s": classic(
                "s",
                """
        - {id: a, day: 1, action: follow_up}
        - {id: b, day: 2, action: follow_up}
        - {id: z, day: 9, action: follow_up}
        """,
                extra="starts_on: 2026-03-02",
            )
        },
    )
    tick(con, root, "2026-03-03 12:00")
    # ingested late: occurred before instants already processed
    insert(con, "activities", [activity("c1", "unsubscribed", "2026-03-02 10:00")])
    tick(con, root, "2026-03-04 12:00")
    assert actions(con) == [  # the decision of 03-03 is not rewritten
        ("s", "c1", "a", 1, "2026-03-02", "due"),
        ("s", "c1", "b", 2, "2026-03-03", "due"),
    ]
    assert enrollments(con) == [("s", "c1", "2026-03-02", "exited", "unsubscribed", "2026-03-04")]
    assert con.execute("select activities_counted from tick_state").fetchone() == (1,)


def test_second_process_gets_a_clear_busy_error(tmp_path):
    con = open_db(tmp_path)
    path = tmp_path / "db" / "sequencer.duckdb"
    code = textwrap.dedent(f"""
        from pipelines.db import connect
        from pipelines.errors import DatabaseBusy
        try:
            connect({str(path)!r})
        except DatabaseBusy as exc:
            print("BUSY", exc)
    """)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    assert out.stdout.startswith("BUSY"), out.stderr
    assert "another run holds the database" in out.stdout
    con.close()


def test_a_send_time_skip_does_not_change_later_decisions(tmp_path):
    """emails_sent counts emails the tick decided due, whatever the send step did later."""
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    steps = """
        - {id: intro, day: 1, action: email, template: t.j2, subject: "Hi"}
        - {id: bump, day: 2, action: follow_up, when: ["enrollment.emails_sent = 1"]}
    """
    root = write_sequences(
        tmp_path / "ws", {"s": classic("s", steps, extra="starts_on: 2026-03-02")}
    )
    (root / "sequences" / "templates" / "t.j2").write_text("Hello")
    tick(con, root, "2026-03-02 12:00")
    # the send step cancelled the intro (e.g. the address unsubscribed meanwhile)
    con.execute("update actions set status = 'skipped' where step = 'intro'")
    tick(con, root, "2026-03-03 12:00")
    decided = dict(con.execute("select step, decided_status from actions").fetchall())
    assert decided == {"intro": "due", "bump": "due"}
