"""Pause and resume (SPEC 11, issue 12 item 1), rows in → rows out on a real DuckDB file.

A paused enrolment decides no step at an occurrence inside the pause, and that occurrence does
not count in its day index, so it resumes at the step where it stopped; exits still apply; a
paused sequence takes no entries; an out-of-office reply pauses until its stated date, else
7 days. Every expected row is worked out in the test's docstring.
"""

from __future__ import annotations

import datetime as dt
import json

from pipelines.cli import main
from pipelines.db import connect
from pipelines.tick import pause as pauses
from pipelines.tick.run import run_tick
from pipelines.workspace import load_workspace
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

THREE = """
- {id: a, day: 1, action: follow_up}
- {id: b, day: 2, action: follow_up}
- {id: c, day: 3, action: follow_up}
"""
START = "starts_on: 2026-03-02\n"


def steps_of(con, sequence: str, cid: str) -> list[tuple]:
    return [(step, day, on) for s, c, step, day, on, _ in actions(con, sequence) if c == cid]


def paused_until(con, sequence: str, cid: str):
    return con.execute(
        "select paused_until from enrollments where sequence = ? and contact_id = ?",
        [sequence, cid],
    ).fetchone()[0]


def daily(con, root, first: str, last: str, hour: str = "12:00") -> None:
    day = dt.date.fromisoformat(first)
    while day <= dt.date.fromisoformat(last):
        tick(con, root, f"{day} {hour}")
        day += dt.timedelta(days=1)


def test_a_paused_enrolment_resumes_at_the_step_where_it_stopped(tmp_path):
    """Daily 09:00 UTC, steps a/b/c on days 1/2/3, sequences s and t alike (one batched
    layer). Monday 03-02: p and q enter, step a. p is paused at 12:00 until Thursday 03-05.
    q: b Tue, c Wed, completes Wed. p: nothing Tue or Wed (paused, not counted), b Thu (day
    2), c Fri (day 3), completes Fri. A catch-up over the same days after the same pause
    decides the same."""
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("p"), contact("q")])
    seqs = {n: classic(n, THREE, extra=START) for n in ("s", "t")}
    root = write_sequences(tmp_path / "ws", seqs)
    tick(con, root, "2026-03-02 10:00")
    ws = load_workspace(root)
    for name in ("s", "t"):
        out = pauses.pause(con, ws, name, ["p"], ts("2026-03-02 12:00"), dt.date(2026, 3, 5))
        assert out == {"p": "paused"}
    assert paused_until(con, "s", "p") == dt.date(2026, 3, 5)
    daily(con, root, "2026-03-03", "2026-03-07")
    for name in ("s", "t"):
        assert steps_of(con, name, "q") == [
            ("a", 1, "2026-03-02"), ("b", 2, "2026-03-03"), ("c", 3, "2026-03-04")
        ]  # fmt: skip
        assert steps_of(con, name, "p") == [
            ("a", 1, "2026-03-02"), ("b", 2, "2026-03-05"), ("c", 3, "2026-03-06")
        ]  # fmt: skip
        assert {r[1]: (r[3], r[4], r[5]) for r in enrollments(con, name)} == {
            "p": ("exited", "completed", "2026-03-06"),
            "q": ("exited", "completed", "2026-03-04"),
        }
    daily_rows = enrollments(con), actions(con)

    con2 = open_db(tmp_path / "catch-up")
    insert(con2, "contacts", [contact("p"), contact("q")])
    tick(con2, root, "2026-03-02 10:00")
    for name in ("s", "t"):
        pauses.pause(con2, ws, name, ["p"], ts("2026-03-02 12:00"), dt.date(2026, 3, 5))
    tick(con2, root, "2026-03-07 12:00")
    assert (enrollments(con2), actions(con2)) == daily_rows


def test_pause_across_a_weekend_and_resume_by_hand(tmp_path):
    """Weekdays only (exclude_weekends). Thursday 03-05: p enters, a. Paused Thursday
    without a date; Friday and Monday decide nothing; resumed Monday 15:00; Tuesday 03-10
    decides b (day 2: Friday and Monday did not count)."""
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("p")])
    schedule = "{time: '09:00', timezone: UTC, exclude_weekends: true}"
    root = write_sequences(
        tmp_path / "ws",
        {"s": classic("s", THREE, extra="starts_on: 2026-03-05\n", schedule=schedule)},  # fmt: skip
    )
    tick(con, root, "2026-03-05 10:00")
    ws = load_workspace(root)
    assert pauses.pause(con, ws, "s", ["p"], ts("2026-03-05 12:00")) == {"p": "paused"}
    assert paused_until(con, "s", "p") == dt.date.max  # 'infinity' reads as date.max
    daily(con, root, "2026-03-06", "2026-03-09")
    assert steps_of(con, "s", "p") == [("a", 1, "2026-03-05")]
    assert pauses.resume(con, ws, "s", ["p"], ts("2026-03-09 15:00")) == {"p": "resumed"}
    assert paused_until(con, "s", "p") is None
    tick(con, root, "2026-03-10 12:00")
    assert steps_of(con, "s", "p") == [("a", 1, "2026-03-05"), ("b", 2, "2026-03-10")]


