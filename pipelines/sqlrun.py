"""The one SQL runner: every statement the engine keeps under ``sql/`` is rendered and run here.

One Jinja environment is rooted at the SQL directory, so a model names another by its path
(``{% include 'tick/int_occurrence_contact.sql' %}``). Jinja decides structure only: values
spliced into structure go through the ``literal`` and ``ident`` filters (sqlglot quoting);
values go in as named ``$parameters``, and :func:`run` binds only those the statement uses
(DuckDB rejects unused ones), so callers pass one dict for a whole phase.

Where ``sql/`` is: a built wheel carries it inside the package (``pipelines/sql_files/``,
copied by ``setup.py``); a source checkout, an editable install and a mutation run's copy of
the project read the top-level ``sql/`` beside the package (docs/decisions.md).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlglot import exp

PACKAGED = "sql_files"  # the folder a wheel ships sql/ as, inside the `pipelines` package


def sql_root() -> Path:
    """The directory the SQL files are read from: the packaged copy, else the source tree.

    >>> (sql_root() / "schema.sql").is_file()
    True
    """
    package = Path(str(resources.files("pipelines")))
    packaged = package / PACKAGED
    return packaged if packaged.is_dir() else package.parent / "sql"


def literal(value: object) -> str:
    """A SQL string literal, as sqlglot writes it for DuckDB.

    >>> literal("it's")
    "'it''s'"
    """
    return _string_literal(str(value))


@functools.lru_cache(maxsize=65536)
def _string_literal(text: str) -> str:
    # once per text: a batched tick inlines the same names and instants in every branch
    return exp.Literal.string(text).sql(dialect="duckdb")


def ident(name: object) -> str:
    """A quoted SQL identifier, as sqlglot writes it for DuckDB.

    >>> print(ident("order"), ident("lead score"))
    "order" "lead score"
    """
    return exp.to_identifier(str(name), quoted=True).sql(dialect="duckdb")


ENV = Environment(
    loader=FileSystemLoader(sql_root()),
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)
ENV.filters["literal"] = literal
ENV.filters["ident"] = ident

# A named parameter outside comments and string literals (those are matched and skipped).
_PARAM = re.compile(r"--[^\n]*|'(?:[^']|'')*'|\$([A-Za-z_]\w*)")


def render(name: str, **context: Any) -> str:
    """The text of ``sql/<name>`` rendered with ``context`` (undefined names are errors).

    >>> print(render("tick/dml_insert_actions.sql").splitlines()[-1])
    from tick_actions
    """
    return ENV.get_template(name).render(**context)


def parameters(statement: str) -> set[str]:
    """The named ``$parameters`` a statement uses; comments and string literals do not count.

    >>> sorted(parameters("select $a, '$b' -- $c\\nwhere x = $d or y = $a"))
    ['a', 'd']
    """
    return {m.group(1) for m in _PARAM.finditer(statement) if m.group(1)}


def value(v: object) -> str:
    """A Python parameter value as a typed SQL literal (for a statement whose parameters are
    inlined, e.g. one branch per sequence of a batched tick statement).

    >>> print(value(None), value(3), value(["a", "b"]), value(dt.date(2026, 3, 2)))
    null 3 ['a', 'b'] DATE '2026-03-02'
    >>> print(value(dt.datetime(2026, 3, 2, 9, 30)), value([]), value("it's"))
    TIMESTAMP '2026-03-02 09:30:00' [] 'it''s'
    """
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            raise ValueError(f"naive UTC timestamps only: {v!r}")
        return f"TIMESTAMP {literal(v.isoformat(sep=' '))}"
    if isinstance(v, dt.date):
        return f"DATE {literal(v.isoformat())}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(value(item) for item in v) + "]"
    return literal(v)


def inline(statement: str, params: dict[str, Any]) -> str:
    """``statement`` with each named ``$parameter`` replaced by its value as a SQL literal
    (comments and string literals are left alone, as in :func:`parameters`).

    >>> print(inline("select $a, '$a' -- $a\\nwhere d = $d", {"a": "x", "d": None}))
    select 'x', '$a' -- $a
    where d = null
    """

    def replace(match: re.Match) -> str:
        name = match.group(1)
        return value(params[name]) if name else match.group(0)

    return _PARAM.sub(replace, statement)


def run(
    con: duckdb.DuckDBPyConnection, statement: str, params: Any = None
) -> duckdb.DuckDBPyConnection:
    """Execute ``statement``; of a dict of ``params``, bind only the names it uses.

    A list binds positionally, unchanged.

    >>> con = duckdb.connect()
    >>> run(con, "select $x + 1", {"x": 1, "unused": 2}).fetchone()
    (2,)
    """
    if isinstance(params, dict):
        used = parameters(statement)
        params = {k: v for k, v in params.items() if k in used}
    return con.execute(statement, params or None)


def execute(
    con: duckdb.DuckDBPyConnection, name: str, params: Any = None, **context: Any
) -> duckdb.DuckDBPyConnection:
    """Render ``sql/<name>`` with ``context`` and run it with ``params``.

    >>> con = duckdb.connect()
    >>> _ = execute(con, "schema.sql", {"unused": 1})
    >>> con.execute("select count(*) from contacts").fetchone()
    (0,)
    """
    return run(con, render(name, **context), params)


def materialize(
    con: duckdb.DuckDBPyConnection, table: str, statement: str, params: Any = None
) -> None:
    """``create or replace temp table <table> as <statement>``, binding what it uses.

    >>> con = duckdb.connect()
    >>> materialize(con, "picked", "select $x as x", {"x": 1, "y": 2})
    >>> con.execute("select * from picked").fetchall()
    [(1,)]
    """
    run(con, f"create or replace temp table {ident(table)} as {statement}", params)


def dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The rows of an executed statement as dicts keyed by column name.

    >>> dicts(duckdb.connect().execute("select 1 as a, 'x' as b"))
    [{'a': 1, 'b': 'x'}]
    """
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def rows(
    con: duckdb.DuckDBPyConnection, name: str, params: Any = None, **context: Any
) -> list[dict[str, Any]]:
    """Render and run the query ``sql/<name>``; its rows as dicts.

    >>> con = duckdb.connect()
    >>> _ = con.execute("create table actions (idempotency_key varchar, sequence varchar, "
    ...     "contact_id varchar, step varchar)")
    >>> rows(con, "checks/assert_duplicate_idempotency_keys.sql")
    []
    """
    return dicts(execute(con, name, params, **context))
