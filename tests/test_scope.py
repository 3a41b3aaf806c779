"""User scope (SPEC 9): reps see only their own sequences; viewers cannot own one."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.cli import main
from pipelines.db import connect
from pipelines.errors import PermissionDenied
from pipelines.outbox.tasks import insert_task
from pipelines.scope import Actor, require_sequence, resolve_actor, visible_sequences
from pipelines.workspace import load_workspace
from tests.test_metrics import table_rows
from tests.workspace_helpers import write_workspace

SEQ = """
    name: {name}
    owner: {owner}
    steps:
      - {{id: call, day: 1, action: call_reminder, note: "Call"}}
"""


@pytest.fixture
def ws(tmp_path):
    write_workspace(
        tmp_path,
        {
            "a-alice": SEQ.format(name="a-alice", owner="alice"),
            "b-bruno": SEQ.format(name="b-bruno", owner="bruno"),
        },
    )
    return load_workspace(tmp_path)


def test_rep_sees_only_own_admin_and_operator_see_all(ws):
    assert [s.name for s in visible_sequences(ws, resolve_actor(ws, "alice"))] == ["a-alice"]
    assert [s.name for s in visible_sequences(ws, resolve_actor(ws, "vera"))] == []
    everyone = ["a-alice", "b-bruno"]
    assert [s.name for s in visible_sequences(ws, resolve_actor(ws, "olga"))] == everyone
    assert [s.name for s in visible_sequences(ws, Actor())] == everyone


def test_rep_cannot_use_another_users_sequence(ws):
    with pytest.raises(PermissionDenied, match="belongs to 'bruno'"):
        require_sequence(ws, resolve_actor(ws, "alice"), "b-bruno")
    assert require_sequence(ws, resolve_actor(ws, "olga"), "b-bruno").owner == "bruno"


def test_the_refusal_says_whose_sequence_it_is_and_who_asked(ws):
    """alice (a rep) asks for bruno's sequence: the message names the sequence, its owner,
    the acting user and the rule, word for word."""
    with pytest.raises(PermissionDenied) as refused:
        require_sequence(ws, resolve_actor(ws, "alice"), "b-bruno")
    assert str(refused.value) == (
        "sequence 'b-bruno' belongs to 'bruno'; user 'alice' may only use their own sequences"
    )


@pytest.mark.parametrize(
    ("argv", "heading"),
    [
        ([], "# sequences visible to operator (full access)"),
        (["--user", "alice"], "# sequences visible to user 'alice'"),
    ],
)
def test_cli_sequences_heading_names_the_actor(ws, tmp_path, capsys, monkeypatch, argv, heading):
    """`sequences` with no user acts as the operator; with ``--user alice`` as alice. Its
    first line says which, so an operator reading the list knows whose view it is."""
    monkeypatch.delenv("SEQUENCER_USER", raising=False)
    assert main(["sequences", "--project", str(tmp_path), *argv]) == 0
    assert capsys.readouterr().out.splitlines()[0] == heading


def test_unknown_user_is_refused(ws):
    with pytest.raises(PermissionDenied, match="unknown user"):
        resolve_actor(ws, "mallory")


def test_cli_preview_of_another_users_sequence_exits_4(ws, tmp_path, capsys):
    code = main(["preview", "b-bruno", "--project", str(tmp_path), "--user", "alice"])
    assert code == 4
    assert "belongs to 'bruno'" in capsys.readouterr().err


def test_cli_sequences_respects_env_user(ws, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEQUENCER_USER", "bruno")
    assert main(["sequences", "--project", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "b-bruno" in out and "a-alice" not in out


def test_sequence_owned_by_viewer_does_not_validate(tmp_path, capsys):
    write_workspace(tmp_path, {"v": SEQ.format(name="v", owner="vera")})
    code = main(["validate", "--project", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert "sequences/v.yaml" in err and "lacks create_sequences" in err


# --- scope and permissions through the command line ----------------------------------------


def cli(tmp_path, *argv: str, user: str | None = None) -> int:
    args = [*argv, "--project", str(tmp_path), "--db", str(tmp_path / "db.duckdb")]
    return main([*args, "--user", user] if user else args)


def enrol(tmp_path, rows: list[tuple[str, str]]) -> None:
    con = connect(tmp_path / "db.duckdb")
    for sequence, contact in rows:
        con.execute(
            "insert into enrollments (sequence, contact_id, enrollment_id, enrolled_on,"
            " enrolled_at, status) values (?, ?, ?, '2026-03-02', '2026-03-02 14:30', 'active')",
            [sequence, contact, f"{sequence}:{contact}"],
        )
    con.close()


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("alice", [("a-alice", "2")]),
        ("bruno", [("b-bruno", "1")]),
        ("vera", []),
        ("olga", [("a-alice", "2"), ("b-bruno", "1")]),
        (None, [("a-alice", "2"), ("b-bruno", "1")]),
    ],
)
def test_cli_metrics_shows_only_the_users_own_sequences(ws, tmp_path, capsys, user, expected):
    """a-alice has 2 enrolments, b-bruno 1; the operator rebuilt the metrics. A rep's
    `metrics` lists only their own sequence (with its own count); the viewer owns none (SPEC
    9: own sequences only, and a viewer cannot own one); the admin and the operator see both.
    Reading rebuilds nothing: the last line says when the tables were built."""
    enrol(tmp_path, [("a-alice", "c1"), ("a-alice", "c2"), ("b-bruno", "c3")])
    assert cli(tmp_path, "metrics", "--rebuild") == 0
    capsys.readouterr()
    assert cli(tmp_path, "metrics", user=user) == 0
    table, built = capsys.readouterr().out.rstrip("\n").rsplit("\n", 1)
    assert built.startswith("metrics built at")
    assert [(r["sequence"], r["enrolled"]) for r in table_rows(table)] == expected


def test_cli_metrics_of_another_users_sequence_exits_4(ws, tmp_path, capsys):
    enrol(tmp_path, [("b-bruno", "c3")])
    assert cli(tmp_path, "metrics", "--sequence", "b-bruno", user="alice") == 4
    captured = capsys.readouterr()
    assert "belongs to 'bruno'" in captured.err and "b-bruno" not in captured.out


def add_task(tmp_path, task_id: str, owner: str) -> None:
    con = connect(tmp_path / "db.duckdb")
    insert_task(con, {"task_id": task_id, "owner_id": owner, "sequence": f"a-{owner}",
                      "contact_id": "c1", "step": "call", "kind": "call_reminder",
                      "due_on": dt.date(2026, 3, 2), "title": "Call"})  # fmt: skip
    con.close()


def task_state(tmp_path) -> tuple[list, list]:
    """(task_id, done) of every task, and the task_completed activities."""
    con = connect(tmp_path / "db.duckdb")
    tasks = con.execute("select task_id, done from tasks order by task_id").fetchall()
    logged = con.execute(
        "select activity_id from activities where type = 'task_completed'"
    ).fetchall()
    con.close()
    return tasks, logged


def test_cli_rep_cannot_complete_another_reps_task(ws, tmp_path, capsys):
    """Alice's task: Bruno's `tasks done` is refused (exit 4, naming the owner) and changes
    nothing; Alice's own completes it and logs one task_completed activity."""
    add_task(tmp_path, "t-alice", "alice")
    assert cli(tmp_path, "tasks", "done", "t-alice", user="bruno") == 4
    assert "belongs to 'alice'" in capsys.readouterr().err
    assert task_state(tmp_path) == ([("t-alice", False)], [])
    assert cli(tmp_path, "tasks", "done", "t-alice", user="alice") == 0
    assert task_state(tmp_path) == ([("t-alice", True)], [("task_completed:t-alice",)])


@pytest.mark.parametrize(("user", "code", "runs"), [("alice", 4, 0), ("vera", 4, 0),
                                                     ("olga", 0, 1), (None, 0, 1)])  # fmt: skip
def test_cli_run_is_for_the_operator_or_an_admin(ws, tmp_path, capsys, user, code, runs):
    """A tick runs every user's sequences: a rep (alice) or a viewer (vera) is refused with
    exit 4 before anything is written; an admin (olga) and the operator tick (one run row)."""
    assert cli(tmp_path, "run", "--as-of", "2026-03-02T15:00:00Z", user=user) == code
    if code:
        assert "operator or an admin" in capsys.readouterr().err
    con = connect(tmp_path / "db.duckdb")
    assert con.execute("select count(*) from runs").fetchone()[0] == runs
    con.close()
