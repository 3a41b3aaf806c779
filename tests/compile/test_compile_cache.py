"""Compiled conditions are kept between runs (pipelines/compile/cache.py), keyed by what the
compile depends on: the text, the scope, the visible columns and types, the compiler."""

from __future__ import annotations

from pathlib import Path

from pipelines.compile import cache as compile_cache
from pipelines.compile.condition import ConditionSchema
from pipelines.compile.sequence import compile_workspace
from pipelines.db import connect
from pipelines.project import Project
from tests.tick_helpers import classic

SEQUENCE = classic(
    "s",
    "- {id: call, day: 1, action: call_reminder, when: [\"contact.email ILIKE '%@acme.com'\"]}",
    audience="where: [\"email ILIKE '%@acme.com'\"]",
    extra="exit: {where: [\"last_activity_type = 'meeting'\"]}",
)
ROOT = Path(__file__).resolve().parents[2]


def _stored(db: Path) -> list[tuple[str, str]]:
    con = connect(db)
    try:
        return con.execute("select source, sql from compiled_conditions order by all").fetchall()
    finally:
        con.close()


def _tamper(db: Path) -> None:
    """Mark every stored entry, so a compile that reads them shows it."""
    con = connect(db)
    con.execute("update compiled_conditions set sql = sql || ' /* stored */'")
    con.close()


def test_a_second_compile_reads_what_the_first_stored(workspace, db_path):
    project = Project(workspace({"s": SEQUENCE}), db_path=db_path)
    first = project.compile().sequences["s"]
    assert [source for source, _ in _stored(db_path)] == [
        "contact.email ILIKE '%@acme.com'",
        "email ILIKE '%@acme.com'",
        "last_activity_type = 'meeting'",
    ]
    assert "stored" not in first.audience_sql
    _tamper(db_path)
    second = project.compile().sequences["s"]
    for sql in (second.audience_sql, second.step_sql("call"), second.exit_sql):
        assert "'%@acme.com' /* stored */" in sql or "'meeting' /* stored */" in sql


def test_a_changed_column_type_or_compiler_recompiles(workspace, db_path, monkeypatch):
    project = Project(workspace({"s": SEQUENCE}), db_path=db_path)
    project.compile()
    _tamper(db_path)
    con = connect(db_path)
    con.execute("alter table contacts add column lead_score integer")  # a new visible column
    con.close()
    assert "stored" not in project.compile().sequences["s"].audience_sql
    assert all("stored" not in sql for _, sql in _stored(db_path))  # stale entries dropped
    _tamper(db_path)
    monkeypatch.setattr(compile_cache, "version", lambda: "another compiler")
    assert "stored" not in project.compile().sequences["s"].audience_sql


def test_an_edited_condition_recompiles_and_the_old_entry_goes(workspace, db_path):
    project = Project(workspace({"s": SEQUENCE}), db_path=db_path)
    project.compile()
    workspace({"s": SEQUENCE.replace('where: ["email ILIKE', 'where: ["email LIKE')})
    assert "LIKE '%@acme.com'" in project.compile().sequences["s"].audience_sql
    assert [source for source, _ in _stored(db_path)] == [
        "contact.email ILIKE '%@acme.com'",
        "email LIKE '%@acme.com'",
        "last_activity_type = 'meeting'",
    ]


def test_a_failing_condition_is_not_stored_and_fails_each_time_with_its_place(workspace, db_path):
    bad = SEQUENCE.replace("last_activity_type = 'meeting'", "lead_scor > 3")
    project = Project(workspace({"s": bad}), db_path=db_path)
    for _ in range(2):
        (error,) = project.validate().problems
        assert (error.location.file, error.location.field) == ("sequences/s.yaml", "exit.where")
        assert "unknown column contact.lead_scor" in error.message
    assert all("lead_scor" not in source for source, _ in _stored(db_path))


def test_the_cached_compile_of_the_demo_workspace_equals_a_fresh_one(db_path):
    """Every condition of the demo's sequences and views, from the cache, is exactly what the
    compiler makes of it (read through a read-only connection)."""
    con = connect(db_path)
    con.execute(
        "alter table contacts add column lifecycle_stage varchar;"
        "alter table contacts add column lead_score integer;"
        "alter table accounts add column employees integer;"
        "alter table accounts add column industry varchar;"
    )  # the demo's custom columns
    con.close()
    project = Project(ROOT, db_path=db_path)
    project.compile()  # stores
    con = connect(db_path, read_only=True)
    try:
        cached = project.compile(con)
        fresh = compile_workspace(project.workspace(), ConditionSchema.from_database(con))
    finally:
        con.close()
    assert set(cached.sequences) == set(fresh.sequences) and fresh.sequences
    for name, seq in fresh.sequences.items():
        got = cached.sequences[name]
        assert (got.views, got.where, got.steps, got.exit_where) == (
            seq.views,
            seq.where,
            seq.steps,
            seq.exit_where,
        ), name
    assert cached.errors == fresh.errors == []
    assert len(_stored(db_path)) > 5
