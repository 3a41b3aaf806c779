"""Helpers for the tick tests: a real DuckDB file, rows in, a workspace on disk, a tick."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any

import duckdb

from pipelines.db import connect
from pipelines.instants import parse_instant
from pipelines.project import Project
from pipelines.tick.run import RunReport
from tests.workspace_helpers import write_workspace

T0 = dt.datetime(2026, 1, 1)


def ts(text: str) -> dt.datetime:
    """``'2026-03-02 14:00'`` → naive UTC datetime (the engine's parser: no offset = UTC)."""
    return parse_instant(text)


def open_db(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    return connect(tmp_path / "db" / "sequencer.duckdb")


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    """Insert rows given as dicts (missing columns are null)."""
    for row in rows:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        con.execute(f"insert into {table} ({cols}) values ({marks})", list(row.values()))


def contact(cid: str, email: str | None = "", **extra: Any) -> dict[str, Any]:
    """A contact row; email defaults to ``<cid>@x.example``, created at T0."""
    return {
        "contact_id": cid,
        "email": f"{cid}@x.example" if email == "" else email,
        "first_name": cid.title(),
        "created_at": T0,
        **extra,
    }


_activity_ids = iter(range(1, 10**9))


def activity(cid: str, type_: str, at: str, **extra: Any) -> dict[str, Any]:
    return {
        "activity_id": f"a{next(_activity_ids):06d}",
        "contact_id": cid,
        "type": type_,
        "occurred_at": ts(at),
        **extra,
    }


def write_sequences(root: Path, sequences: dict[str, str], **kwargs: Any) -> Path:
    """Write (or rewrite) the workspace; sequences map stem → YAML text (the one builder,
    :func:`tests.workspace_helpers.write_workspace`, dedents it)."""
    return write_workspace(root, sequences, **kwargs)


def compile_root(con: duckdb.DuckDBPyConnection, root: Path):
    project = Project(root)
    ws = project.workspace()
    compilation = project.compile(con, ws)
    assert not compilation.errors, [str(e) for e in compilation.errors]
    return ws, compilation


def tick(con: duckdb.DuckDBPyConnection, root: Path, as_of: str | dt.datetime) -> RunReport:
    """Read the workspace as it is now and run one tick at ``as_of`` on ``con``: the
    production path (``Project.run``: compile, lock the connection down, tick)."""
    result = Project(root).run(
        ts(as_of) if isinstance(as_of, str) else as_of, con=con, allow_future=True
    )
    assert not result.problems, [str(e) for e in result.problems]
    return result.report


def enrollments(con: duckdb.DuckDBPyConnection, sequence: str | None = None) -> list[tuple]:
    """(sequence, contact_id, enrolled_on, status, exit_reason, exited_on), sorted."""
    return con.execute(
        """select sequence, contact_id, enrolled_on::varchar, status, exit_reason,
                  exited_on::varchar
           from enrollments where ? is null or sequence = ? order by all""",
        [sequence, sequence],
    ).fetchall()


def actions(con: duckdb.DuckDBPyConnection, sequence: str | None = None) -> list[tuple]:
    """(sequence, contact_id, step, day, occurrence_on, status), sorted."""
    return con.execute(
        """select sequence, contact_id, step, day, occurrence_on::varchar, status
           from actions where ? is null or sequence = ? order by all""",
        [sequence, sequence],
    ).fetchall()


def classic(
    name: str,
    steps: str,
    *,
    audience: str = 'where: ["true"]',
    extra: str = "",
    schedule: str = "{time: '09:00', timezone: UTC}",
) -> str:
    """A classic sequence YAML owned by alice; ``steps`` is a YAML list body."""
    return (
        f"name: {name}\nowner: alice\naudience:\n  {audience}\nschedule: {schedule}\n"
        f"{textwrap.dedent(extra)}\nsteps:\n{textwrap.indent(textwrap.dedent(steps), '  ')}"
    )
