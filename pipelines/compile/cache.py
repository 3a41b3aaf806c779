"""Compiled conditions kept between runs (issue 11: compile was most of a run of many
near-empty sequences: ~5 ms per condition for parse, allow-list, typing and the bind check).

A condition compiles to the same :class:`CompiledCondition` whenever the same text is
compiled in the same scope against the same columns and types by the same compiler, so the
result is stored under a key of exactly those inputs: the text, the scope and record, the
columns (and types) visible in that scope, the ambiguous names, and :func:`version` — a hash
of the compiler's own source files and the sqlglot and duckdb versions, so an upgrade or a
change to the compiler recompiles everything. Only successes are stored: a condition that
fails compiles again each time, so its error always names its current file and step.

The entries live in the database (table ``compiled_conditions``); :func:`load` reads them
before a compile and :func:`save` afterwards keeps exactly the entries that compile used
(nothing grows with edits), and writes nothing when nothing changed. A database that cannot
be written (read-only, or older without the table) still compiles, uncached.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import duckdb
import sqlglot

from pipelines.compile.activity import ActivityFeature
from pipelines.compile.condition import (
    DEFAULT_LIMIT,
    CompiledCondition,
    ConditionSchema,
    Record,
    Scope,
    _tables_in_scope,
    compile_condition,
    compile_conditions,
)
from pipelines.errors import Location

COMPILER_FILES = ("activity.py", "allowlist.py", "binding.py", "condition.py", "cache.py")


@functools.cache
def version() -> str:
    """The compiler's identity: its source files and the versions of sqlglot and duckdb."""
    digest = hashlib.sha256(f"{sqlglot.__version__}|{duckdb.__version__}".encode())
    here = Path(__file__).parent
    for name in COMPILER_FILES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


class ConditionCache:
    """Compiled conditions by key for one schema; ``used`` are the keys this compile read or
    added, ``added`` the new entries."""

    def __init__(self, schema: ConditionSchema, entries: dict[str, CompiledCondition]) -> None:
        self.schema = schema
        self.entries = entries
        self.used: set[str] = set()
        self.added: dict[str, CompiledCondition] = {}
        self._scopes: dict[tuple[str, str], str] = {}

    def key(self, text: str, scope: Scope, record: Record) -> str:
        if (scope, record) not in self._scopes:
            tables = _tables_in_scope(self.schema, scope, record)
            self._scopes[scope, record] = json.dumps(
                [version(), scope, record, tables, sorted(self.schema.ambiguous)]
            )
        raw = json.dumps([self._scopes[scope, record], text])
        return hashlib.sha256(raw.encode()).hexdigest()

    def compile_conditions(
        self,
        texts: list[str],
        schema: ConditionSchema,
        *,
        scope: Scope = "audience",
        record: Record = "contact",
        location: Location | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[CompiledCondition]:
        """:func:`~pipelines.compile.condition.compile_conditions`, from the cache where the
        same condition compiled before (``schema`` must be the cache's)."""
        assert schema is self.schema, "a cache serves the schema it was made for"
        if len(texts) > limit or not all(isinstance(t, str) for t in texts):
            return compile_conditions(
                texts, schema, scope=scope, record=record, location=location, limit=limit
            )
        out = []
        for text in texts:
            key = self.key(text, scope, record)
            hit = self.entries.get(key)
            if hit is None:
                hit = compile_condition(text, schema, scope=scope, record=record, location=location)
                self.entries[key] = self.added[key] = hit
            self.used.add(key)
            out.append(hit)
        return out


def load(con: duckdb.DuckDBPyConnection, schema: ConditionSchema) -> ConditionCache:
    """The stored entries (none when the table is missing)."""
    try:
        rows = con.execute(
            "select key, source, sql, columns, uses_now, activities from compiled_conditions"
        ).fetchall()
    except duckdb.Error:
        rows = []
    entries = {
        key: CompiledCondition(
            source=source,
            sql=sql,
            columns=frozenset(tuple(pair) for pair in json.loads(columns)),
            uses_now=uses_now,
            activities=frozenset(map(ActivityFeature.from_json, json.loads(activities or "[]"))),
        )
        for key, source, sql, columns, uses_now, activities in rows
    }
    return ConditionCache(schema, entries)


def save(con: duckdb.DuckDBPyConnection, cache: ConditionCache) -> None:
    """Keep exactly the entries this compile used; nothing is written when none is new or
    stale. A failure to write (a read-only database) leaves the stored entries as they were."""
    stale = set(cache.entries) - cache.used
    if not cache.added and not stale:
        return
    rows = [
        (key, c.source, c.sql, json.dumps(sorted(c.columns)), c.uses_now, _features(c))
        for key, c in cache.added.items()
    ]
    try:
        if stale:
            con.execute(
                "delete from compiled_conditions where list_contains(?, key)", [sorted(stale)]
            )
        if rows:
            con.executemany(
                "insert or ignore into compiled_conditions "
                "(key, source, sql, columns, uses_now, activities) values (?, ?, ?, ?, ?, ?)",
                rows,
            )
    except duckdb.Error:
        pass  # a cache: the next compile recompiles what is missing


def _features(compiled: CompiledCondition) -> str:
    """The activity functions a condition calls, as stored (a JSON list, in a fixed order)."""
    ordered = sorted(compiled.activities, key=ActivityFeature.sort_key)
    return json.dumps([feature.to_json() for feature in ordered])
