"""The DuckDB file: connecting, the schema, and the locked connection for analyst SQL.

DuckDB allows one writer process per file, and a writer blocks other processes from
opening the file even read-only (see shared NOTES.md). Every connection goes through
:func:`connect` so that a held lock becomes a clear :class:`DatabaseBusy` error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from pipelines import sqlrun
from pipelines.errors import DatabaseBusy

DEFAULT_DB = Path(".sequencer") / "sequencer.duckdb"


def default_db_path(project: Path) -> Path:
    """The database a project uses when ``--db`` is not given.

    >>> default_db_path(Path("/ws")).as_posix()
    '/ws/.sequencer/sequencer.duckdb'
    """
    return project / DEFAULT_DB


def connect(path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the database file with the engine's settings; create the schema when writable.

    Replacement scans are off, so a missing table is an error rather than a Python variable
    of the same name; the session time zone is UTC because every stored timestamp is UTC.
    """
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise DatabaseBusy(
                f"another run holds the database {path}; wait for it to finish and retry"
            ) from exc
        raise
    con.execute("set python_enable_replacements = false")
    con.execute("set TimeZone = 'UTC'")
    # The default 16 MB WAL threshold checkpointed (rewriting the actions key index) several
    # times per daily tick at 1e6 contacts: about half its time (bench/tick_bench.py).
    con.execute("set checkpoint_threshold = '1GB'")
    if not read_only:
        sqlrun.execute(con, "schema.sql")
    else:
        temp_macros(con)
    return con


def temp_macros(con: duckdb.DuckDBPyConnection) -> None:
    """The temp macros of ``schema.sql`` alone (a read-only connection creates no table, but
    the models it runs call ``contacted_mode``, ``is_machine_open``…)."""
    for statement in con.extract_statements(sqlrun.render("schema.sql")):
        if "temp macro" in statement.query.lower():
            con.execute(statement.query)


def lock_down(con: duckdb.DuckDBPyConnection) -> None:
    """Make ``con`` safe for analyst SQL: no file or network access, settings frozen.

    This is defence in depth behind the condition compiler: even a filter that slipped past
    the compiler cannot read a file, attach a database or turn access back on. The settings
    hold for the database instance until its last connection closes, so each phase (ingest,
    tick, send) opens and closes its own connection. Locking a locked instance again is a
    no-op (a caller may tick several times on one connection).
    """
    if con.execute("select current_setting('lock_configuration')").fetchone()[0]:
        return
    con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run a block atomically: commit on success, roll back on any error."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")
