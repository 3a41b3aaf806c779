"""The condition compiler: an analyst's SQL filter in, safe DuckDB SQL out (SPEC section 5).

A condition is one boolean expression in DuckDB's dialect. It compiles in a fixed order:
parse into a condition -> walk against an allow-list -> resolve every column against the
schema built from the database -> rewrite ``now()``/``current_date`` to the occurrence ->
``annotate_types`` and require BOOLEAN -> emit DuckDB SQL from the tree. Anything the
allow-list does not name is rejected, so a filter is data: nothing in it can reach beyond
the row it filters. The locked connection (:func:`pipelines.db.lock_down`) stands behind it.

The emitted SQL reads the aliases ``contact``, ``account``, ``enrollment`` and ``occurrence``
that the tick and the preview provide in their FROM clause.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from dataclasses import dataclass
from typing import Literal

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.schema import MappingSchema
from sqlglot.tokens import TokenType

from pipelines.compile import activity
from pipelines.compile.allowlist import check_allowed, reject
from pipelines.compile.binding import check_binds
from pipelines.errors import ConditionError, Location

Scope = Literal["audience", "step", "exit"]
Record = Literal["contact", "account"]

CONTACT_DERIVED: dict[str, str] = {
    "last_activity_type": "VARCHAR",
    "last_activity_at": "TIMESTAMP",
    "last_contacted_mode": "VARCHAR",
    "last_contacted_at": "TIMESTAMP",
    "sequences": "VARCHAR[]",
}
ENROLLMENT_COLUMNS: dict[str, str] = {
    "emails_sent": "BIGINT",
    "opened_previous_email": "BOOLEAN",
    "clicked_previous_email": "BOOLEAN",
    "opened_any_email": "BOOLEAN",
    "clicked_any_email": "BOOLEAN",
}
OCCURRENCE_COLUMNS: dict[str, str] = {"occurrence_at": "TIMESTAMP", "occurrence_on": "DATE"}
DEFAULT_LIMIT = 8
MAX_LENGTH = 10_000  # a filter, not a program; also keeps sqlglot's recursion shallow

# First tokens that make the text a statement rather than an expression (for the message only:
# the parse into exp.Condition is what rejects them).
STATEMENT_STARTS = frozenset(
    """
    SELECT WITH FROM VALUES INSERT UPDATE DELETE MERGE TRUNCATE CREATE ALTER DROP ATTACH DETACH
    COPY PRAGMA SET INSTALL LOAD FORCE USE BEGIN COMMIT ROLLBACK DESCRIBE SHOW SUMMARIZE PIVOT
    UNPIVOT COMMENT COMMAND
    """.split()
)
NOW_FUNCTIONS = frozenset({"now", "get_current_timestamp", "transaction_timestamp"})
ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg, exp.DPipe)


@dataclass(frozen=True)
class ConditionSchema:
    """The columns a condition may read, each mapped to its DuckDB type name.

    ``contact`` holds the columns of table ``contacts`` plus :data:`CONTACT_DERIVED`;
    ``account`` the columns of table ``accounts``. ``ambiguous`` names contact columns that
    exist both as a stored column and as a derived property: referring to them is an error.
    """

    contact: dict[str, str]
    account: dict[str, str]
    ambiguous: frozenset[str] = frozenset()

    @classmethod
    def from_database(cls, con: duckdb.DuckDBPyConnection) -> ConditionSchema:
        """Read ``contacts`` and ``accounts`` (custom columns included), add the derived ones."""
        contact = _table_columns(con, "contacts")
        stored = {name.lower() for name in contact}
        ambiguous = frozenset(name for name in CONTACT_DERIVED if name in stored)
        contact.update({k: v for k, v in CONTACT_DERIVED.items() if k not in ambiguous})
        return cls(contact=contact, account=_table_columns(con, "accounts"), ambiguous=ambiguous)


def _table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(
        """
        select column_name, data_type
        from information_schema.columns
        where table_catalog = current_database()
          and table_schema = current_schema()
          and table_name = ?
        order by ordinal_position
        """,
        [table],
    ).fetchall()
    return {name: data_type for name, data_type in rows}


@dataclass(frozen=True)
class CompiledCondition:
    """A checked condition: the analyst's text and the DuckDB SQL to put in a WHERE clause.

    ``columns`` lists the (alias, column) pairs read from ``contact``/``account``/
    ``enrollment``; the occurrence columns show up as ``uses_now`` instead, the activity
    functions' generated columns as ``activities`` (:mod:`pipelines.compile.activity`).
    """

    source: str
    sql: str
    columns: frozenset[tuple[str, str]]
    uses_now: bool
    activities: frozenset[activity.ActivityFeature] = frozenset()

    @property
    def reads_sequences(self) -> bool:
        """Whether it reads the derived ``contact.sequences`` (the contact's enrolments)."""
        return ("contact", "sequences") in self.columns

    @property
    def reads_enrollment(self) -> bool:
        """Whether it reads an ``enrollment.*`` column (step conditions only)."""
        return any(alias == "enrollment" for alias, _ in self.columns)


def compile_condition(
    text: str,
    schema: ConditionSchema,
    *,
    scope: Scope = "audience",
    record: Record = "contact",
    location: Location | None = None,
) -> CompiledCondition:
    """Check one condition and compile it to DuckDB SQL with every column qualified.

    ``record`` only matters for ``scope="audience"``: step and exit conditions always
    evaluate per contact.

    >>> schema = ConditionSchema(contact={"email": "VARCHAR"}, account={"industry": "VARCHAR"})
    >>> compiled = compile_condition("email ILIKE '%@acme.com' AND account.industry = 'SaaS'",
    ...     schema)
    >>> print(compiled.sql)
    "contact"."email" ILIKE '%@acme.com' AND "account"."industry" = 'SaaS'
    >>> now = ConditionSchema(contact={"created_at": "TIMESTAMP"}, account={})
    >>> print(compile_condition("created_at > now() - interval 30 day", now).sql)
    "contact"."created_at" > "occurrence"."occurrence_at" - INTERVAL '30' DAY
    >>> try:
    ...     compile_condition("read_csv('/etc/passwd') IS NOT NULL", schema)
    ... except ConditionError as error:
    ...     print(error.message, "at", error.position)
    function read_csv() is not allowed at 0
    """
    shown = text if isinstance(text, str) else repr(text)
    where = dataclasses.replace(location or Location(), condition=shown)
    tree = _parse(text, where)
    try:
        tree, activities = activity.rewrite_activity_calls(tree, scope, record, where)
        check_allowed(tree, where)
        tables = activity.with_feature_columns(_tables_in_scope(schema, scope, record), activities)
        tree, columns = _resolve_columns(tree, tables, schema.ambiguous, where)
        tree, uses_now = _rewrite_now(_make_total(tree))
        _require_boolean(tree, tables, where)
        sql = tree.sql(dialect="duckdb", comments=False)
        check_binds(sql, tables, columns, where)
    except RecursionError as exc:
        raise ConditionError("the condition is nested too deeply", where) from exc
    return CompiledCondition(text, sql, frozenset(columns - activity.feature_columns(activities)),
        uses_now, activities)  # fmt: skip


def compile_conditions(
    texts: list[str],
    schema: ConditionSchema,
    *,
    scope: Scope = "audience",
    record: Record = "contact",
    location: Location | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[CompiledCondition]:
    """Compile a list of ANDed conditions; more than ``limit`` of them is an error.

    >>> schema = ConditionSchema(contact={"email": "VARCHAR"}, account={})
    >>> [c.sql for c in compile_conditions(["email IS NOT NULL"], schema)]
    ['NOT "contact"."email" IS NULL']
    """
    if len(texts) > limit:
        raise ConditionError(
            f"{len(texts)} conditions given, at most {limit} are allowed", location
        )
    return [
        compile_condition(text, schema, scope=scope, record=record, location=location)
        for text in texts
    ]


# --- the steps ------------------------------------------------------------------------------


def _parse(text: str, where: Location) -> exp.Expr:
    if not isinstance(text, str):
        raise ConditionError(f"a condition is SQL text, not {type(text).__name__}", where)
    if not text.strip():
        raise ConditionError("the condition is empty", where)
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"the condition is longer than {MAX_LENGTH} characters", where)
    try:
        return sqlglot.parse_one(text, read="duckdb", into=exp.Condition)
    except RecursionError as exc:
        raise ConditionError("the condition is nested too deeply", where) from exc
    except TokenError as exc:
        raise ConditionError(f"syntax error: {exc}", where) from exc
    except ParseError as exc:
        message, position = _parse_problem(text, exc)
        raise ConditionError(message, where, position) from exc


def _parse_problem(text: str, exc: ParseError) -> tuple[str, int | None]:
    """Say *why* the text is not one condition: several statements, a statement, bad syntax.

    Returns the message and the offset of the token that shows it, when known.
    """
    first = exc.errors[0] if exc.errors else {}
    description = first.get("description") or "not a boolean expression"
    if description.startswith("Required keyword"):  # names sqlglot's classes: say it plainly
        description = "the expression is incomplete"
    near = f" near {first['highlight']!r}" if first.get("highlight") else ""
    syntax = f"syntax error{near}: {description}"
    try:
        tokens = Dialect.get_or_raise("duckdb").tokenize(text)
    except TokenError:
        return syntax, _error_position(text, exc)
    for token in tokens[:-1]:
        if token.token_type == TokenType.SEMICOLON:
            return "only one expression is allowed per condition (found ';')", token.start
    if tokens and tokens[0].token_type.name in STATEMENT_STARTS:
        return f"statements are not allowed ({tokens[0].text.upper()})", tokens[0].start
    return syntax, _error_position(text, exc)


def _error_position(text: str, exc: ParseError) -> int | None:
    """Character offset of the offending token, from sqlglot's line/col (col ends the token)."""
    if not exc.errors:
        return None
    error = exc.errors[0]
    line, col = error.get("line"), error.get("col")
    if not line or col is None:
        return None
    line_start = sum(len(part) + 1 for part in text.split("\n")[: line - 1])
    return max(0, min(len(text), line_start + col - len(error.get("highlight") or " ")))


def _tables_in_scope(schema: ConditionSchema, scope: Scope, record: Record) -> dict:
    """Alias -> columns visible here; the first alias is what unqualified names mean."""
    if scope not in ("audience", "step", "exit"):
        raise ValueError(f"unknown condition scope {scope!r}")
    if scope == "audience" and record == "account":
        return {"account": schema.account}
    tables = {"contact": schema.contact, "account": schema.account}
    if scope == "step":
        tables["enrollment"] = ENROLLMENT_COLUMNS
    return tables


def _resolve_columns(
    tree: exp.Expr, tables: dict, ambiguous: frozenset[str], where: Location
) -> tuple[exp.Expr, set[tuple[str, str]]]:
    """Qualify every column as "alias"."column"; return the new tree and what it reads."""
    default = next(iter(tables))
    read: set[tuple[str, str]] = set()

    def qualify(column: exp.Expr) -> exp.Expr:
        if not isinstance(column, exp.Column):
            return column
        if column.args.get("db") or column.args.get("catalog"):
            raise reject(f"{column.sql()} refers to another table", column, where)
        alias = (column.table or default).lower()
        if alias not in tables:
            raise reject(_unknown_table(alias, tables), column, where)
        name = _find_column(column.name, tables[alias])
        if alias == "contact" and column.name.lower() in ambiguous:
            raise reject(f"column {column.name} is ambiguous", column, where)
        if name is None:
            hint = _did_you_mean(column, tables)
            raise reject(f"unknown column {alias}.{column.name}{hint}", column, where)
        read.add((alias, name))
        return exp.column(name, table=alias, quoted=True)

    return tree.transform(qualify, copy=False), read


def _did_you_mean(column: exp.Column, tables: dict) -> str:
    """A hint: a string literal in double quotes, a missing ``enrollment.``, a close name."""
    if column.this.quoted and not column.table:
        return f" (did you mean the string '{column.name}'? strings take single quotes)"
    known = [f"{alias}.{name}" for alias, cols in tables.items() for name in cols]
    if not column.table:
        exact = [k for k in known if k.split(".", 1)[1].lower() == column.name.lower()]
        if exact:
            return f" (did you mean {exact[0]}?)"
    wanted = f"{column.table or next(iter(tables))}.{column.name}".lower()
    close = difflib.get_close_matches(wanted, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _unknown_table(alias: str, tables: dict) -> str:
    if alias == "enrollment":
        return "enrollment.* columns are allowed in step conditions only"
    if alias == "contact":
        return "an account audience reads account columns only"
    return f"unknown table {alias}: only {', '.join(tables)} may be referenced"


def _find_column(name: str, columns: dict[str, str]) -> str | None:
    """DuckDB identifiers are case-insensitive, quoted or not."""
    matches = [column for column in columns if column.lower() == name.lower()]
    return matches[0] if len(matches) == 1 else None


def _rewrite_now(tree: exp.Expr) -> tuple[exp.Expr, bool]:
    """``now()`` is the occurrence's instant, ``current_date`` its local date."""
    uses_now = False

    def rewrite(node: exp.Expr) -> exp.Expr:
        nonlocal uses_now
        if isinstance(node, exp.CurrentDate) or _is_function(node, "today"):
            uses_now = True
            return exp.column("occurrence_on", table="occurrence", quoted=True)
        if isinstance(node, (exp.CurrentTimestamp, exp.Localtimestamp)) or _is_function(
            node, *NOW_FUNCTIONS
        ):
            uses_now = True
            return exp.column("occurrence_at", table="occurrence", quoted=True)
        if _is_function(node, "age") and len(node.expressions) == 1:
            # one-argument age(x) measures from midnight of current_date: make that explicit
            uses_now = True
            today = exp.column("occurrence_on", table="occurrence", quoted=True)
            start = exp.cast(today, exp.DataType.Type.TIMESTAMP)
            return exp.Anonymous(this=node.name, expressions=[start, *node.expressions])
        return node

    return tree.transform(rewrite), uses_now


def _make_total(tree: exp.Expr) -> exp.Expr:
    """Casts and parses that fail on one dirty value become NULL instead of an error, so a
    condition that passed ``validate`` cannot stop a run: CAST -> TRY_CAST, strptime ->
    try_strptime (a NULL condition is false)."""

    def total(node: exp.Expr) -> exp.Expr:
        if type(node) is exp.Cast:
            return exp.TryCast(**node.args)
        if type(node) is exp.StrToTime:
            node.set("safe", True)
        if _is_function(node, "strptime"):
            return exp.Anonymous(this="try_strptime", expressions=node.expressions)
        return node

    return tree.transform(total)


def _is_function(node: exp.Expr, *names: str) -> bool:
    return type(node) is exp.Anonymous and node.name.lower() in names


def _require_boolean(tree: exp.Expr, tables: dict, where: Location) -> None:
    """The condition must be BOOLEAN; an unknown type passes only for a function call."""
    mapping = {a: {n: _data_type(t) for n, t in cols.items()} for a, cols in tables.items()}
    mapping["occurrence"] = OCCURRENCE_COLUMNS
    select = exp.select(tree.copy()).from_(exp.to_table(next(iter(mapping))))
    for alias in list(mapping)[1:]:
        select = select.join(exp.to_table(alias))
    schema = MappingSchema(mapping, dialect="duckdb", normalize=False)
    kind = annotate_types(select, schema=schema, dialect="duckdb").selects[0].type
    if kind is not None and kind.is_type(exp.DataType.Type.BOOLEAN):
        return
    unknown = kind is None or kind.is_type(exp.DataType.Type.UNKNOWN)
    if unknown and not isinstance(tree, (exp.Literal, exp.Null, *ARITHMETIC)):
        return
    shown = kind.sql("duckdb") if kind is not None and not unknown else "not boolean"
    raise ConditionError(f"a condition must be true or false, this is {shown}", where, 0)


@functools.cache
def _data_type(type_name: str) -> exp.DataType:
    """A type sqlglot cannot read (an exotic DuckDB type) is UNKNOWN rather than a crash; one
    parse per type name per process (parsing per condition was most of compiling)."""
    try:
        return exp.DataType.build(type_name, dialect="duckdb")
    except (ParseError, ValueError):
        return exp.DataType.build("UNKNOWN")
