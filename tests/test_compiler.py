"""The condition compiler (SPEC section 5): golden files, real DuckDB, the locked connection."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import duckdb
import pytest
import sqlglot
import yaml
from sqlglot import exp

from pipelines import compiler, db
from pipelines.compiler import (
    CONTACT_DERIVED,
    ENROLLMENT_COLUMNS,
    CompiledCondition,
    ConditionSchema,
    compile_condition,
    compile_conditions,
)
from pipelines.errors import ConditionError, ConfigError, Location

FIXTURES = Path(__file__).parent / "fixtures" / "compiler"
VALID = yaml.safe_load((FIXTURES / "valid.yaml").read_text(encoding="utf-8"))
INVALID = yaml.safe_load((FIXTURES / "invalid.yaml").read_text(encoding="utf-8"))
ERRORS = {"ConditionError": ConditionError}

OCCURRENCE_AT = "2026-03-10 14:00:00"
OCCURRENCE_ON = "2026-03-10"


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """A real database file with the engine schema and the custom columns ingest would add."""
    con = db.connect(tmp_path / "t.duckdb")
    con.execute("alter table contacts add column lifecycle_stage varchar")
    con.execute("alter table accounts add column employees integer")
    con.execute("alter table accounts add column industry varchar")
    con.execute("alter table contacts add column lead_score_text varchar")
    con.execute("alter table contacts add column signup_text varchar")
    yield con
    con.close()


@pytest.fixture
def schema(con: duckdb.DuckDBPyConnection) -> ConditionSchema:
    return ConditionSchema.from_database(con)


@pytest.fixture
def rows(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Three contacts, two accounts, and stand-ins for derived properties and enrolments."""
    con.execute(
        """
        insert into accounts (account_id, domain, employees, industry) values
            ('a1', 'acme.com', 100, 'SaaS'),
            ('a2', 'shop.io', 5000, 'Retail');
        insert into contacts (contact_id, email, account_id, unsubscribed, created_at,
                              lifecycle_stage) values
            ('c1', 'ann@acme.com', 'a1', false, timestamp '2026-03-01 09:00', 'lead'),
            ('c2', 'bob@gmail.com', 'a2', true, timestamp '2025-01-01 09:00', 'customer'),
            ('c3', 'cat@globex.com', null, null, timestamp '2026-03-09 20:00', 'lead');
        create table derived_stand_in as
            select * from (values
                ('c1', 'Not yet contacted', []::varchar[]),
                ('c2', 'No reply', ['nurture-2026']),
                ('c3', 'Opened but no reply', ['outbound-q1'])
            ) as t(contact_id, last_contacted_mode, sequences);
        create table enrollment_stand_in as
            select * from (values ('c1', 2, true), ('c2', 1, false))
                as t(contact_id, emails_sent, opened_previous_email);
        """
    )
    return con


# The FROM clause the tick provides, with stand-ins for the derived properties.
CONTACT_QUERY = """
with occurrence as (select cast(? as timestamp) as occurrence_at, cast(? as date) as occurrence_on),
contact as (
    select c.*, null::varchar as last_activity_type, null::timestamp as last_activity_at,
        d.last_contacted_mode, null::timestamp as last_contacted_at, d.sequences,
    from contacts as c left join derived_stand_in as d using (contact_id)
),
enrollment as (
    select contact_id, emails_sent, opened_previous_email,
        false as clicked_previous_email, false as opened_any_email, false as clicked_any_email,
    from enrollment_stand_in
)
select contact.contact_id
from contact
left join accounts as account on account.account_id = contact.account_id
left join enrollment on enrollment.contact_id = contact.contact_id
cross join occurrence
order by 1
"""
ACCOUNT_QUERY = """
with occurrence as (select cast(? as timestamp) as occurrence_at, cast(? as date) as occurrence_on)
select account.account_id from accounts as account cross join occurrence order by 1
"""


def keep(
    con: duckdb.DuckDBPyConnection,
    compiled: CompiledCondition,
    record: str = "contact",
    occurrence: tuple[str, str] = (OCCURRENCE_AT, OCCURRENCE_ON),
    extra: str | None = None,
) -> list[str]:
    """Run the condition the way the tick does: added to the query tree, never pasted."""
    base = sqlglot.parse_one(CONTACT_QUERY if record == "contact" else ACCOUNT_QUERY, read="duckdb")
    query = base.where(exp.paren(sqlglot.parse_one(compiled.sql, read="duckdb")))
    if extra:
        query = query.where(extra, dialect="duckdb")
    return [row[0] for row in con.execute(query.sql("duckdb"), list(occurrence)).fetchall()]


def case_id(case: dict) -> str:
    return f"{case['scope']}/{case['record']}: {case['condition']}"


# --- golden files ---------------------------------------------------------------------------


def test_golden_files_are_big_enough() -> None:
    assert len(VALID) >= 25
    assert len(INVALID) >= 25


@pytest.mark.parametrize("case", VALID, ids=case_id)
def test_valid_condition_compiles_to_golden_sql(case: dict, schema: ConditionSchema) -> None:
    compiled = compile_condition(
        case["condition"], schema, scope=case["scope"], record=case["record"]
    )
    assert compiled.sql == case["sql"]
    assert compiled.source == case["condition"]
    assert compiled.uses_now is case["uses_now"]
    assert compiled.columns == {tuple(column) for column in case["columns"]}


