"""Permissions of issue 9 (item 7) through the real CLI: ``metrics`` reads by default and only
an admin or the operator rebuilds (``--rebuild``: tables and the reader snapshot); admins list
and close any rep's tasks (``tasks --owner U``)."""

from __future__ import annotations

import pytest

from pipelines.db import connect
from tests.test_metrics import table_rows
from tests.test_scope import add_task, cli, enrol, task_state, ws  # noqa: F401  (ws: fixture)


def snapshot(tmp_path):
    return tmp_path / ".sequencer" / "snapshot.duckdb"


def metric_tables(tmp_path) -> list[str]:
    con = connect(tmp_path / "db.duckdb")
    names = con.execute(
        "select table_name from information_schema.tables"
        " where table_name in ('sequence_metrics', 'step_metrics') order by 1"
    ).fetchall()
    con.close()
    return [n for (n,) in names]


@pytest.mark.parametrize("user", ["alice", "vera"])
def test_a_rep_or_viewer_metrics_reads_and_never_rebuilds(ws, tmp_path, capsys, user):  # noqa: F811
    """No metrics built yet: a rep's or a viewer's ``metrics`` exits 0, says there are none,
    creates no table and publishes no snapshot; their ``metrics --rebuild`` exits 4."""
    enrol(tmp_path, [("a-alice", "c1")])
    assert cli(tmp_path, "metrics", user=user) == 0
    assert "no metrics" in capsys.readouterr().out
    assert metric_tables(tmp_path) == [] and not snapshot(tmp_path).exists()
    assert cli(tmp_path, "metrics", "--rebuild", user=user) == 4
    assert "operator or an admin" in capsys.readouterr().err
    assert metric_tables(tmp_path) == [] and not snapshot(tmp_path).exists()


@pytest.mark.parametrize("user", ["olga", None])
def test_an_admin_or_the_operator_rebuilds(ws, tmp_path, capsys, user):  # noqa: F811
    enrol(tmp_path, [("a-alice", "c1"), ("a-alice", "c2")])
    assert cli(tmp_path, "metrics", "--rebuild", user=user) == 0
    out = capsys.readouterr().out
    assert [(r["sequence"], r["enrolled"]) for r in table_rows(out.split("\nmetrics ")[0])] == [
        ("a-alice", "2")
    ]
    assert "metrics rebuilt" in out
    assert metric_tables(tmp_path) == ["sequence_metrics", "step_metrics"]
    assert snapshot(tmp_path).is_file()


def test_reading_shows_the_last_build_and_says_when_runs_came_after(ws, tmp_path, capsys):  # noqa: F811
    """The operator rebuilds (a-alice: 1 enrolment); a second enrolment and a run follow.
    alice's ``metrics`` shows the built numbers (1), says when they were built and that a
    run came after; a rebuild then shows 2 and alice's next read has no such note."""
    enrol(tmp_path, [("a-alice", "c1")])
    assert cli(tmp_path, "metrics", "--rebuild") == 0
    enrol(tmp_path, [("a-alice", "c2")])
    assert cli(tmp_path, "run", "--as-of", "2026-03-02T15:00:00Z") == 0
    capsys.readouterr()
    assert cli(tmp_path, "metrics", user="alice") == 0
    out = capsys.readouterr().out
    assert [r["enrolled"] for r in table_rows(out.split("\nmetrics ")[0])] == ["1"]
    assert "metrics built at" in out and "1 run(s) since" in out
    assert cli(tmp_path, "metrics", "--rebuild") == 0
    capsys.readouterr()
    assert cli(tmp_path, "metrics", user="alice") == 0
    out = capsys.readouterr().out
    assert [r["enrolled"] for r in table_rows(out.split("\nmetrics ")[0])] == ["2"]
    assert "run(s) since" not in out


# --- an admin acts on a rep's task queue ---------------------------------------------------


def test_an_admin_lists_and_closes_a_reps_tasks(ws, tmp_path, capsys):  # noqa: F811
    add_task(tmp_path, "t-alice", "alice")
    add_task(tmp_path, "t-bruno", "bruno")
    assert cli(tmp_path, "tasks", "--owner", "alice", user="olga") == 0
    out = capsys.readouterr().out
    assert "1 open task(s) for alice" in out and "t-alice" in out and "t-bruno" not in out
    assert cli(tmp_path, "tasks", "done", "t-alice", user="olga") == 0
    assert task_state(tmp_path)[0] == [("t-alice", True), ("t-bruno", False)]


@pytest.mark.parametrize("user", ["bruno", "vera"])
def test_a_rep_or_viewer_cannot_list_another_reps_tasks(ws, tmp_path, capsys, user):  # noqa: F811
    add_task(tmp_path, "t-alice", "alice")
    assert cli(tmp_path, "tasks", "--owner", "alice", user=user) == 4
    err = capsys.readouterr().err
    assert "alice" in err and "t-alice" not in err
    assert cli(tmp_path, "tasks", "--owner", "alice", user="alice") == 0  # their own: fine
