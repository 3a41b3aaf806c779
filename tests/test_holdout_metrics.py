"""holdout_metrics (SPEC 11, docs/metrics.md) on a hand-built table: the arms, the outcomes in
the window [enrolled_at, enrolled_at + window_days), and the lift equal to
pipelines.stats.compare's numbers (holdout = A, treated = B)."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.holdouts import holdout_lines, window_days
from pipelines.metrics import build_metrics
from pipelines.models import Sequence
from pipelines.stats import compare
from tests.tick_helpers import open_db

STEPS = [{"id": "a", "day": 1, "action": "follow_up"}, {"id": "b", "day": 5, "action": "follow_up"}]
DAY1 = dt.datetime(2026, 3, 2, 9)


def _seq(name: str, percent: float) -> Sequence:
    return Sequence(name=name, owner="alice", steps=STEPS, holdout_percent=percent)


def _enrol(con, sequence: str, prefix: str, n: int, status: str, at: dt.datetime) -> None:
    con.execute(
        "insert into enrollments (sequence, contact_id, enrollment_id, enrolled_on, enrolled_at,"
        " status, bucket) select $s, $p || i, $s || ':' || $p || i, $at::date, $at, $status, 0"
        " from range($n) as r(i)",
        {"s": sequence, "p": prefix, "n": n, "status": status, "at": at},
    )


def _acts(con, prefix: str, ids: range, type_: str, at: dt.datetime) -> None:
    con.execute(
        "insert into activities (activity_id, contact_id, type, occurred_at)"
        " select $type || $p || i || $at::varchar, $p || i, $type, $at"
        " from range($lo, $hi) as r(i)",
        {"type": type_, "p": prefix, "lo": ids.start, "hi": ids.stop, "at": at},
    )


@pytest.fixture
def con(tmp_path):
    """Sequence h (holdout 10 %, last step day 5: a 5-day window). Enrolled 03-02 09:00:
    treated t0…t249, holdout h0…h219; 03-04 09:00 one more holdout y0 (the last holdout
    date) and treated x0; 02-20 (before the first holdout) treated e0…e4, who replied:
    not compared. Replies in the window: t0…t49 (at 09:00, the window's first instant),
    h0…h19 (03-06); outside it: t50…t59 at 03-07 09:00 (the window's end, excluded),
    h20…h29 before enrolment (03-01). Meetings: t100…t129, h100…h104 on 03-03, y0 on 03-08
    (inside its window). Sequence gone (not in the workspace) and sequence off (0 %, no
    holdout) have no row."""
    con = open_db(tmp_path)
    _enrol(con, "h", "t", 250, "active", DAY1)
    _enrol(con, "h", "h", 220, "holdout", DAY1)
    _enrol(con, "h", "x", 1, "active", DAY1 + dt.timedelta(days=2))
    _enrol(con, "h", "y", 1, "holdout", DAY1 + dt.timedelta(days=2))
    _enrol(con, "h", "e", 5, "exited", DAY1 - dt.timedelta(days=10))
    _enrol(con, "gone", "g", 3, "holdout", DAY1)
    _enrol(con, "off", "o", 3, "active", DAY1)
    _acts(con, "t", range(50), "email_replied", DAY1)
    _acts(con, "h", range(20), "email_replied", DAY1 + dt.timedelta(days=4))
    _acts(con, "t", range(50, 60), "email_replied", DAY1 + dt.timedelta(days=5))
    _acts(con, "h", range(20, 30), "email_replied", DAY1 - dt.timedelta(days=1))
    _acts(con, "e", range(5), "email_replied", DAY1 - dt.timedelta(days=9))
    _acts(con, "t", range(100, 130), "meeting", DAY1 + dt.timedelta(days=1))
    _acts(con, "h", range(100, 105), "meeting", DAY1 + dt.timedelta(days=1))
    _acts(con, "y", range(1), "meeting", DAY1 + dt.timedelta(days=6))
    rows = build_metrics(con, [_seq("h", 10), _seq("off", 0)])
    assert rows["holdout_metrics"] == 2
    yield con
    con.close()


def test_the_lift_is_stats_compare_of_the_two_arms(con):
    """replied: holdout 20/221, treated 50/251; meeting: holdout 6/221, treated 30/251 — each
    row's rates, lift, interval, p-value, test and verdict are compare's for those counts."""
    cur = con.execute("select * from holdout_metrics order by outcome desc")
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    assert [(r["sequence"], r["outcome"]) for r in rows] == [("h", "replied"), ("h", "meeting")]
    for row, (x_a, x_b) in zip(rows, [(20, 50), (6, 30)], strict=True):
        c = compare(x_a, 221, x_b, 251, names=("holdout", "treated"))
        assert (row["holdout"], row["holdout_outcomes"]) == (221, x_a)
        assert (row["treated"], row["treated_outcomes"]) == (251, x_b)
        assert row["window_days"] == 5 and row["holdout_percent"] == 10
        assert row["holdout_rate"] == pytest.approx(c.rate_a)
        assert row["treated_rate"] == pytest.approx(c.rate_b)
        assert row["lift"] == pytest.approx(c.diff)
        assert (row["lift_low"], row["lift_high"]) == pytest.approx((c.ci_low, c.ci_high))
        assert row["p_value"] == pytest.approx(c.p_value)
        assert (row["test"], row["significant"], row["verdict"]) == (
            c.test, c.significant, c.verdict
        )  # fmt: skip
    assert rows[0]["verdict"] == "treated better"  # 19.9 % vs 9.0 %


def test_sequence_metrics_count_the_treated_only_and_the_cli_lines_print_the_lift(con):
    """sequence_metrics of h: 256 enrolled (t0…t249, x0, e0…e4), no holdout; the metrics
    lines name the arms, the lift in points with its interval and the verdict."""
    assert con.execute(
        "select enrolled from sequence_metrics where sequence = 'h' and period = 'all'"
    ).fetchone() == (256,)
    c = compare(20, 221, 50, 251, names=("holdout", "treated"))
    lines = holdout_lines(con)
    assert lines[0] == (
        "holdout h replied within 5 days: treated 50/251, holdout 20/221;"
        f" lift {100 * c.diff:+.1f} pts [{100 * c.ci_low:+.1f}, {100 * c.ci_high:+.1f}]"
        " (95 %); treated better"
    )
    assert len(lines) == 2 and holdout_lines(con, only=["off"]) == []


def test_window_days_is_the_sequence_length_in_calendar_days():
    """Classic: the last step's day; smart: duration_days; weekends excluded: × 7/5 up."""
    smart = Sequence(
        name="n", owner="o", type="smart", interval_days=2, duration_days=14,
        schedule={"exclude_weekends": True}, steps=[{"id": "a", "action": "follow_up"}],
    )  # fmt: skip
    assert window_days(_seq("h", 10)) == 5
    assert window_days(smart) == 20