def test_until_is_a_local_date_on_a_dst_day(tmp_path):
    """New York 09:00, DST from Sunday 03-08: the Monday 03-09 occurrence is 13:00Z (it was
    14:00Z the week before). p enters Friday 03-06 (a), is paused until Monday 03-09: the
    Saturday and Sunday occurrences are paused, Monday 13:00Z decides b (day 2), Tuesday c."""
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("p")])
    schedule = "{time: '09:00', timezone: America/New_York}"
    root = write_sequences(
        tmp_path / "ws",
        {"s": classic("s", THREE, extra="starts_on: 2026-03-06\n", schedule=schedule)},  # fmt: skip
    )
    tick(con, root, "2026-03-06 15:00")
    pauses.pause(con, load_workspace(root), "s", ["p"], ts("2026-03-06 16:00"),
                 dt.date(2026, 3, 9))  # fmt: skip
    tick(con, root, "2026-03-09 13:05")
    assert steps_of(con, "s", "p") == [("a", 1, "2026-03-06"), ("b", 2, "2026-03-09")]
    tick(con, root, "2026-03-10 13:05")
    assert steps_of(con, "s", "p")[-1] == ("c", 3, "2026-03-10")


SMART = """
name: m
owner: alice
type: smart
interval_days: 1
duration_days: 4
starts_on: 2026-03-02
audience:
  where: ["true"]
schedule: {time: '09:00', timezone: UTC}
steps:
  - {id: s1, action: follow_up}
  - {id: s2, action: follow_up, when: ["false"]}
"""


def test_a_paused_smart_enrolment_does_not_age(tmp_path):
    """Smart, every day, duration 4: q completes on day 4 (03-05). p is paused for 03-03 and
    03-04, so its day 4 is 03-07: it completes then. s1 on day 1 for both; s2 never holds."""
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("p"), contact("q")])
    root = write_sequences(tmp_path / "ws", {"m": SMART})
    tick(con, root, "2026-03-02 10:00")
    pauses.pause(con, load_workspace(root), "m", ["p"], ts("2026-03-02 12:00"),
                 dt.date(2026, 3, 5))  # fmt: skip
    daily(con, root, "2026-03-03", "2026-03-08")
    exits = {r[1]: (r[4], r[5]) for r in enrollments(con, "m")}
    assert exits == {"p": ("completed", "2026-03-07"), "q": ("completed", "2026-03-05")}
    assert steps_of(con, "m", "p") == [("s1", 1, "2026-03-02")]


def test_a_paused_sequence_takes_no_entries_but_exits_still_apply(tmp_path):
    """The whole of s is paused Monday 12:00 until Thursday 03-05. r (enrolled) replies on
    Tuesday: it exits on Wednesday even so. n (a new contact from Tuesday) and a manual
    request wait: both enter on Thursday, when s resumes; p (enrolled) gets b on Thursday."""
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("p"), contact("r")])
    root = write_sequences(tmp_path / "ws", {"s": classic("s", THREE, extra=START)})
    tick(con, root, "2026-03-02 10:00")
    ws = load_workspace(root)
    out = pauses.pause(con, ws, "s", [], ts("2026-03-02 12:00"), dt.date(2026, 3, 5))
    assert out == {pauses.WHOLE: "paused"}
    insert(con, "contacts", [contact("n", created_at=ts("2026-03-03 08:00")), contact("m")])
    insert(con, "activities", [activity("r", "email_replied", "2026-03-03 10:00")])
    con.execute(
        "insert into manual_requests (sequence, contact_id, requested_at, status)"
        " values ('s', 'm', '2026-03-03 11:00', 'pending')"
    )
    daily(con, root, "2026-03-03", "2026-03-04")
    rows = {r[1]: (r[2], r[3], r[4]) for r in enrollments(con, "s")}
    assert rows == {"p": ("2026-03-02", "active", None), "r": ("2026-03-02", "exited", "replied")}
    tick(con, root, "2026-03-05 12:00")
    rows = {r[1]: (r[2], r[3]) for r in enrollments(con, "s")}
    assert rows["n"] == ("2026-03-05", "active") and rows["m"] == ("2026-03-05", "active")
    assert steps_of(con, "s", "p") == [("a", 1, "2026-03-02"), ("b", 2, "2026-03-05")]