@pytest.mark.parametrize("case", VALID, ids=case_id)
def test_valid_condition_runs_in_duckdb(case: dict, rows: duckdb.DuckDBPyConnection) -> None:
    schema = ConditionSchema.from_database(rows)
    compiled = compile_condition(
        case["condition"], schema, scope=case["scope"], record=case["record"]
    )
    keep(rows, compiled, record=case["record"])  # no error is the assertion


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

KEEPS = [
    ("lifecycle_stage = 'lead'", "audience", "contact", ["c1", "c3"]),
    ("account.employees BETWEEN 50 AND 500", "audience", "contact", ["c1"]),
    ("created_at > now() - interval 30 day", "audience", "contact", ["c1", "c3"]),
    ("created_at::date >= current_date - interval '7 days'", "audience", "contact", ["c3"]),
    ("age(created_at) < INTERVAL 2 DAY", "audience", "contact", ["c3"]),
    ("list_contains(sequences, 'nurture-2026')", "audience", "contact", ["c2"]),
    ("len(sequences) = 0", "audience", "contact", ["c1"]),
    ("NOT list_has_any(sequences, ['outbound-q1', 'nurture-2026'])", "audience", "contact", ["c1"]),
    ("lifecycle_stage NOT IN ('customer')", "audience", "contact", ["c1", "c3"]),
    ("coalesce(unsubscribed, false) = false", "audience", "contact", ["c1", "c3"]),
    ("unsubscribed", "exit", "contact", ["c2"]),
    ("email ILIKE '%@ACME.com'", "audience", "contact", ["c1"]),
    ("regexp_matches(email, '@(acme|globex)\\.com$')", "audience", "contact", ["c1", "c3"]),
    ("split_part(email, '@', 2) = account.domain", "audience", "contact", ["c1"]),
    ("CASE WHEN account.employees > 1000 THEN true ELSE false END", "audience", "contact", ["c2"]),
    ("last_contacted_mode = 'Not yet contacted'", "step", "contact", ["c1"]),
    ("enrollment.opened_previous_email", "step", "contact", ["c1"]),
    ("enrollment.emails_sent >= 1", "step", "contact", ["c1", "c2"]),
    ("industry = 'SaaS'", "audience", "account", ["a1"]),
    ("employees > 1000 OR domain LIKE '%.com'", "audience", "account", ["a1", "a2"]),
]


@pytest.mark.parametrize(("text", "scope", "record", "expected"), KEEPS)
def test_condition_keeps_the_right_rows(
    rows: duckdb.DuckDBPyConnection, text: str, scope: str, record: str, expected: list[str]
) -> None:
    schema = ConditionSchema.from_database(rows)
    compiled = compile_condition(text, schema, scope=scope, record=record)
    assert keep(rows, compiled, record=record) == expected


def test_now_means_the_occurrence_not_the_wall_clock(rows: duckdb.DuckDBPyConnection) -> None:
    schema = ConditionSchema.from_database(rows)
    recent = compile_condition("created_at > now() - interval 30 day", schema)
    assert keep(rows, recent) == ["c1", "c3"]
    assert keep(rows, recent, occurrence=("2030-01-01 00:00", "2030-01-01")) == []
    today = compile_condition("current_date = DATE '2026-03-10'", schema)
    assert keep(rows, today) == ["c1", "c2", "c3"]
    assert today.uses_now and "occurrence_on" in today.sql


def test_trailing_comment_cannot_swallow_the_rest_of_the_query(
    rows: duckdb.DuckDBPyConnection,
) -> None:
    schema = ConditionSchema.from_database(rows)
    compiled = compile_condition("email = 'nobody' OR 1=1 --", schema)
    assert "--" not in compiled.sql
    assert keep(rows, compiled, extra="contact.contact_id = 'c2'") == ["c2"]


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
    compile_condition("lifecycle_stage = 'lead'", schema)


def test_mixed_case_custom_column_resolves_case_insensitively(
    con: duckdb.DuckDBPyConnection,
) -> None:
    con.execute('alter table contacts add column "LeadScore" integer')
    schema = ConditionSchema.from_database(con)
    compiled = compile_condition("leadscore > 10", schema)
    assert compiled.sql == '"contact"."LeadScore" > 10'
    with pytest.raises(ConditionError):
        compile_condition("leadscore", schema)  # INTEGER, not boolean


def test_enrollment_columns_are_step_only(schema: ConditionSchema) -> None:
    for column in ENROLLMENT_COLUMNS:
        compile_condition(f"enrollment.{column} IS NOT NULL", schema, scope="step")
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


def test_unknown_type_from_an_allowed_function_is_accepted(schema: ConditionSchema) -> None:
    compiled = compile_condition("list_count(sequences) > 0", schema)
    assert compiled.sql == 'LIST_COUNT("contact"."sequences") > 0'


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
    assert not forbidden & compiler.ALLOWED_FUNCTIONS
    assert exp.Func not in compiler.ALLOWED_NODES and exp.Anonymous not in compiler.ALLOWED_NODES
    assert not {exp.Select, exp.Subquery, exp.Exists, exp.ReadCSV} & compiler.ALLOWED_NODES


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
    locked.execute("insert into contacts (contact_id, email) values ('c1', 'a@acme.com')")
    locked.execute(
        """
        create table derived_stand_in (contact_id varchar, last_contacted_mode varchar,
                                       sequences varchar[]);
        create table enrollment_stand_in (contact_id varchar, emails_sent bigint,
                                          opened_previous_email boolean);
        """
    )
    assert keep(locked, compiled) == []  # created_at is null
