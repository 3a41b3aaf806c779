"""The task queue a rep works (issue 12 item 5): short ids and unique prefixes, filters,
``show``, ``done`` and ``snooze`` for several ids, the CSV export, one line per task.

Tasks are inserted as the send step writes them (``insert_task``; the send's own titles and
bodies are tested in test_outbox_survivors.py); everything else goes through the CLI on a
real database file."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from pipelines.cli import main
from pipelines.db import connect
from pipelines.outbox.tasks import SHORT_ID, insert_task, list_tasks, short_ids
from tests.workspace_helpers import write_workspace

SEQ = """
    name: {name}
    owner: {owner}
    steps:
      - {{id: call, day: 1, action: call_reminder, note: "Call"}}
"""
# ids sharing long prefixes, as md5 keys sometimes do: the short id must grow past them
IDS = {
    "a1b2c3d4e5f60000000000000000aaaa": ("alice", "a-alice", "call_reminder", "2026-03-02"),
    "a1b2c3d4e5f60000000000000000bbbb": ("alice", "a-alice", "email_reminder", "2026-03-04"),
    "9f00aa11bb22cc33dd44ee55ff667788": ("alice", "b-alice", "follow_up", "2026-03-03"),
    "9f00aa11ffffffffffffffffffffffff": ("bruno", "b-bruno", "call_reminder", "2026-03-02"),
    "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c": ("alice", "a-alice", "call_reminder", "2026-03-06"),
}


@pytest.fixture
def queue(tmp_path):
    sequences = {n: SEQ.format(name=n, owner=o) for n, o in
                 [("a-alice", "alice"), ("b-alice", "alice"), ("b-bruno", "bruno")]}  # fmt: skip
    write_workspace(tmp_path, sequences)
    con = connect(tmp_path / "db.duckdb")
    con.execute(
        "insert into contacts (contact_id, email, first_name, last_name, owner_id) values"
        " ('c1', 'ann@example.com', 'Ann', 'Lee', 'alice'), ('c2', null, null, null, 'alice')"
    )
    for i, (task_id, (owner, sequence, kind, due)) in enumerate(IDS.items()):
        task = {"task_id": task_id, "owner_id": owner, "sequence": sequence, "step": "call",
                "contact_id": "c1" if i % 2 == 0 else "c2", "kind": kind,
                "due_on": dt.date.fromisoformat(due), "title": f"Task {i}"}  # fmt: skip
        insert_task(con, {**task, "body": f"To: ann@example.com\n\nLine {i}"})
    con.close()
    return tmp_path


def cli(root, capsys, *argv: str, user: str | None = "alice") -> tuple[int, str, str]:
    args = [*argv, "--project", str(root), "--db", str(root / "db.duckdb")]
    code = main([*args, "--user", user] if user else args)
    out, err = capsys.readouterr()
    return code, out, err


def state(root) -> dict[str, tuple]:
    con = connect(root / "db.duckdb")
    rows = con.execute("select task_id, done, snoozed_until from tasks").fetchall()
    logged = {r[0] for r in con.execute(
        "select activity_id from activities where type = 'task_completed'").fetchall()}  # fmt: skip
    con.close()
    return {t: (done, until, f"task_completed:{t}" in logged) for t, done, until in rows}


def test_short_ids_are_the_shortest_unique_prefix_of_at_least_eight(queue):
    con = connect(queue / "db.duckdb")
    shorts = short_ids(con, list(IDS))
    con.close()
    assert shorts == {
        "a1b2c3d4e5f60000000000000000aaaa": "a1b2c3d4e5f60000000000000000a",
        "a1b2c3d4e5f60000000000000000bbbb": "a1b2c3d4e5f60000000000000000b",
        "9f00aa11bb22cc33dd44ee55ff667788": "9f00aa11b",
        "9f00aa11ffffffffffffffffffffffff": "9f00aa11f",
        "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c": "0c0c0c0c",
    }
    # each is a prefix of its id alone, and no shorter prefix of at least 8 would be
    for task_id, short in shorts.items():
        assert [t for t in IDS if t.startswith(short)] == [task_id]
        shorter = short[:-1]
        assert len(short) == SHORT_ID or len([t for t in IDS if t.startswith(shorter)]) > 1


def test_the_queue_is_one_line_per_task_in_due_order_with_its_short_id(queue, capsys):
    code, out, err = cli(queue, capsys, "tasks")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "4 open task(s) for alice"
    listed = lines[1:5]
    assert [line.split()[0] for line in listed] == [
        "a1b2c3d4e5f60000000000000000a", "9f00aa11b", "a1b2c3d4e5f60000000000000000b", "0c0c0c0c",
    ]  # fmt: skip
    assert [line.split()[1] for line in listed] == [
        "2026-03-02",
        "2026-03-03",
        "2026-03-04",
        "2026-03-06",
    ]
    assert "Ann Lee: Task 0" in listed[0] and "c2: Task 1" in listed[2]  # name, else the id
    assert len(lines) == 6  # the header, one line per task, the hint: no bodies in the list


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["--sequence", "b-alice"], ["9f00aa11bb22cc33dd44ee55ff667788"]),
        (["--kind", "call_reminder"],
         ["a1b2c3d4e5f60000000000000000aaaa", "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c"]),
        (["--due-before", "2026-03-04"],
         ["a1b2c3d4e5f60000000000000000aaaa", "9f00aa11bb22cc33dd44ee55ff667788"]),
        (["--kind", "call_reminder", "--due-before", "2026-03-03"],
         ["a1b2c3d4e5f60000000000000000aaaa"]),
    ],
)  # fmt: skip
def test_filters(queue, capsys, filters, expected):
    code, out, _ = cli(queue, capsys, "tasks", *filters, "--csv", "-")
    assert code == 0
    assert [r["task_id"] for r in csv.DictReader(io.StringIO(out))] == expected


def test_a_bad_kind_or_date_is_one_line_and_no_traceback(queue, capsys):
    code, _, err = cli(queue, capsys, "tasks", "--kind", "meeting")
    assert code == 1 and err.startswith("error: --kind 'meeting': not a task kind")
    code, _, err = cli(queue, capsys, "tasks", "--due-before", "tomorrow")
    assert code == 2 and "'tomorrow' is not a date (YYYY-MM-DD)" in err


def test_done_takes_several_ids_and_prefixes_each_with_its_outcome(queue, capsys):
    """One prefix done, one full id done, one unknown, one ambiguous, one too short, one
    bruno's (refused: exit 4); the others are done all the same, each logged once."""
    code, out, err = cli(
        queue, capsys, "tasks", "done", "0c0c0c0c", "9f00aa11bb22cc33dd44ee55ff667788",
        "ffff0000", "a1b2c3d4", "0c0", "9f00aa11f",
    )  # fmt: skip
    assert code == 4
    assert out.splitlines() == ["0c0c0c0c         done", "9f00aa11bb22cc33dd44ee55ff667788 done"]
    assert err.splitlines() == [
        "error: no task 'ffff0000'",
        "error: task id 'a1b2c3d4' is ambiguous: it starts several tasks; type more",
        "error: no task '0c0' (a short id has at least 4 characters)",
        "error: task '9f00aa11ffffffffffffffffffffffff' belongs to 'bruno'",
    ]
    done = {t for t, (is_done, _, logged) in state(queue).items() if is_done and logged}
    assert done == {"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", "9f00aa11bb22cc33dd44ee55ff667788"}
    code, out, _ = cli(queue, capsys, "tasks", "done", "0c0c0c0c")
    assert (code, out.split()) == (0, ["0c0c0c0c", "already", "done"])
    assert state(queue)["0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c"] == (True, None, True)