def test_an_out_of_office_pauses_until_its_date_else_seven_days(tmp_path):
    """o's auto-reply (Monday 15:00) says until 03-05: Tue and Wed paused, b on Thu.
    w's auto-reply states no date: paused for 7 days from Monday 15:00, so Tuesday to
    Monday 03-09 decide nothing and b comes Tuesday 03-10. paused_until shows both."""
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("o"), contact("w")])
    root = write_sequences(tmp_path / "ws", {"s": classic("s", THREE, extra=START)})
    tick(con, root, "2026-03-02 10:00")
    insert(
        con,
        "activities",
        [
            activity("o", "email_auto_replied", "2026-03-02 15:00",
                     detail=json.dumps({"until": "2026-03-05"})),
            activity("w", "email_auto_replied", "2026-03-02 15:00", detail="{}"),
        ],
    )  # fmt: skip
    tick(con, root, "2026-03-03 12:00")
    assert paused_until(con, "s", "o") == dt.date(2026, 3, 5)
    assert paused_until(con, "s", "w") == dt.date(2026, 3, 9)
    daily(con, root, "2026-03-04", "2026-03-10")
    assert steps_of(con, "s", "o") == [("a", 1, "2026-03-02"), ("b", 2, "2026-03-05"),
                                       ("c", 3, "2026-03-06")]  # fmt: skip
    assert steps_of(con, "s", "w") == [("a", 1, "2026-03-02"), ("b", 2, "2026-03-10")]


def test_pauses_decide_the_same_batched_or_one_by_one(tmp_path):
    """Three sequences at one instant, one contact paused in two of them, the third paused
    whole: the batched tick and the one-by-one reference agree row for row."""
    rows = {}
    for mode in (True, False):
        con = open_db(tmp_path / str(mode))
        insert(con, "contacts", [contact(c) for c in ("p", "q", "r")])
        root = write_sequences(
            tmp_path / f"ws{mode}", {n: classic(n, THREE, extra=START) for n in "xyz"}
        )
        tick(con, root, "2026-03-02 10:00")
        ws = load_workspace(root)
        for name in "xy":
            pauses.pause(con, ws, name, ["p"], ts("2026-03-02 12:00"), dt.date(2026, 3, 4))
        pauses.pause(con, ws, "z", [], ts("2026-03-02 12:00"), dt.date(2026, 3, 5))
        insert(con, "contacts", [contact("late", created_at=ts("2026-03-02 20:00"))])
        ws, compilation = compile_root(con, root)
        run_tick(con, ws, compilation, ts("2026-03-06 12:00"), batched=mode)
        rows[mode] = (enrollments(con), actions(con))
        con.close()
    assert rows[True] == rows[False]
    decided = [r[:5] for r in rows[True][1]]
    assert ("y", "p", "b", 2, "2026-03-04") in decided  # paused 03-03 only
    assert ("z", "late", "a", 1, "2026-03-05") in decided  # z took no entries until 03-05


def cli(root, *argv: str, user: str | None = None) -> int:
    args = [*argv, "--project", str(root), "--db", str(root / "db.duckdb")]
    return main([*args, "--user", user] if user else args)


def test_the_pause_and_resume_commands(tmp_path, capsys):
    """Through the CLI: outcomes per contact, a date in the past refused, bruno (not the
    owner) refused with exit 4, resuming the whole sequence."""
    root = write_sequences(tmp_path, {"s": classic("s", THREE, extra=START)})
    con = connect(root / "db.duckdb")
    insert(con, "contacts", [contact("p"), contact("q"), contact("u")])
    con.close()
    assert cli(root, "run", "--as-of", "2026-03-02T10:00:00Z", "--allow-future") == 0
    con = connect(root / "db.duckdb")
    con.execute("delete from enrollments where contact_id = 'u'")
    con.close()
    capsys.readouterr()
    code = cli(root, "pause", "s", "p", "u", "ghost", "--until", "2026-03-09",
               "--as-of", "2026-03-02T12:00:00Z", user="alice")  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1
    assert out.split() == ["p", "paused", "u", "not_enrolled", "ghost", "unknown_contact"]
    assert cli(root, "pause", "s", "q", "--until", "2026-03-01",
               "--as-of", "2026-03-02T12:00:00Z", user="alice") == 1  # fmt: skip
    assert "must be after today (2026-03-02" in capsys.readouterr().err
    assert cli(root, "why", "s", "p", "--as-of", "2026-03-02T13:00:00Z", user="alice") == 0
    assert "paused 2026-03-02 12:00Z until 2026-03-09 (pause): no step decided" in (
        capsys.readouterr().out
    )  # why tells the pause
    assert cli(root, "pause", "s", "q", user="bruno") == 4
    assert "belongs to 'alice'" in capsys.readouterr().err
    assert cli(root, "resume", "s", "--as-of", "2026-03-03T08:00:00Z", user="olga") == 0
    assert capsys.readouterr().out.split() == ["(whole", "sequence)", "resumed"]
    con = connect(root / "db.duckdb")
    assert con.execute("select count(*) from pauses where resumed_at is null").fetchone() == (0,)
    con.close()
