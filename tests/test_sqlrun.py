"""The SQL runner: where the SQL is read from, parameter binding, quoting, and that every
file's includes and imports resolve under the one root."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from jinja2 import meta

from pipelines import sqlrun

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("stg_", "int_", "fct_", "assert_", "dml_", "rpt_")
UNLAYERED = {"schema.sql", "ingest/_macros.sql", "engagement/_macros.sql"}


def _sql_files() -> list[str]:
    return sorted(str(p.relative_to(ROOT / "sql")) for p in (ROOT / "sql").rglob("*.sql"))


def test_a_checkout_reads_the_top_level_sql_directory():
    assert sqlrun.sql_root() == ROOT / "sql"
    assert not (ROOT / "pipelines" / sqlrun.PACKAGED).exists()  # only a built wheel has it


@pytest.mark.parametrize("name", _sql_files())
def test_every_include_and_import_resolves_under_the_root(name):
    source = (ROOT / "sql" / name).read_text(encoding="utf-8")
    for ref in meta.find_referenced_templates(sqlrun.ENV.parse(source)):
        assert ref is not None and (ROOT / "sql" / ref).is_file(), (name, ref)


@pytest.mark.parametrize("name", _sql_files())
def test_every_file_is_named_by_its_layer(name):
    assert name in UNLAYERED or Path(name).name.startswith(LAYERS), name


def test_run_binds_only_the_parameters_the_statement_uses():
    con = duckdb.connect()
    params = {"a": 1, "b": 2, "c": 3}
    sql = "select $a + $c -- not $b\n, '$b' as text"
    assert sqlrun.run(con, sql, params).fetchone() == (4, "$b")
    assert sqlrun.run(con, "select $1 + $2", [1, 2]).fetchone() == (3,)
    assert sqlrun.run(con, "select 1", None).fetchone() == (1,)


def test_execute_and_rows_render_a_file_then_bind():
    con = duckdb.connect()
    con.execute("create table actions as select 'k' as idempotency_key, 's' as sequence, "
                "'c' as contact_id, 'st' as step from range(2)")  # fmt: skip
    found = sqlrun.rows(con, "checks/assert_duplicate_idempotency_keys.sql", {"unused": 1})
    assert [r["idempotency_key"] for r in found] == ["k"]


@pytest.mark.parametrize("text", ["it's", "a\\b", "two\nlines", 'say "hi"', "{{ x }}", "ü"])
def test_literal_and_ident_round_trip_through_duckdb(text):
    con = duckdb.connect()
    sqlrun.materialize(con, "quoted", f"select {sqlrun.literal(text)} as {sqlrun.ident(text)}")
    cur = con.execute("select * from quoted")
    assert cur.fetchone() == (text,) and cur.description[0][0] == text
