"""Activity functions in conditions (issue 12, item 7): what compiles, what validate rejects
(naming the file, the step/field and the condition), what the cache keeps, and that the SQL
the tick runs for them is set-based (no subquery correlated with the contact)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
import sqlglot
from sqlglot import exp

from pipelines.compile import cache as compile_cache
from pipelines.compile.activity import ActivityFeature
from pipelines.compile.condition import ConditionSchema, compile_condition
from pipelines.db import connect
from pipelines.errors import ConditionError, Location
from pipelines.project import Project
from pipelines.tick.occurrences import Occurrence
from pipelines.tick.phases import entries_sql, exits_sql, start_occurrence, steps_sql
from pipelines.tick.report import RunReport
from tests.tick_helpers import classic

SCHEMA = ConditionSchema(
    contact={"email": "VARCHAR", "last_activity_at": "TIMESTAMP"}, account={"industry": "VARCHAR"}
)
WHERE = Location(file="sequences/s.yaml", sequence="s", field="audience.where")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("activity_count('meeting', INTERVAL 30 DAY) >= 1", [("count", "meeting", 720)]),
        (
            "activity_count('email_opened', interval '14' days) >= 3",
            [("count", "email_opened", 336)],
        ),
        ("ACTIVITY_COUNT('chat', INTERVAL 2 WEEKS) > 0", [("count", "chat", 336)]),
        ("activity_count('call_incoming', INTERVAL 36 HOUR) = 0", [("count", "call_incoming", 36)]),
        ("activity_count('sales_activity:lunch') >= 1", [("count", "sales_activity:lunch", None)]),
        ("last_activity_at('call_outgoing') IS NULL", [("last", "call_outgoing", None)]),
        (
            "last_activity_at('meeting') > now() - interval 7 day "
            "or activity_count('meeting', interval 7 day) > activity_count('meeting')",
            [("count", "meeting", 168), ("count", "meeting", None), ("last", "meeting", None)],
        ),
    ],
)
def test_activity_functions_compile_to_generated_contact_columns(text, found):
    compiled = compile_condition(text, SCHEMA, scope="step")
    assert {tuple(f.to_json()) for f in compiled.activities} == set(found)
    for feature in compiled.activities:
        assert f'"contact"."{feature.column}"' in compiled.sql
    assert not any(name.startswith("__") for _, name in compiled.columns)  # not analyst columns
    tree = sqlglot.parse_one(compiled.sql, read="duckdb")
    assert not list(tree.find_all(exp.Select, exp.Subquery, exp.Anonymous))


def test_the_derived_last_activity_at_column_is_still_a_column():
    compiled = compile_condition("last_activity_at > now() - interval 1 day", SCHEMA)
    assert compiled.columns == {("contact", "last_activity_at")} and not compiled.activities


@pytest.mark.parametrize(
    ("text", "scope", "message"),
    [
        # the type: a string literal naming a known activity type
        ("activity_count(email, INTERVAL 30 DAY) >= 1", "audience", "string literal"),
        ('activity_count("meeting") >= 1', "audience", "strings take single quotes"),
        ("activity_count(lower('MEETING')) >= 1", "audience", "string literal"),
        ("activity_count('meting', INTERVAL 30 DAY) >= 1", "exit", "did you mean 'meeting'"),
        ("last_activity_at('sales_activity:') IS NULL", "step", "unknown activity type"),
        # the window: a literal INTERVAL of hours, days or weeks
        ("activity_count('meeting', 30) >= 1", "audience", "literal INTERVAL"),
        ("activity_count('meeting', INTERVAL 1 MONTH) >= 1", "audience", "literal INTERVAL"),
        ("activity_count('meeting', INTERVAL '1 day 2 hours') >= 1", "step", "literal INTERVAL"),
        ("activity_count('meeting', INTERVAL (1 + 2) DAY) >= 1", "step", "literal INTERVAL"),
        ("activity_count('meeting', INTERVAL 1.5 DAY) >= 1", "step", "literal INTERVAL"),
        ("activity_count('meeting', INTERVAL 0 DAY) >= 1", "step", "at least 1 hour"),
        ("activity_count('meeting', INTERVAL 100000 DAY) >= 1", "exit", "at most 36500 days"),
        ("activity_count('meeting', email) >= 1", "exit", "literal INTERVAL"),
        # arity
        ("activity_count() >= 1", "audience", "takes an activity type"),
        ("activity_count('meeting', INTERVAL 1 DAY, 2) >= 1", "audience", "got 3 arguments"),
        ("last_activity_at('meeting', INTERVAL 1 DAY) IS NULL", "step", "got 2 arguments"),
        ("last_activity_at() IS NULL", "step", "got 0 arguments"),
        # types still checked
        ("activity_count('meeting')", "audience", "true or false"),
        ("activity_count('meeting') = 'many'", "audience", "does not fit"),
    ],
)
def test_bad_activity_calls_are_rejected_naming_the_condition(text, scope, message):
    with pytest.raises(ConditionError) as caught:
        compile_condition(text, SCHEMA, scope=scope, location=WHERE)
    assert message in caught.value.message
    assert caught.value.location == replace(WHERE, condition=text)


def test_an_account_audience_cannot_read_a_contacts_activities():
    with pytest.raises(ConditionError, match="account audience"):
        compile_condition("activity_count('meeting') > 0", SCHEMA, record="account")


BAD = classic(
    "s",
    """
    - {id: intro, day: 1, action: follow_up}
    - {id: call, day: 2, action: call_reminder, note: Call,
       when: ["activity_count('meeting', 30) >= 1"]}
    """,
    audience='where: ["activity_count(meeting) >= 1"]',
    extra="exit: {where: [\"last_activity_at('meetings') IS NOT NULL\"]}",
)


def test_validate_names_the_file_the_field_the_step_and_the_condition(workspace, db_path):
    problems = Project(workspace({"s": BAD}), db_path=db_path).validate().problems
    where = {(p.location.field, p.location.step, p.location.condition) for p in problems}
    assert where == {
        ("audience.where", None, "activity_count(meeting) >= 1"),
        ("steps[1].when", "call", "activity_count('meeting', 30) >= 1"),
        ("exit.where", None, "last_activity_at('meetings') IS NOT NULL"),
    }
    assert {p.location.file for p in problems} == {"sequences/s.yaml"}
    assert all("sequences/s.yaml" in str(p) for p in problems)


GOOD = classic(
    "s",
    """
    - {id: intro, day: 1, action: follow_up,
       when: ["activity_count('email_opened', INTERVAL 14 DAY) >= 3"]}
    """,
    audience="where: [\"activity_count('meeting', INTERVAL 30 DAY) >= 1\"]",
    extra="exit: {where: [\"last_activity_at('call_outgoing') > now() - interval 1 day\"]}",
)


def test_the_cache_keeps_what_each_condition_calls(workspace, db_path):
    assert "activity.py" in compile_cache.COMPILER_FILES  # an edit recompiles everything
    project = Project(workspace({"s": GOOD}), db_path=db_path)
    fresh = project.compile().sequences["s"]
    con = connect(db_path)
    con.execute("update compiled_conditions set sql = sql || ' /* stored */'")
    con.close()
    cached = project.compile().sequences["s"]
    assert "stored" in cached.audience_sql
    assert cached.activity_features() == fresh.activity_features()
    assert cached.activity_features("audience") == [ActivityFeature("count", "meeting", 720)]
    assert cached.activity_features("step") == [ActivityFeature("count", "email_opened", 336)]
    assert cached.activity_features("exit") == [ActivityFeature("last", "call_outgoing")]
    assert cached.reads("audience").activities and not cached.reads("audience").now


def _correlated_contact_columns(sql: str) -> list[str]:
    """Columns qualified ``contact`` inside a SELECT that does not itself bring ``contact``
    into scope (its FROM and JOINs, or a CTE of that name): an outer reference."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    found = []
    for select in tree.find_all(exp.Select):
        sources = [select.args.get("from_"), *select.args.get("joins", [])]
        own = {t.alias_or_name for s in sources if s for t in s.find_all(exp.Table, exp.Subquery)}
        for column in select.find_all(exp.Column):
            if column.find_ancestor(exp.Select) is select and column.table == "contact":
                if "contact" not in own:
                    found.append(column.sql())
    return found


