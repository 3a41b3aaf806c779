"""The owner's task queue (SPEC 6, 7 ``tasks``): email reminders, follow-ups, call reminders.

The send step creates the rows (``task_id`` = the action's idempotency key, so a replay adds
nothing); reps list and complete them. Completing a task appends a ``task_completed``
activity, so metrics and step conditions can see the work was done.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from pipelines import sqlrun
from pipelines.db import transaction
from pipelines.errors import SequencerError
from pipelines.instants import to_naive_utc

TASK_COLUMNS = (
    "task_id",
    "owner_id",
    "sequence",
    "contact_id",
    "step",
    "kind",
    "due_on",
    "title",
    "body",
)


def insert_task(con: duckdb.DuckDBPyConnection, task: dict[str, Any]) -> None:
    """Add a task unless its id exists (call inside the caller's transaction)."""
    con.execute(
        f"insert into tasks ({', '.join(TASK_COLUMNS)})"
        f" values ({', '.join('?' for _ in TASK_COLUMNS)}) on conflict do nothing",
        [task.get(c) for c in TASK_COLUMNS],
    )


def list_tasks(
    con: duckdb.DuckDBPyConnection, user_id: str, *, include_done: bool = False
) -> list[dict[str, Any]]:
    """The user's queue, oldest due first; open tasks only unless ``include_done``."""
    cur = con.execute(
        "select task_id, owner_id, sequence, contact_id, step, kind, due_on, title, body,"
        " done, done_at from tasks where owner_id = ? and (? or not done)"
        " order by due_on, created_at, task_id",
        [user_id, include_done],
    )
    return sqlrun.dicts(cur)


def complete_task(con: duckdb.DuckDBPyConnection, task_id: str, at: dt.datetime) -> None:
    """Mark a task done at ``at`` and log ``task_completed``; completing twice is a no-op."""
    at = to_naive_utc(at)
    row = con.execute(
        "select contact_id, sequence, step, done from tasks where task_id = ?", [task_id]
    ).fetchone()
    if row is None:
        raise SequencerError(f"no task {task_id!r}")
    contact_id, sequence, step, done = row
    if done:
        return
    with transaction(con):
        con.execute("update tasks set done = true, done_at = ? where task_id = ?", [at, task_id])
        con.execute(
            "insert into activities (activity_id, contact_id, type, occurred_at, sequence, step)"
            " values (?, ?, 'task_completed', ?, ?, ?)",  # once: guarded by `done` above
            [f"task_completed:{task_id}", contact_id, at, sequence, step],
        )
