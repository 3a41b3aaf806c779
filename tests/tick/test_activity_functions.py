"""Activity functions in conditions (issue 12, item 7) on real rows: ``activity_count`` counts
exactly the activities in (t - interval, t] at each occurrence t, ``last_activity_at`` is the
latest at or before t; in audiences, step ``when`` and ``exit.where``; the same decisions
ticking daily, once after days of catch-up, batched or one sequence at a time; the preview
sees what the tick sees."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipelines import db
from pipelines.project import Project
from pipelines.tick.occurrences import Occurrence
from pipelines.tick.run import run_tick
from pipelines.tick.state import start_run
from tests.tick_helpers import (
    actions,
    activity,
    classic,
    compile_root,
    contact,
    enrollments,
    insert,
    open_db,
    ts,
    write_sequences,
)

D0 = "2026-03-02"  # a Monday; every sequence runs at 09:00 UTC, weekends included
STARTS = "starts_on: 2026-03-02"
LATER = "{id: later, day: 10, action: follow_up}"  # keeps enrolments active

SEQUENCES = {
    # entries: a 30-day window; B contacts only
    "boundary": classic(
        "boundary",
        f"- {{id: t1, day: 1, action: follow_up}}\n- {LATER}",
        audience="where: [\"first_name LIKE 'B%'\", "
        "\"activity_count('meeting', INTERVAL 30 DAY) >= 1\"]",
        extra=STARTS,
    ),
    # an audience whose only activity ages out before the sequence starts (A contacts)
    "aged": classic(
        "aged",
        f"- {{id: t1, day: 1, action: follow_up}}\n- {LATER}",
        audience="where: [\"first_name LIKE 'A%'\", "
        "\"activity_count('meeting', INTERVAL 2 DAY) >= 1\"]",
        extra="starts_on: 2026-03-04",
    ),
    # exit.where: out once the last meeting is 3 days old, with no new activity (F contacts)
    "fresh": classic(
        "fresh",
        f"- {{id: t1, day: 1, action: follow_up}}\n- {LATER}",
        audience="where: [\"first_name LIKE 'F%'\"]",
        extra=f"{STARTS}\nexit: {{where: [\"activity_count('meeting', INTERVAL 3 DAY) = 0\"]}}",
    ),
    # step when: a call in the last day, then a call in the last 36 hours (C contacts)
    "calls": classic(
        "calls",
        """
        - {id: t1, day: 1, action: follow_up,
           when: ["activity_count('call_outgoing', INTERVAL 1 DAY) >= 1"]}
        - {id: t2, day: 2, action: follow_up,
           when: ["last_activity_at('call_outgoing') > now() - INTERVAL 36 HOUR"]}
        - {id: t3, day: 3, action: follow_up}
        """,
        audience="where: [\"first_name LIKE 'C%'\"]",
        extra=STARTS,
    ),
}


def _rows(con) -> None:
    t = ts(f"{D0} 09:00")
    day = dt.timedelta(days=1)
    insert(con, "contacts", [contact(c) for c in "b1 b2 b3 b4 a1 a2 f1 f2 f3 c1 c2 c3".split()])
    insert(
        con,
        "activities",
        [
            activity("b1", "meeting", f"{t - 30 * day}"),  # exactly t - 30 days: out
            activity("b2", "meeting", f"{t}"),  # exactly t: in
            activity("b3", "meeting", f"{t - 30 * day + dt.timedelta(seconds=1)}"),  # in
            activity("b4", "meeting", f"{t + dt.timedelta(seconds=1)}"),  # after t: next day
            activity("a1", "meeting", f"{D0} 08:00"),  # aged out by 03-04 09:00
            activity("a2", "meeting", "2026-03-03 10:00"),  # still in at 03-04 09:00
            activity("f1", "meeting", f"{D0} 08:00"),
            activity("f3", "meeting", "2026-03-03 08:00"),
            activity("c1", "call_outgoing", f"{D0} 08:00"),
            activity("c3", "call_outgoing", f"{t - day}"),  # exactly t - 1 day: out
        ],
    )


EXPECTED_ENROLLMENTS = [
    ("aged", "a2", "2026-03-04", "active", None, None),
    ("boundary", "b2", "2026-03-02", "active", None, None),
    ("boundary", "b3", "2026-03-02", "active", None, None),
    ("boundary", "b4", "2026-03-03", "active", None, None),
    ("calls", "c1", "2026-03-02", "exited", "completed", "2026-03-04"),
    ("calls", "c2", "2026-03-02", "exited", "completed", "2026-03-04"),
    ("calls", "c3", "2026-03-02", "exited", "completed", "2026-03-04"),
    # f1's meeting (03-02 08:00) leaves the 3-day window at 03-05 09:00, f3's at 03-06 09:00;
    # f2 never had one: the exit condition keeps it out
    ("fresh", "f1", "2026-03-02", "exited", "condition", "2026-03-05"),
    ("fresh", "f3", "2026-03-03", "exited", "condition", "2026-03-06"),
]
EXPECTED_CALLS = [
    ("calls", "c1", "t1", 1, "2026-03-02", "due"),
    ("calls", "c1", "t2", 2, "2026-03-03", "due"),
    ("calls", "c1", "t3", 3, "2026-03-04", "due"),
    ("calls", "c2", "t1", 1, "2026-03-02", "skipped"),
    ("calls", "c2", "t2", 2, "2026-03-03", "skipped"),  # no call: NULL
    ("calls", "c2", "t3", 3, "2026-03-04", "due"),
    ("calls", "c3", "t1", 1, "2026-03-02", "skipped"),  # its call is exactly 1 day old
    ("calls", "c3", "t2", 2, "2026-03-03", "skipped"),  # 48 hours old: not within 36
    ("calls", "c3", "t3", 3, "2026-03-04", "due"),
]
LAST_DAY = 6  # ticks on 03-02 .. 03-08


def _setup(tmp_path: Path, label: str):
    root = write_sequences(tmp_path / label / "ws", SEQUENCES)
    con = open_db(tmp_path / label)
    _rows(con)
    return root, con


def _tick(con, root: Path, as_of: dt.datetime, *, batched: bool) -> None:
    ws, compilation = compile_root(con, root)
    db.lock_down(con)
    report = run_tick(con, ws, compilation, as_of, batched=batched)
    assert not report.failed and not report.batch_fallbacks, report.failed


@pytest.mark.parametrize(
    ("daily", "batched"), [(True, True), (False, True), (True, False), (False, False)]
)
def test_windows_are_exact_at_every_occurrence_daily_or_caught_up(tmp_path, daily, batched):
    root, con = _setup(tmp_path, "run")
    days = range(LAST_DAY + 1) if daily else [LAST_DAY]
    for n in days:
        _tick(con, root, ts(f"{D0} 10:00") + dt.timedelta(days=n), batched=batched)
    assert enrollments(con) == EXPECTED_ENROLLMENTS
    assert actions(con, "calls") == EXPECTED_CALLS
    con.close()


def test_an_audience_reading_activities_is_not_precomputed_for_the_run(tmp_path):
    """Like now(): the per-run static audience assumes a contact's row is the same at every
    instant of the run, which a moving window breaks."""
    root, con = _setup(tmp_path, "reads")
    _, compilation = compile_root(con, root)
    reads = {name: c.reads("audience") for name, c in compilation.sequences.items()}
    assert reads["boundary"].activities and reads["aged"].activities
    assert not reads["fresh"].activities and compilation.sequences["fresh"].reads().activities
    at = ts("2026-03-04 09:00")
    group = [Occurrence(name, at.date(), at) for name in sorted(SEQUENCES)]
    con.execute("begin transaction")
    try:
        assert start_run(con, [group], compilation) == {"calls", "fresh"}
    finally:
        con.execute("rollback")
    con.close()


def test_preview_counts_the_audience_at_the_next_occurrence(tmp_path):
    root, con = _setup(tmp_path, "preview")
    path = tmp_path / "preview" / "db" / "sequencer.duckdb"
    con.close()
    project = Project(root, db_path=path)
    # next occurrence 03-02 09:00: b2 (at t) and b3 (just inside 30 days); b4 is after t
    before = project.preview("boundary", ts(f"{D0} 08:00"))
    assert before.audience.audience == 2
    assert [row["contact_id"] for row in before.audience.sample] == ["b2", "b3"]
    assert before.next_occurrence["entries"] == 2
    project.run(ts(f"{D0} 10:00"), allow_future=True)
    # next occurrence 03-03 09:00: b4's meeting is in the window, b3's has left it; b4 enters
    after = project.preview("boundary", ts(f"{D0} 10:00"))
    assert (after.audience.audience, after.next_occurrence["entries"]) == (2, 1)
    assert [row["contact_id"] for row in after.audience.sample] == ["b2", "b4"]
    # 03-04 09:00: a1's meeting has left the 2-day window, a2's has not
    aged = project.preview("aged", ts(f"{D0} 10:00"))
    assert (aged.audience.audience, aged.next_occurrence["entries"]) == (1, 1)
    assert [row["contact_id"] for row in aged.audience.sample] == ["a2"]


def test_machine_opens_do_not_count_as_opens(tmp_path):
    seq = classic(
        "opens",
        "- {id: t1, day: 1, action: follow_up}",
        audience="where: [\"activity_count('email_opened', INTERVAL 14 DAY) >= 2\"]",
        extra=STARTS,
    )
    root = write_sequences(tmp_path / "ws", {"opens": seq})
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("h"), contact("m")])
    machine = '{"machine": true}'
    insert(
        con,
        "activities",
        [
            activity("h", "email_opened", "2026-02-25 10:00"),
            activity("h", "email_opened", "2026-03-01 10:00"),
            activity("m", "email_opened", "2026-02-25 10:00"),
            activity("m", "email_opened", "2026-03-01 10:00", detail=machine),
        ],
    )
    _tick(con, root, ts(f"{D0} 10:00"), batched=True)
    assert [row[1] for row in enrollments(con)] == ["h"]
    con.close()


def test_why_evaluates_the_activity_condition_at_each_occurrence(tmp_path):
    """b4's meeting came after the 03-02 occurrence: `why` shows the activity condition
    false there (b4 kept out by it) and b4 entering at 03-03, when the tick enrolled it."""
    root, con = _setup(tmp_path, "why")
    path = tmp_path / "why" / "db" / "sequencer.duckdb"
    con.close()
    project = Project(root, db_path=path)
    project.run(ts(f"{D0} 10:00"), allow_future=True)
    project.run(ts("2026-03-03 10:00"), allow_future=True)
    story = project.why("boundary", "b4", ts("2026-03-03 10:00"))
    first = story.eligible[0]
    assert (str(first.occurrence_on), first.outcome) == (D0, "audience")
    activity_line = "where: activity_count('meeting', INTERVAL 30 DAY) >= 1"
    assert first.conditions[activity_line] is False
    assert first.conditions["where: first_name LIKE 'B%'"] is True
    assert str(story.entered["enrolled_on"]) == "2026-03-03"
