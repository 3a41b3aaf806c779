"""Binding a compiled condition against the schema's real types (issue 9: what validate
passes, a run must be able to execute).

Each condition is evaluated once over one row of NULLs, in a scratch in-memory DuckDB whose
tables ``contact``, ``account``, ``enrollment`` and ``occurrence`` carry exactly the column
types of the condition schema (read from the database). DuckDB's binder then rejects type
mismatches (``lead_score BETWEEN 30 AND 100`` on VARCHAR), and its constant folding rejects
constants that cannot fit (``employees = 'many'``, a bad regular expression), without
depending on any data. The scratch database has external access disabled and its
configuration locked.
"""

from __future__ import annotations

import functools

import duckdb

from pipelines.errors import ConditionError, Location

OCCURRENCE = (("occurrence_at", "TIMESTAMP"), ("occurrence_on", "DATE"))
Tables = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]


def frozen_tables(tables: dict[str, dict[str, str]]) -> Tables:
    return tuple((alias, tuple(columns.items())) for alias, columns in tables.items())


@functools.lru_cache(maxsize=32)
def _scratch(tables: Tables) -> duckdb.DuckDBPyConnection | None:
    """A locked in-memory database with one all-NULL row per alias; None if a type of the
    schema cannot be recreated there (then the binding check is skipped)."""
    con = duckdb.connect(":memory:")
    try:
        for alias, columns in (*tables, ("occurrence", OCCURRENCE)):
            cols = "".join(f', cast(null as {t}) as "{c}"' for c, t in columns)
            con.execute(f'create table "{alias}" as select 1 as "__row"{cols}')
    except duckdb.Error:
        con.close()
        return None
    con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")
    return con


def check_binds(
    sql: str, tables: dict[str, dict[str, str]], columns: set[tuple[str, str]], where: Location
) -> None:
    """Raise :class:`ConditionError` when ``sql`` does not bind or fold against the types.

    >>> check_binds('"contact"."n" > 3', {"contact": {"n": "VARCHAR"}}, {("contact", "n")},
    ...     Location())
    Traceback (most recent call last):
    ...
    pipelines.errors.ConditionError: does not fit the column types (contact.n VARCHAR): ...
    """
    frozen = frozen_tables(tables)
    con = _scratch(frozen)
    if con is None:
        return
    frame = ", ".join(f'"{alias}"' for alias, _ in (*frozen, ("occurrence", ())))
    try:
        con.cursor().execute(f"select ({sql}) from {frame}").fetchall()
    except duckdb.Error as exc:
        known = dict(frozen)
        typed = ", ".join(
            f"{alias}.{name} {dict(known.get(alias, ())).get(name, '?')}"
            for alias, name in sorted(columns)
        )
        reason = str(exc).splitlines()[0]
        raise ConditionError(f"does not fit the column types ({typed}): {reason}", where) from exc
