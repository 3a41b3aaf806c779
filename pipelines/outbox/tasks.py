"""The owner's task queue (SPEC 6, 7 ``tasks``): email reminders, follow-ups, call reminders.

The send step creates the rows (``task_id`` = the action's idempotency key, so a replay adds
nothing); reps list, read, snooze and complete them. Completing a task appends a
``task_completed`` activity, so metrics and step conditions can see the work was done.

Ids: a task is shown by its *short id*, the shortest prefix of ``task_id`` (at least
:data:`SHORT_ID` characters) that no other task shares; any unique prefix of at least
:data:`MIN_PREFIX` characters is accepted wherever an id is (:func:`resolve`). A snoozed task
(``snoozed_until``) leaves the open queue until that local date.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from typing import IO, Any

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
KINDS = ("email_reminder", "follow_up", "call_reminder")
SHORT_ID = 8  # shown: at least this many characters of the id
MIN_PREFIX = 4  # accepted: a unique prefix of at least this many
EXPORT_COLUMNS = (
    "short_id", "task_id", "owner_id", "sequence", "step", "kind", "contact_id", "contact_name",
    "contact_email", "due_on", "snoozed_until", "done", "done_at", "title", "body",
)  # fmt: skip


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks of a queue to list. By default the open ones: not done, and not snoozed
    past ``today`` (the owner's local date); ``include_done`` lists every task."""

    sequence: str | None = None
    due_before: dt.date | None = None  # due strictly before this date
    kind: str | None = None
    include_done: bool = False
    today: dt.date | None = None
    task_id: str | None = None  # only this task


def insert_task(con: duckdb.DuckDBPyConnection, task: dict[str, Any]) -> None:
    """Add a task unless its id exists (call inside the caller's transaction)."""
    con.execute(
        f"insert into tasks ({', '.join(TASK_COLUMNS)})"
        f" values ({', '.join('?' for _ in TASK_COLUMNS)}) on conflict do nothing",
        [task.get(c) for c in TASK_COLUMNS],
    )


def list_tasks(
    con: duckdb.DuckDBPyConnection,
    user_id: str,
    *,
    include_done: bool = False,
    where: TaskFilter | None = None,
) -> list[dict[str, Any]]:
    """The user's queue, oldest due first (a snoozed task at its snooze date), each with its
    ``short_id`` and the contact's name and email; open tasks only unless ``include_done``."""
    f = where or TaskFilter(include_done=include_done)
    if f.kind is not None and f.kind not in KINDS:
        raise SequencerError(f"--kind {f.kind!r}: not a task kind (one of {', '.join(KINDS)})")
    cur = con.execute(
        """
        select
            t.task_id, t.owner_id, t.sequence, t.contact_id, t.step, t.kind, t.due_on,
            t.snoozed_until, t.title, t.body, t.done, t.done_at,
            nullif(trim(concat_ws(' ', c.first_name, c.last_name)), '') as contact_name,
            c.email as contact_email,
        from tasks as t
        left join contacts as c using (contact_id)
        where t.owner_id = $owner
          and ($all or not t.done)
          and ($all or $today is null or t.snoozed_until is null or t.snoozed_until <= $today)
          and ($sequence is null or t.sequence = $sequence)
          and ($kind is null or t.kind = $kind)
          and ($due_before is null or t.due_on < $due_before)
          and ($task_id is null or t.task_id = $task_id)
        order by greatest(t.due_on, coalesce(t.snoozed_until, t.due_on)), t.created_at, t.task_id
        """,
        {
            "owner": user_id,
            "all": f.include_done,
            "today": f.today,
            "sequence": f.sequence,
            "kind": f.kind,
            "due_before": f.due_before,
            "task_id": f.task_id,
        },
    )
    rows = sqlrun.dicts(cur)
    shorts = short_ids(con, [r["task_id"] for r in rows])
    for row in rows:
        row["short_id"] = shorts[row["task_id"]]
    return rows


def short_ids(con: duckdb.DuckDBPyConnection, task_ids: list[str]) -> dict[str, str]:
    """Each id's shortest prefix (≥ SHORT_ID characters) shared with no other task: one past
    the longest common prefix with its neighbours in id order."""
    if not task_ids:
        return {}
    rows = con.execute(
        """
        select task_id, prev, next from (
            select task_id,
                lag(task_id) over (order by task_id) as prev,
                lead(task_id) over (order by task_id) as next,
            from tasks
        ) semi join (select unnest($ids::varchar[]) as task_id) using (task_id)
        """,
        {"ids": task_ids},
    ).fetchall()
    return {
        task_id: task_id[: max(SHORT_ID, 1 + _common(task_id, prev), 1 + _common(task_id, nxt))]
        for task_id, prev, nxt in rows
    }


def _common(a: str, b: str | None) -> int:
    n = 0
    for x, y in zip(a, b or "", strict=False):
        if x != y:
            break
        n += 1
    return n


def resolve(con: duckdb.DuckDBPyConnection, ref: str) -> str:
    """The task ``ref`` names: its id, or a unique prefix of at least MIN_PREFIX characters.
    A clear error when there is none, or when the prefix fits several tasks."""
    exact = con.execute("select task_id from tasks where task_id = ?", [ref]).fetchone()
    if exact:
        return exact[0]
    if len(ref) < MIN_PREFIX:
        raise SequencerError(f"no task {ref!r} (a short id has at least {MIN_PREFIX} characters)")
    found = [
        r[0]
        for r in con.execute(
            "select task_id from tasks where starts_with(task_id, ?) order by task_id limit 3",
            [ref],
        ).fetchall()
    ]
    if not found:
        raise SequencerError(f"no task {ref!r}")
    if len(found) > 1:
        raise SequencerError(f"task id {ref!r} is ambiguous: it starts several tasks; type more")
    return found[0]


def complete_task(con: duckdb.DuckDBPyConnection, task_id: str, at: dt.datetime) -> bool:
    """Mark a task done at ``at`` and log ``task_completed``; False (and nothing written) when
    it was done already."""
    at = to_naive_utc(at)
    row = con.execute(
        "select contact_id, sequence, step, done from tasks where task_id = ?", [task_id]
    ).fetchone()
    if row is None:
        raise SequencerError(f"no task {task_id!r}")
    contact_id, sequence, step, done = row
    if done:
        return False
    with transaction(con):
        con.execute("update tasks set done = true, done_at = ? where task_id = ?", [at, task_id])
        con.execute(
            "insert into activities (activity_id, contact_id, type, occurred_at, sequence, step)"
            " values (?, ?, 'task_completed', ?, ?, ?)",  # once: guarded by `done` above
            [f"task_completed:{task_id}", contact_id, at, sequence, step],
        )
    return True


def snooze_task(con: duckdb.DuckDBPyConnection, task_id: str, until: dt.date) -> None:
    """Hide an open task from the queue until the local date ``until`` (a date already past
    brings it back now); a done task cannot be snoozed."""
    row = con.execute("select done from tasks where task_id = ?", [task_id]).fetchone()
    if row is None:
        raise SequencerError(f"no task {task_id!r}")
    if row[0]:
        raise SequencerError(f"task {task_id!r} is done: nothing to snooze")
    con.execute("update tasks set snoozed_until = ? where task_id = ?", [until, task_id])


def export_csv(rows: list[dict[str, Any]], out: IO[str]) -> None:
    """The listed tasks as CSV (one row per task, header first; no Dagster involved)."""
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in EXPORT_COLUMNS})
