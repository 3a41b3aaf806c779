"""The condition compiler (SPEC section 5): golden files, real DuckDB, the locked connection."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest
import sqlglot
import yaml
from sqlglot import exp

from pipelines import db
from pipelines.compile import allowlist
from pipelines.compile.condition import (
    CONTACT_DERIVED,
    ENROLLMENT_COLUMNS,
    ConditionSchema,
    compile_condition,
    compile_conditions,
)
from pipelines.errors import ConditionError, ConfigError, Location
from tests.condition_rows import Occurrence, add_columns, insert, kept, load_rows

FIXTURES = Path(__file__).parent.parent / "fixtures" / "compiler"
VALID = yaml.safe_load((FIXTURES / "valid.yaml").read_text(encoding="utf-8"))
INVALID = yaml.safe_load((FIXTURES / "invalid.yaml").read_text(encoding="utf-8"))
CASES = VALID["cases"]
ERRORS = {"ConditionError": ConditionError}
OCCURRENCE = Occurrence(at=VALID["occurrence_at"], on=VALID["occurrence_on"])


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """A real database file with the engine schema and the custom columns ingest would add."""
    con = db.connect(tmp_path / "t.duckdb")
    add_columns(con, VALID["columns"])
    yield con
    con.close()


@pytest.fixture
def schema(con: duckdb.DuckDBPyConnection) -> ConditionSchema:
    return ConditionSchema.from_database(con)


@pytest.fixture(scope="module")
def given(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    """The rows of valid.yaml in one database for the module: the cases only read them."""
    con = db.connect(tmp_path_factory.mktemp("rows") / "rows.duckdb")
    add_columns(con, VALID["columns"])
    load_rows(con, VALID["rows"])
    yield con
    con.close()


def case_id(case: dict) -> str:
    return f"{case['scope']}/{case['record']}: {case['condition']}"


def normalized(sql: str) -> str:
    """The SQL as sqlglot writes it back: compares meaning-bearing text, not formatting."""
    return sqlglot.parse_one(sql, read="duckdb").sql(dialect="duckdb")


# --- golden files ---------------------------------------------------------------------------


def test_golden_files_are_big_enough() -> None:
    assert len(CASES) >= 25
    assert len(INVALID) >= 25


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_valid_condition_keeps_exactly_its_rows(
    case: dict, given: duckdb.DuckDBPyConnection
) -> None:
    schema = ConditionSchema.from_database(given)
    compiled = compile_condition(
        case["condition"], schema, scope=case["scope"], record=case["record"]
    )
    where = {"scope": case["scope"], "record": case["record"], "occurrence": OCCURRENCE}
    assert kept(given, compiled.sql, **where) == case["keeps"]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_valid_condition_reads_what_it_says(case: dict, given: duckdb.DuckDBPyConnection) -> None:
    schema = ConditionSchema.from_database(given)
    compiled = compile_condition(
        case["condition"], schema, scope=case["scope"], record=case["record"]
    )
    assert compiled.source == case["condition"]
    assert compiled.uses_now is case.get("uses_now", False)
    assert compiled.columns == {tuple(column) for column in case["columns"]}
    if "sql" in case:
        assert normalized(compiled.sql) == normalized(case["sql"])


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_valid_case_keeps_some_rows_and_rejects_some(
    case: dict, given: duckdb.DuckDBPyConnection
) -> None:
    """A case that keeps every row or none cannot tell a right compiler from a wrong one."""
    where = {"scope": case["scope"], "record": case["record"], "occurrence": OCCURRENCE}
    seen = kept(given, "true", **where)
    assert case["keeps"] == sorted(case["keeps"])
    assert case["keeps"] and set(case["keeps"]) < set(seen)


@pytest.mark.parametrize("case", INVALID, ids=case_id)
def test_invalid_condition_is_rejected(case: dict, schema: ConditionSchema) -> None:
    where = Location(file="sequences/outbound.yaml", sequence="outbound", field="audience.where")
    with pytest.raises(ERRORS[case["error"]]) as caught:
        compile_condition(
            case["condition"], schema, scope=case["scope"], record=case["record"], location=where
        )
    assert caught.value.location == replace(where, condition=case["condition"])
    assert caught.value.position == case.get("position")
    assert isinstance(caught.value, ConfigError)


# --- behaviour on real rows -----------------------------------------------------------------


def audience(con: duckdb.DuckDBPyConnection, sql: str, at: Occurrence = OCCURRENCE) -> list[str]:
    return kept(con, sql, scope="audience", record="contact", occurrence=at)


def test_now_means_the_occurrence_not_the_wall_clock(given: duckdb.DuckDBPyConnection) -> None:
    schema = ConditionSchema.from_database(given)
    recent = compile_condition("created_at > now() - interval 30 day", schema)
    assert audience(given, recent.sql) == ["c1", "c3", "c6"]
    later = Occurrence(at=dt.datetime(2030, 1, 1, 5), on=dt.date(2030, 1, 1))
    assert audience(given, recent.sql, later) == []
    # the occurrence is 2026-03-01 03:30 UTC, 2026-02-28 in the schedule's zone
    local = compile_condition("current_date = DATE '2026-02-28'", schema)
    utc = compile_condition("current_date = DATE '2026-03-01'", schema)
    assert audience(given, local.sql) == ["c1", "c2", "c3", "c4", "c5", "c6"]
    assert audience(given, utc.sql) == []
    assert local.uses_now and utc.uses_now


def test_trailing_comment_cannot_swallow_the_rest_of_the_query(
    given: duckdb.DuckDBPyConnection,
) -> None:
    schema = ConditionSchema.from_database(given)
    compiled = compile_condition("email = 'nobody' OR 1=1 --", schema)
    assert "--" not in compiled.sql
    assert audience(given, f"({compiled.sql}) and contact.contact_id = 'c2'") == ["c2"]


# --- the schema -----------------------------------------------------------------------------


def test_schema_reads_custom_columns_and_adds_derived(schema: ConditionSchema) -> None:
    assert schema.contact["lifecycle_stage"] == "VARCHAR"
    assert schema.contact["email"] == "VARCHAR"
    assert schema.account["employees"] == "INTEGER"
    assert schema.account["industry"] == "VARCHAR"
    assert {k: schema.contact[k] for k in CONTACT_DERIVED} == CONTACT_DERIVED
    assert "sequences" not in schema.account
    assert schema.ambiguous == frozenset()


def test_custom_column_named_like_a_derived_property_is_ambiguous(
    con: duckdb.DuckDBPyConnection,
) -> None:
    con.execute("alter table contacts add column Last_Contacted_Mode varchar")
    schema = ConditionSchema.from_database(con)
    assert schema.ambiguous == {"last_contacted_mode"}
    with pytest.raises(ConditionError):
        compile_condition("last_contacted_mode = 'Replied'", schema)
    # only that name is refused: the other columns, derived ones included, still resolve
    other = compile_condition("lifecycle_stage = 'lead' AND last_contacted_at IS NULL", schema)
    assert other.columns == {("contact", "lifecycle_stage"), ("contact", "last_contacted_at")}


def test_mixed_case_custom_column_resolves_case_insensitively(
    con: duckdb.DuckDBPyConnection,
) -> None:
    con.execute('alter table contacts add column "LeadScore" integer')
    schema = ConditionSchema.from_database(con)
    compiled = compile_condition("leadscore > 10", schema)
    assert normalized(compiled.sql) == normalized('"contact"."LeadScore" > 10')
    with pytest.raises(ConditionError):
        compile_condition("leadscore", schema)  # INTEGER, not boolean


def test_enrollment_columns_are_step_only(schema: ConditionSchema) -> None:
    for column in ENROLLMENT_COLUMNS:
        compiled = compile_condition(f"enrollment.{column} IS NOT NULL", schema, scope="step")
        assert compiled.columns == {("enrollment", column)}
        for scope in ("audience", "exit"):
            with pytest.raises(ConditionError):
                compile_condition(f"enrollment.{column} IS NOT NULL", schema, scope=scope)


@pytest.mark.parametrize(
    "text", [True, 7, "x" * 20_000, "(" * 3000 + "email" + ")" * 3000, "not " * 3000 + "true"]
)
def test_absurd_input_is_a_condition_error_not_a_crash(text, schema: ConditionSchema) -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition(text, schema)
    assert caught.value.location.condition is not None


def test_unknown_type_from_an_allowed_function_is_accepted(
    given: duckdb.DuckDBPyConnection,
) -> None:
    compiled = compile_condition("list_count(sequences) > 0", ConditionSchema.from_database(given))
    assert compiled.columns == {("contact", "sequences")}
    assert audience(given, compiled.sql) == ["c1", "c2", "c3", "c4", "c6"]


# --- lists of conditions --------------------------------------------------------------------


def test_compile_conditions_keeps_order_and_names_each_condition(
    schema: ConditionSchema,
) -> None:
    where = Location(file="s.yaml", sequence="s", step="intro", field="when")
    texts = ["lifecycle_stage = 'lead'", "enrollment.opened_previous_email"]
    compiled = compile_conditions(texts, schema, scope="step", location=where)
    assert [c.source for c in compiled] == texts
    with pytest.raises(ConditionError) as caught:
        compile_conditions(["email IS NULL", "nope = 1"], schema, location=where)
    assert caught.value.location == replace(where, condition="nope = 1")
    assert "s.yaml" in str(caught.value) and "nope = 1" in str(caught.value)


def test_compile_conditions_enforces_the_limit(schema: ConditionSchema) -> None:
    texts = ["email IS NOT NULL"] * 9
    with pytest.raises(ConditionError):
        compile_conditions(texts, schema)
    assert len(compile_conditions(texts[:8], schema)) == 8
    assert len(compile_conditions(texts, schema, limit=9)) == 9
    with pytest.raises(ConditionError):
        compile_conditions(texts[:3], schema, limit=2)


def test_allow_list_has_no_table_function_or_file_reader() -> None:
    forbidden = {"read_csv", "read_parquet", "read_json", "glob", "read_text", "read_blob"}
    forbidden |= {"query", "query_table", "getenv", "pg_sleep", "current_setting"}
    assert not forbidden & allowlist.ALLOWED_FUNCTIONS
    assert exp.Func not in allowlist.ALLOWED_NODES and exp.Anonymous not in allowlist.ALLOWED_NODES
    assert not {exp.Select, exp.Subquery, exp.Exists, exp.ReadCSV} & allowlist.ALLOWED_NODES


# --- defence in depth: the locked connection -----------------------------------------------


@pytest.fixture
def locked(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = db.connect(tmp_path / "locked.duckdb")
    db.lock_down(con)
    yield con
    con.close()


@pytest.mark.parametrize(
    "statement",
    [
        "select * from read_csv('/etc/passwd')",
        "select * from read_text('/etc/passwd')",
        "copy contacts to '{tmp}/out.csv'",
        "attach '{tmp}/other.duckdb' as other",
        "install httpfs",
        "set enable_external_access = true",
        "set lock_configuration = false",
    ],
)
def test_locked_connection_refuses_escapes(
    locked: duckdb.DuckDBPyConnection, tmp_path: Path, statement: str
) -> None:
    with pytest.raises(duckdb.Error):
        locked.execute(statement.format(tmp=tmp_path))
    assert not (tmp_path / "out.csv").exists()
    assert not (tmp_path / "other.duckdb").exists()


def test_locked_connection_still_runs_compiled_conditions(
    locked: duckdb.DuckDBPyConnection,
) -> None:
    schema = ConditionSchema.from_database(locked)
    compiled = compile_condition("email LIKE '%@acme.com' AND created_at < now()", schema)
    day_before = OCCURRENCE.at - dt.timedelta(days=1)
    rows = [
        {"contact_id": "c1", "email": "a@acme.com", "created_at": day_before},
        {"contact_id": "c2", "email": "b@acme.com", "created_at": OCCURRENCE.at},  # not < now()
        {"contact_id": "c3", "email": "c@other.com", "created_at": day_before},
    ]
    insert(locked, "contacts", rows)
    assert audience(locked, compiled.sql) == ["c1"]


def test_a_column_type_sqlglot_cannot_read_is_unknown_not_a_crash(con) -> None:
    """A type name sqlglot's parser rejects (as DuckDB may report for user types) types the
    column UNKNOWN: a comparison on it still compiles, twice (the parse is cached)."""
    schema = ConditionSchema.from_database(con)
    odd = replace(schema, contact={**schema.contact, "odd_col": '"my type"'})
    for _ in range(2):
        assert "odd_col" in compile_condition("odd_col = 'x'", odd).sql
    with pytest.raises(ConditionError, match="true or false"):
        compile_condition("1 + 1", odd)
