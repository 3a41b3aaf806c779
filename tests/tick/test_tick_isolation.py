"""One broken sequence never stops the others (issue 9): a condition that fails only on data,
a sequence file that is not UTF-8, next to a good sequence — the good one decides exactly
what it decides alone, and the run names the others and exits 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.db import connect
from tests.workspace_helpers import write_workspace

GOOD = """
    name: good
    owner: alice
    audience: {where: ["email like '%@acme.example'"]}
    schedule: {time: "09:00", timezone: UTC}
    steps:
      - {id: intro, day: 1, action: email, template: intro.md.j2, subject: "Hi"}
      - {id: call, day: 2, action: call_reminder, note: "Call"}
"""
# fails only on data: a date 100 million years on is out of DuckDB's range
FAILS_ON_DATA = {
    "audience": GOOD.replace("name: good", "name: broken").replace(
        "email like '%@acme.example'", "date_add(created_at, INTERVAL 100000000 YEAR) > now()"
    ),
    "step": GOOD.replace("name: good", "name: broken").replace(
        'subject: "Hi"}', 'subject: "Hi", when: ["regexp_matches(email, first_name)"]}'
    ),
}
NOT_UTF8 = "name: latin\nowner: alice\n# Grüße\n".encode("latin-1")


def workspace(root: Path, sequences: dict[str, str], *, latin: bool = False) -> Path:
    write_workspace(root, sequences)
    if latin:
        (root / "sequences" / "latin.yaml").write_bytes(NOT_UTF8)
    con = connect(root / "db.duckdb")
    con.execute(
        "insert into contacts (contact_id, email, first_name, created_at) values "
        "('c1', 'a@acme.example', 'Ann', '2026-01-01'), "
        "('c2', 'b@acme.example', '(paren', '2026-01-01'), "
        "('c3', 'c@other.example', 'Cy', '2026-01-01')"
    )
    con.close()
    return root


def decisions(root: Path, sequence: str) -> tuple[list, list]:
    con = connect(root / "db.duckdb")
    try:
        enrolled = con.execute(
            "select contact_id, enrolled_on, status, exit_reason from enrollments "
            "where sequence = ? order by all",
            [sequence],
        ).fetchall()
        actions = con.execute(
            "select contact_id, step, day, action, occurrence_on, status from actions "
            "where sequence = ? order by all",
            [sequence],
        ).fetchall()
        return enrolled, actions
    finally:
        con.close()


def tick(root: Path, as_of: str) -> int:
    return main(["run", "--project", str(root), "--db", str(root / "db.duckdb"), "--as-of", as_of])


@pytest.mark.parametrize("where", sorted(FAILS_ON_DATA))
def test_a_failing_sequence_and_an_undecodable_file_leave_the_good_one_whole(
    tmp_path, capsys, where
):
    alone = workspace(tmp_path / "alone", {"good": GOOD})
    mixed = workspace(
        tmp_path / "mixed", {"good": GOOD, "broken": FAILS_ON_DATA[where]}, latin=True
    )
    for day in ("2026-03-02T10:00", "2026-03-03T10:00", "2026-03-04T10:00"):
        assert tick(alone, day) == 0
        capsys.readouterr()
        assert tick(mixed, day) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert "latin.yaml" in err and "UTF-8" in err
        if day == "2026-03-02T10:00":
            assert "sequence 'broken'" in err and "failed at run time" in err
    good = decisions(alone, "good")
    assert good[0] and good[1]  # the good sequence did decide something
    assert decisions(mixed, "good") == good
    con = connect(mixed / "db.duckdb")
    stats = json.loads(con.execute("select stats from runs order by started_at").fetchone()[0])
    con.close()
    assert [f["sequence"] for f in stats["failed"]] == ["broken"]
    assert stats["failed"][0]["on"] == "2026-03-02"


def test_preview_of_a_sequence_that_fails_at_run_time_is_one_line(tmp_path, capsys):
    root = workspace(tmp_path / "ws", {"broken": FAILS_ON_DATA["step"]})
    code = main(
        [
            "preview",
            "broken",
            "--project",
            str(root),
            "--db",
            str(root / "db.duckdb"),
            "--as-of",
            "2026-03-02T08:00",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err and "internal error" not in err
    assert "sequence 'broken'" in err and "failed at run time" in err


def test_a_run_more_than_a_day_ahead_needs_allow_future(tmp_path, capsys):
    root = workspace(tmp_path / "ws", {"good": GOOD})
    assert tick(root, "2999-06-01T10:00") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "more than a day ahead" in err[0] and "--allow-future" in err[0]
    assert decisions(root, "good") == ([], [])  # nothing was decided
    db = str(root / "db.duckdb")
    argv = ["run", "--project", str(root), "--db", db, "--as-of", "2999-06-01T10:00"]
    assert main([*argv, "--allow-future"]) == 0
    assert decisions(root, "good")[0]