def test_snooze_hides_a_task_until_the_owners_local_date(queue, capsys):
    """alice is in America/New_York: at 2026-03-05T03:00Z it is still March 4 there, so a
    task snoozed to March 5 is hidden; at 05:00Z (00:00 in New York) it is back, listed at
    its snooze date."""
    task = "a1b2c3d4e5f60000000000000000aaaa"
    code, out, _ = cli(queue, capsys, "tasks", "snooze", "a1b2c3d4e5f60000000000000000a",
                       "--until", "2026-03-05")  # fmt: skip
    assert code == 0 and "snoozed until 2026-03-05" in out
    assert state(queue)[task] == (False, dt.date(2026, 3, 5), False)

    def listed(as_of: str) -> list[str]:
        code, out, _ = cli(queue, capsys, "tasks", "--csv", "-", "--as-of", as_of)
        assert code == 0
        return [r["task_id"] for r in csv.DictReader(io.StringIO(out))]

    assert task not in listed("2026-03-05T03:00:00Z")
    back = listed("2026-03-05T05:00:00Z")
    assert back.index(task) == 2  # after the tasks due March 3 and 4, before March 6
    code, out, _ = cli(queue, capsys, "tasks", "--all", "--as-of", "2026-03-05T03:00:00Z")
    assert "snoozed to 2026-03-05" in out  # --all shows it, marked


