"""Evaluate compiled conditions over given rows the way the engine does (SPEC 5 and 6).

The rows go into a real database with the engine's schema (``sql/schema.sql`` and its
contact-mode macros). The derived properties and ``sequences`` come from the engine's own
:func:`~pipelines.tick.properties.materialize_contact_state` over those rows (activities as of the
occurrence, active enrolments). Each condition's SQL is pasted, as the engine pastes it, into
the FROM clause the engine evaluates it in:

- an audience of contacts: the preview's frame (:mod:`pipelines.tick.preview`): every contact
  created at or before the occurrence (or with no creation time), with its primary account;
- an audience of accounts: the accounts, as in ``sql/tick/int_entries.sql``;
- step and exit conditions: each enrolled contact, as in ``sql/tick/int_step_actions.sql`` and
  ``int_exits.sql``, with the ``enrollment`` columns given as values (table
  ``enrollment_values``: what ``int_enrollment_engagement.sql`` computes).

The condition ends a line followed by more SQL, so a ``--`` comment left in it would break
the query.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb

from pipelines.compile.condition import ENROLLMENT_COLUMNS
from pipelines.tick.preview import _frame
from pipelines.tick.properties import materialize_contact_state

OCCURRENCE = """
cross join (
    select $occurrence_at::timestamp as occurrence_at, $occurrence_on::date as occurrence_on
) as occurrence
"""
ACCOUNT_FRAME = f"from accounts as account {OCCURRENCE} where"
ENROLLED_FRAME = f"""
from enrollment_values as enrollment
inner join contact_state as contact on contact.contact_id = enrollment.contact_id
left join accounts as account on account.account_id = contact.account_id
{OCCURRENCE}
where (contact.created_at is null or contact.created_at <= occurrence.occurrence_at)
"""
TABLES = ("accounts", "contacts", "activities", "enrollments")


@dataclass(frozen=True)
class Occurrence:
    """The instant a run evaluates at (naive UTC) and its local date in the schedule's zone."""

    at: dt.datetime
    on: dt.date


def add_columns(con: duckdb.DuckDBPyConnection, columns: dict[str, dict[str, str]]) -> None:
    """Add custom columns the way ingest would: ``{table: {column: type}}``."""
    for table, typed in columns.items():
        for name, type_name in typed.items():
            con.execute(f"alter table {table} add column {name} {type_name}")


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    """Insert rows given as dicts (missing columns are null)."""
    for row in rows:
        marks = ", ".join("?" for _ in row)
        con.execute(f"insert into {table} ({', '.join(row)}) values ({marks})", list(row.values()))


def load_rows(con: duckdb.DuckDBPyConnection, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Insert ``rows[table]`` for the engine's tables; ``rows['enrollment']`` fills the temp
    table ``enrollment_values`` (one row per enrolled contact: the step-scope columns)."""
    for table in TABLES:
        insert(con, table, rows.get(table, []))
    typed = ", ".join(f"{name} {type_name}" for name, type_name in ENROLLMENT_COLUMNS.items())
    con.execute(f"create or replace temp table enrollment_values (contact_id varchar, {typed})")
    insert(con, "enrollment_values", rows.get("enrollment", []))


def kept(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    *,
    scope: str,
    record: str,
    occurrence: Occurrence,
) -> list[str]:
    """The sorted ids (contact ids; account ids for an account audience) ``sql`` keeps."""
    materialize_contact_state(con, occurrence.at)
    params = {"occurrence_at": occurrence.at, "occurrence_on": occurrence.on}
    return [row[0] for row in con.execute(_query(sql, scope, record), params).fetchall()]


def _query(sql: str, scope: str, record: str) -> str:
    if scope == "audience" and record == "account":
        return f"select account.account_id {ACCOUNT_FRAME} ({sql}) order by 1"
    if scope == "audience":
        # as preview counts it, `count(*) filter (where {sql})` over the frame: the frame ends
        # in `a or b`, so appending `and (...)` to it would bind to `b` alone
        frame = f"select contact.contact_id, ({sql}) as keeps {_frame('contact')}"
        return f"select contact_id from ({frame}) where keeps order by 1"
    # the tick: `coalesce(({{ exit_sql }}), false)`, `coalesce(case ... then (sql) end, false)`
    return f"select contact.contact_id {ENROLLED_FRAME} and coalesce(({sql}), false) order by 1"
