"""Every command, driven with bad input: a one-line reason and an exit code, never a traceback.

Exit codes (``pipelines/cli.py``): 1 bad input, 2 bad usage (malformed or out-of-range
argument), 3 busy, 4 permission denied; 5 would be an internal error (a bug), so these tests
accept 1–4 only. Commands and their options are read from the parser, so a new command or a
new ``--as-of`` is swept too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import COMMANDS, build_parser, main
from pipelines.db import connect
from tests.workspace_helpers import write_workspace

SEQ = """
    name: outbound
    owner: alice
    audience: {where: ["email like '%@acme.example'"]}
    steps:
      - {id: intro, day: 1, action: email, template: intro.md.j2, subject: "Hi"}
"""
POSITIONAL = {
    "preview": ["outbound"],
    "why": ["outbound", "c1"],
    "enroll": ["outbound", "c1"],
    "unenroll": ["outbound", "c1"],
    "pause": ["outbound", "c1"],
    "resume": ["outbound", "c1"],
    "mailbox": ["poll"],
    "backtest": ["outbound", "--from", "2026-03-02", "--to", "2026-03-03"],
}
READS_NO_DATABASE = {"sequences"}  # lists the files only: a garbage --db is never opened
BAD_AS_OF = ["2026-13-01", "9999-12-31T23:59:59Z", "0001-01-01", "yesterday", "2026-03-02T25:00"]


def _help(command: str) -> str:
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    return sub.format_help()


def _takes(command: str, option: str) -> bool:
    return option in _help(command)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = write_workspace(tmp_path / "ws", {"outbound": SEQ})
    con = connect(root / ".sequencer" / "sequencer.duckdb")
    con.execute("insert into contacts (contact_id, email) values ('c1', 'a@acme.example')")
    con.close()
    return root


def run_cli(capsys, argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, argv
    return code, err


def assert_one_line_reason(err: str, argv: list[str]) -> None:
    lines = [x for x in err.splitlines() if x.strip()]
    assert lines, f"no reason printed for {argv}"
    reasons = [x for x in lines if x.startswith("error:") or ": error:" in x]
    assert reasons, f"no error line for {argv}: {err!r}"
    assert not any("internal error" in x for x in lines), err


def cases(root: Path) -> list[tuple[list[str], int]]:
    """(argv, expected exit code) for every command."""
    garbage = root / "garbage.duckdb"
    garbage.write_bytes(b"this is not a duckdb file\n" * 100)
    out = []
    for name in COMMANDS:
        base = [name, *POSITIONAL.get(name, []), "--project", str(root)]
        out += [
            ([name, *POSITIONAL.get(name, []), "--project", str(root / "missing")], 2),
            ([*base, "--no-such-flag"], 2),
            ([*base, "--db", str(root)], 2),
            ([*base, "--db", str(garbage)], 0 if name in READS_NO_DATABASE else 1),
        ]
        if _takes(name, "--as-of"):
            out += [([*base, "--as-of", bad], 2) for bad in BAD_AS_OF]
        if _takes(name, "--user"):
            out.append(([*base, "--user", "ghost"], 4))
    return out


def test_every_command_with_bad_input_exits_with_a_reason_and_no_traceback(ws, capsys):
    wrong = []
    for argv, expected in cases(ws):
        code, err = run_cli(capsys, argv)
        if code != expected:
            wrong.append((argv[0], argv[-2:], code, err.strip()[:160]))
        if expected:
            assert_one_line_reason(err, argv)
    assert wrong == [], "\n".join(map(str, wrong))


@pytest.mark.parametrize(
    "argv",
    [
        ["preview", "ghost"],
        ["preview", "outbound", "--sample", "-3"],
        ["preview", "outbound", "--sample", "many"],
        ["preview", "outbound", "--render", "ghost"],
        ["preview", "ghost", "--render", "c1"],
        ["preview", "outbound", "--render"],
        ["preview", "outbound", "--render", "c1", "--user", "bruno"],
        ["why"],
        ["why", "outbound"],
        ["why", "ghost", "c1"],
        ["why", "outbound", "ghost"],
        ["why", "outbound", "ghost", "--json"],
        ["why", "outbound", "c1", "--user", "bruno"],
        ["why", "outbound", "c1", "c2"],
        ["backtest", "ghost", "--from", "2026-03-02", "--to", "2026-03-03"],
        ["backtest", "outbound", "--from", "2026-03-05", "--to", "2026-03-02"],
        ["backtest", "outbound", "--from", "03/02/2026", "--to", "2026-03-03"],
        ["backtest", "outbound", "--from", "2026-02-30", "--to", "2026-03-03"],
        ["backtest", "outbound", "--from", "2026-03-02"],
        ["backtest", "outbound", "--to", "2026-03-02"],
        ["backtest", "outbound", "--from", "2026-03-02", "--to", "2026-03-03", "--user", "bruno"],
        ["backtest", "--from", "2026-03-02", "--to", "2026-03-03"],
        ["enroll", "ghost", "c1"],
        ["enroll", "outbound"],
        ["unenroll", "ghost", "c1"],
        ["send", "--mark", "no-such-key", "sent"],
        ["send", "--mark", "no-such-key", "maybe"],
        ["send", "--show", "-1"],
        ["tasks"],
        ["tasks", "done"],
        ["tasks", "done", "no-such-task", "--user", "alice"],
        ["tasks", "frobnicate"],
        ["tasks", "show"],
        ["tasks", "snooze", "abcd1234"],
        ["tasks", "done", "x", "--user", "alice"],
        ["tasks", "--due-before", "someday"],
        ["tasks", "--kind", "meeting", "--user", "alice"],
        ["pause", "ghost"],
        ["pause", "outbound", "c1", "--until", "03/09"],
        ["pause", "outbound", "c1", "--until", "2020-01-01"],
        ["resume", "ghost", "c1"],
        ["metrics", "--sequence", "ghost", "--user", "alice"],
        ["actions", "--status", "bogus"],
        ["actions", "--sequence", "ghost", "--user", "alice"],
        ["actions", "--list", "-1"],
        ["actions", "--list", "many"],
        ["actions", "--volume", "--days", "0"],
        ["actions", "--volume", "--days", "week"],
        ["actions", "--volume", "--status", "held"],
        ["actions", "--volume", "--list"],
        ["actions", "--days", "3"],
        ["actions", "--db", "no-such-dir/no-such.duckdb"],
        ["actions", "--as-of", "2026-03-02T15:00:00Z"],
        ["ingest", "no-such-file.csv"],
        ["mailbox"],
        ["mailbox", "frobnicate"],
        ["mailbox", "import"],
        ["mailbox", "import", "no-such.eml"],
        ["mailbox", "import", "--dry-run", "no-such.eml"],
        ["mailbox", "import", "sequences"],
        ["mailbox", "import", "no-such.eml", "--user", "alice"],
        ["mailbox", "poll", "--user", "vera"],
        ["mailbox", "poll"],
        ["ingest", "sequences"],
        ["nonsense"],
        [],
    ],
)
def test_bad_arguments_of_one_command(ws, capsys, argv):
    code, err = run_cli(capsys, [*argv, "--project", str(ws)] if argv else argv)
    assert code in (1, 2, 4), (argv, code, err)
    assert_one_line_reason(err, argv)


@pytest.mark.parametrize(
    "users_yaml",
    ["users: [unclosed", "users: 3", "users: [{id: alice, role: nope}]", "\xff\xfe"],
)
def test_a_broken_users_file_is_a_reason_for_every_command(ws, capsys, users_yaml):
    (ws / "users.yaml").write_bytes(users_yaml.encode("latin-1"))
    for name in ("validate", "run", "sequences", "preview", "send"):
        code, err = run_cli(capsys, [name, *POSITIONAL.get(name, []), "--project", str(ws)])
        assert code == 1, (name, users_yaml, err)
        assert "users.yaml" in err, err


def test_an_as_of_error_names_the_value(ws, capsys):
    code, err = run_cli(capsys, ["run", "--project", str(ws), "--as-of", "2026-13-01"])
    assert code == 2
    assert err.strip().splitlines() == [
        "error: '2026-13-01' is not an ISO-8601 instant (month must be in 1..12)"
    ]


def test_a_reader_that_closes_the_pipe_ends_the_command_quietly(ws):
    con = connect(ws / ".sequencer" / "sequencer.duckdb")
    con.execute(
        "insert into tasks (task_id, owner_id, sequence, contact_id, step, kind, due_on, title) "
        "select 'task-' || i, 'alice', 'outbound', 'c1', 'call', 'call_reminder', "
        "date '2026-03-02', 'Call the contact about the renewal ' || i from range(5000) t(i)"
    )
    con.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "tasks", "--user", "alice", "--project", str(ws)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert b"task" in first
    assert err == "", err  # no BrokenPipeError, no "Exception ignored"
