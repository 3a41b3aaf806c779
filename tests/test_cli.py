"""The command line: exit codes, one-line errors naming file/sequence/step/condition, help."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipelines.cli import COMMANDS, main
from pipelines.db import connect
from tests.workspace_helpers import write_workspace

SEQ = """
    name: outbound
    owner: alice
    audience: {where: ["email like '%@acme.example'"]}
    steps:
      - {id: intro, day: 1, action: email, template: intro.md.j2, subject: "Hi",
         when: ["COND"]}
"""


def test_validate_ok(tmp_path, capsys):
    write_workspace(
        tmp_path, {"outbound": SEQ.replace("COND", "last_contacted_mode = 'Not yet contacted'")}
    )
    assert main(["validate", "--project", str(tmp_path)]) == 0
    assert "ok  outbound" in capsys.readouterr().out


@pytest.mark.parametrize(
    "condition",
    ["no_such_column = 1", "read_csv('/etc/passwd') is not null", "email = (select 1)"],
)
def test_validate_names_file_sequence_step_and_condition(tmp_path, capsys, condition):
    write_workspace(tmp_path, {"outbound": SEQ.replace("COND", condition)})
    assert main(["validate", "--project", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("error:"))
    assert "sequences/outbound.yaml" in line
    assert "sequence 'outbound'" in line and "step 'intro'" in line
    assert condition.replace("'", "") in line.replace("'", "").replace('"', "")


def test_validate_reports_missing_template_and_view(tmp_path, capsys):
    text = SEQ.replace("COND", "true")
    text = text.replace("intro.md.j2", "nope.md.j2").replace(
        "audience: {", "audience: {views: [ghost], "
    )
    write_workspace(tmp_path, {"outbound": text})
    assert main(["validate", "--project", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "unknown template 'nope.md.j2'" in err and "unknown saved view 'ghost'" in err


def test_every_command_has_help_with_an_example():
    for name in COMMANDS:
        out = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", name, "--help"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "example: sequencer" in out, name
        assert "operator" in out, name


def test_unknown_sequence_is_a_one_line_error(tmp_path, capsys):
    write_workspace(tmp_path, {})
    assert main(["preview", "ghost", "--project", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: no sequence named 'ghost'"]


def test_run_ticks_the_valid_sequences_and_exits_1_naming_the_broken_one(tmp_path, capsys):
    good = SEQ.replace("COND", "true")
    bad = SEQ.replace("COND", "no_such_column = 1").replace("name: outbound", "name: broken")
    write_workspace(tmp_path, {"outbound": good, "broken": bad})
    db = tmp_path / "db.duckdb"
    con = connect(db)
    con.execute("insert into contacts (contact_id, email) values ('c1', 'a@acme.example')")
    con.close()
    code = main(["run", "--project", str(tmp_path), "--db", str(db), "--as-of", "2026-03-02T23:00"])
    captured = capsys.readouterr()
    assert code == 1
    assert "broken" in captured.err and "no_such_column" in captured.err
    assert "1 entries" in captured.out
    con = connect(db)
    assert con.execute("select sequence from enrollments").fetchall() == [("outbound",)]
    con.close()
