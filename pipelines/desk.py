"""The rep's and the operator's desk (issue 12): the task queue a rep works, and the reports
of what the send step did. A part of :class:`pipelines.project.Project` (its base class), so
the CLI, Dagster and the tests call these as ``Project`` methods, with its permissions:

- a task queue is listed, read, snoozed and completed by its owner, an admin or the operator
  (SPEC 9); several ids at once each get their own outcome, so one wrong id never stops the
  others;
- the reports of the send (:mod:`pipelines.outbox.reports`) are read-only: a rep or viewer
  sees the actions of their own sequences and their own daily volume; an admin or the
  operator sees all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from pipelines.errors import PermissionDenied, SequencerError
from pipelines.instants import as_of_or_now, local_date
from pipelines.outbox import reports
from pipelines.outbox import tasks as task_queue
from pipelines.outbox.tasks import TaskFilter
from pipelines.scope import require_sequence, sees_all, visible_sequences

if TYPE_CHECKING:
    from pipelines.project import Instant

# The outcome of one id of `tasks done|snooze`: "ok", or why not ("input": no such task or an
# ambiguous prefix; "denied": another user's task).
Outcome = tuple[str, str]


class Desk:
    """Project methods for tasks and action reports (``self`` is the :class:`Project`)."""

    def tasks(
        self, owner: str | None = None, *, include_done: bool = False,
        where: TaskFilter | None = None, as_of: Instant = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """One user's task queue: ``owner``'s (an admin or the operator: anyone's; a rep or
        viewer: only their own), by default the acting user's. Snoozed tasks are hidden until
        their date, in the owner's timezone at ``as_of`` (default now)."""
        ws = self.workspace()
        actor = self.actor(ws)  # an unknown acting user is refused
        owner = owner or self.user
        if not owner:
            raise SequencerError("tasks lists one user's queue: give --owner U (or --user U)")
        if owner != actor.user_id and not sees_all(ws, actor):
            raise PermissionDenied(
                f"the task queue of {owner!r} is for its owner, an admin or the operator; "
                f"{actor.describe()} may list only their own"
            )
        user = ws.users.user(owner)
        today = local_date(as_of_or_now(as_of), user.timezone if user else "UTC")
        where = replace(where or TaskFilter(include_done=include_done), today=today)
        with self.connection() as con:
            return task_queue.list_tasks(con, owner, where=where)

    def task(self, ref: str) -> dict[str, Any]:
        """One task, by id or unique prefix, as listed (its body included)."""
        ws = self.workspace()
        actor = self.actor(ws)
        with self.connection() as con:
            task_id = task_queue.resolve(con, ref)
            owner = self._task_owner(con, ws, actor, task_id)
            where = TaskFilter(include_done=True, task_id=task_id)
            (row,) = task_queue.list_tasks(con, owner, where=where)
        return row

    def complete_task(self, task_id: str, at: Instant = None) -> None:
        """Mark one task done (its owner, an admin or the operator) and log ``task_completed``;
        errors are raised (see :meth:`complete_tasks` for several)."""
        status, text = self.complete_tasks([task_id], at)[task_id]
        if status == "denied":
            raise PermissionDenied(text)
        if status != "ok":
            raise SequencerError(text)

    def complete_tasks(self, refs: list[str], at: Instant = None) -> dict[str, Outcome]:
        """Mark each task done; an outcome per id (``done``, ``already done``, or why not)."""
        at = as_of_or_now(at)

        def done(con, task_id: str) -> str:
            return "done" if task_queue.complete_task(con, task_id, at) else "already done"

        return self._each_task(refs, done)

    def snooze_tasks(self, refs: list[str], until: dt.date) -> dict[str, Outcome]:
        """Hide each open task until the local date ``until``; an outcome per id."""

        def snooze(con, task_id: str) -> str:
            task_queue.snooze_task(con, task_id, until)
            return f"snoozed until {until}"

        return self._each_task(refs, snooze)

    def _each_task(self, refs: list[str], act) -> dict[str, Outcome]:
        ws = self.workspace()
        actor = self.actor(ws)
        outcomes: dict[str, Outcome] = {}
        with self.connection() as con:
            for ref in refs:
                try:
                    task_id = task_queue.resolve(con, ref)
                    self._task_owner(con, ws, actor, task_id)
                    outcomes[ref] = ("ok", act(con, task_id))
                except PermissionDenied as exc:
                    outcomes[ref] = ("denied", str(exc))
                except SequencerError as exc:
                    outcomes[ref] = ("input", str(exc))
        return outcomes

    @staticmethod
    def _task_owner(con, ws, actor, task_id: str) -> str:
        """The task's owner; PermissionDenied unless the actor may act on it."""
        owner = con.execute("select owner_id from tasks where task_id = ?", [task_id]).fetchone()
        if owner is None:
            raise SequencerError(f"no task {task_id!r}")
        if not (sees_all(ws, actor) or owner[0] == actor.user_id):
            raise PermissionDenied(f"task {task_id!r} belongs to {owner[0]!r}")
        return owner[0]

    # --- reports of the send (issue 12 item 6) ---------------------------------------------

    def actions_report(
        self,
        status: list[str] | None = None,
        sequence: str | None = None,
        step: str | None = None,
        *,
        list_limit: int = 0,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> list[reports.ActionGroup]:
        """Actions in ``status`` (default: held, failed, deferred, unknown, expired — what
        needs a look after a send) grouped by sequence, step, status and reason, most
        frequent first; of the sequences the user may see (SPEC 9), or only ``sequence`` /
        ``step``. ``list_limit`` > 0 lists that many actions of each group. Read-only."""
        ws = self.workspace()
        actor = self.actor(ws)
        statuses = reports.parse_statuses(status)
        if sequence and (sequence in ws.sequences or not sees_all(ws, actor)):
            require_sequence(ws, actor, sequence)  # as `metrics --sequence`
        only = None if sees_all(ws, actor) else [s.name for s in visible_sequences(ws, actor)]
        with self.reading(con) as c:
            return reports.action_groups(
                c, statuses, only=only, sequence=sequence, step=step, list_limit=list_limit
            )

    def volume_report(
        self,
        days: int = 7,
        as_of: Instant = None,
        *,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> list[reports.VolumeDay]:
        """Emails per sender per local day (the sender's timezone) for the last ``days`` days
        up to ``as_of`` (default now), against each one's daily limit, and the emails deferred
        now: every user's for an admin or the operator, else the acting user's own."""
        ws = self.workspace()
        actor = self.actor(ws)
        users = ws.users.users if sees_all(ws, actor) else [ws.users.user(actor.user_id or "")]
        with self.reading(con) as c:
            return reports.daily_volume(c, ws, [u for u in users if u], as_of_or_now(as_of), days)

    @contextmanager
    def reading(
        self, con: duckdb.DuckDBPyConnection | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """``con`` when given, else a read-only connection (closed on exit); when this process
        already holds the file writable (a test, a Dagster resource), a connection like it."""
        if con is not None:
            yield con
            return
        path = Path(self.db_path)
        if not path.is_file():
            raise SequencerError(f"no database at {path} yet: nothing was run or sent")
        try:
            con = self.connect(read_only=True)
        except duckdb.ConnectionException as exc:
            if "different configuration" not in str(exc):
                raise
            con = self.connect()
        try:
            yield con
        finally:
            con.close()