def test_the_tick_sql_for_activity_functions_has_no_subquery_per_contact(workspace, db_path):
    """The rendered entries, exits and steps of a sequence calling them in every phase: the
    activities are read once, by one aggregate grouped by contact, and no subquery refers to
    the outer contact."""
    project = Project(workspace({"s": GOOD}), db_path=db_path)
    compiled = project.compile().sequences["s"]
    at = dt.datetime(2026, 3, 2, 9)
    occ = Occurrence("s", at.date(), at)
    con = connect(db_path)
    phase = start_occurrence(con, compiled, occ, "r", RunReport("r", at), record=False)
    con.close()
    assert _correlated_contact_columns(CORRELATED) == ['"contact"."contact_id"']  # it can tell
    for sql in [entries_sql(phase, set()), exits_sql(phase, 1), steps_sql(phase)]:
        assert _correlated_contact_columns(sql) == []
        tree = sqlglot.parse_one(sql, read="duckdb")
        readers = [
            select
            for select in tree.find_all(exp.Select)
            if (source := select.args.get("from_")) and source.this.name in READERS
        ]
        assert [r.args["from_"].this.name for r in readers] == list(READERS)
        assert [g.name for g in readers[1].args["group"].expressions] == ["contact_id"]


CORRELATED = """
select contact.contact_id from contacts as contact
where (select count(*) from activities where activities.contact_id = "contact"."contact_id") > 0
"""
READERS = ("activities", "typed_activities")  # the type/window scan, then the aggregate