def test_a_done_task_cannot_be_snoozed_and_snooze_needs_a_date(queue, capsys):
    cli(queue, capsys, "tasks", "done", "0c0c0c0c")
    code, _, err = cli(queue, capsys, "tasks", "snooze", "0c0c0c0c", "--until", "2026-04-01")
    assert code == 1 and "is done: nothing to snooze" in err
    code, _, err = cli(queue, capsys, "tasks", "snooze", "9f00aa11b")
    assert code == 2 and "--until DATE" in err
    assert state(queue)["9f00aa11bb22cc33dd44ee55ff667788"][1] is None


def test_show_prints_the_whole_task_with_its_body(queue, capsys):
    code, out, _ = cli(queue, capsys, "tasks", "show", "0c0c")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("0c0c0c0c  2026-03-06  open call_reminder")
    assert "  id       0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c" in lines
    assert "  contact  c1 Ann Lee <ann@example.com>" in lines
    assert lines[lines.index("  body:") + 1 :] == ["    To: ann@example.com", "    ", "    Line 4"]


def test_an_admin_works_a_reps_queue_a_rep_cannot(queue, capsys):
    code, out, _ = cli(queue, capsys, "tasks", "--owner", "bruno", user="olga")
    assert code == 0 and out.splitlines()[0] == "1 open task(s) for bruno"
    code, _, _ = cli(queue, capsys, "tasks", "done", "9f00aa11f", user="olga")
    assert code == 0 and state(queue)["9f00aa11ffffffffffffffffffffffff"][0] is True
    code, _, err = cli(queue, capsys, "tasks", "show", "0c0c0c0c", user="bruno")
    assert code == 4 and "belongs to 'alice'" in err


def test_the_csv_export_holds_every_listed_task_and_reads_back(queue, capsys):
    out_file = queue / "alice.csv"
    code, _, err = cli(queue, capsys, "tasks", "--all", "--csv", str(out_file))
    assert code == 0 and err == f"4 task(s) written to {out_file}\n"
    with open(out_file, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    con = connect(queue / "db.duckdb")
    expected = list_tasks(con, "alice", include_done=True)
    con.close()
    assert [r["task_id"] for r in rows] == [t["task_id"] for t in expected]
    assert [r["body"] for r in rows] == [t["body"] for t in expected]  # newlines kept
    assert rows[0]["contact_name"] == "Ann Lee" and rows[2]["contact_email"] == ""
    code, _, err = cli(queue, capsys, "tasks", "--csv", str(queue))
    assert code == 2 and "is a directory" in err


def test_limit_lists_the_oldest_and_says_how_many_more(queue, capsys):
    code, out, _ = cli(queue, capsys, "tasks", "--limit", "2")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "4 open task(s) for alice"
    assert [line.split()[1] for line in lines[1:3]] == ["2026-03-02", "2026-03-03"]
    assert lines[3] == "  … and 2 more (--limit, or --csv FILE for all)"
    code, _, err = cli(queue, capsys, "tasks", "--limit", "-1")
    assert code == 2 and "error" in err
