"""Explaining decisions (issue 12): ``why SEQUENCE CONTACT`` and ``preview SEQUENCE --render
CONTACT``. A part of :class:`pipelines.project.Project` (a base class, like
:class:`pipelines.desk.Desk`), so both are ``Project`` methods with its permissions: the
sequence must be one the user may use (SPEC 9, :func:`pipelines.scope.require_sequence`).

- ``why`` reads on a read-only connection (it cannot write: temp tables only); the story is
  :mod:`pipelines.tick.why`'s.
- ``render`` processes the next occurrence as ``preview`` does (the tick's own code, in a
  transaction rolled back afterwards: :func:`pipelines.tick.run.preview_occurrence`) and,
  before the rollback, composes that contact's due actions with the send step's own code
  (:mod:`pipelines.outbox.rehearse`), with no transport; or says why nothing is due.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb

from pipelines import db, sqlrun
from pipelines.compile.sequence import Compilation, CompiledSequence
from pipelines.errors import ErrorList, SequencerError
from pipelines.instants import as_of_or_now
from pipelines.outbox.rehearse import Rehearsal, rehearse
from pipelines.scope import require_sequence
from pipelines.tick.occurrences import Occurrence
from pipelines.tick.run import preview_occurrence
from pipelines.tick.why import Story, tell
from pipelines.workspace import Workspace

if TYPE_CHECKING:
    from pipelines.project import Instant


@dataclass
class NextForContact:
    """What one contact would get at the sequence's next occurrence."""

    sequence: str
    contact_id: str
    occurrence_on: dt.date | None = None
    occurrence_at: dt.datetime | None = None
    rendered: list[Rehearsal] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why nothing (or not everything) is due


class Explain:
    """Project methods ``why`` and ``render`` (``self`` is the :class:`Project`)."""

    def _usable(self, con, ws: Workspace, sequence: str, contact_id: str) -> Compilation:
        """Compile; the sequence must compile and the contact exist."""
        compilation = self.compile(con, ws, save=False)
        problems = [e for e in compilation.errors if e.location.sequence == sequence]
        if problems:
            raise ErrorList(problems)
        if (
            con.execute("select 1 from contacts where contact_id = ?", [contact_id]).fetchone()
            is None
        ):
            raise SequencerError(f"no contact {contact_id!r}")
        return compilation

    def why(self, sequence: str, contact_id: str, as_of: Instant = None) -> Story:
        """The story of ``contact_id`` in ``sequence`` up to ``as_of`` (default now)."""
        ws = self.workspace()
        seq = require_sequence(ws, self.actor(ws), sequence)
        con = self.connect(read_only=True)
        try:
            compilation = self._usable(con, ws, seq.name, contact_id)
            db.lock_down(con)  # analyst SQL runs next
            return tell(con, compilation.sequences[seq.name], contact_id, as_of_or_now(as_of))
        finally:
            con.close()

    def render(
        self, sequence: str, contact_id: str, as_of: Instant = None, *, env: dict | None = None
    ) -> NextForContact:
        """The exact messages ``contact_id`` would get at ``sequence``'s next occurrence (the
        send composing them at that occurrence's instant); nothing is written or sent.
        ``env`` (default ``os.environ``) holds the secrets (the tracking secret)."""
        ws = self.workspace()
        seq = require_sequence(ws, self.actor(ws), sequence)
        env = dict(os.environ) if env is None else env
        with self.connection() as con:
            compilation = self._usable(con, ws, seq.name, contact_id)
            db.lock_down(con)
            compiled = compilation.sequences[seq.name]

            def inspect(c: duckdb.DuckDBPyConnection, occ: Occurrence) -> NextForContact:
                return next_for_contact(c, ws, compiled, contact_id, occ, env)

            nxt = preview_occurrence(con, ws, compilation, seq.name, as_of_or_now(as_of), inspect)
        return nxt.get("inspected") or NextForContact(
            seq.name, contact_id, reasons=["no occurrence in the next 14 days"]
        )


def next_for_contact(
    con, ws: Workspace, compiled: CompiledSequence, contact_id: str, occ: Occurrence, env: dict
) -> NextForContact:
    """Inside the preview transaction, right after ``occ``: the contact's decided actions
    composed (due) or explained (skipped), or why none was decided."""
    found = NextForContact(compiled.name, contact_id, occ.on, occ.at)
    actions = sqlrun.dicts(
        con.execute(
            "select idempotency_key, step, day, status from actions"
            " where sequence = ? and contact_id = ? and occurrence_on = ? order by step_index",
            [compiled.name, contact_id, occ.on],
        )
    )
    for action in actions:
        if action["status"] == "due":
            found.rendered.append(rehearse(con, ws, action["idempotency_key"], occ.at, env))
        else:
            when = "; ".join(c.source for c in compiled.steps.get(action["step"], []))
            found.reasons.append(
                f"step {action['step']} (day {action['day']}) is skipped: its `when` is false "
                f"at that occurrence ({when})"
            )
    if not actions:
        found.reasons.append(_nothing_due(con, compiled, contact_id, occ))
    return found


def _nothing_due(con, compiled: CompiledSequence, contact_id: str, occ: Occurrence) -> str:
    seq = compiled.sequence
    enrolled = sqlrun.dicts(
        con.execute(
            "select status, exit_reason, exited_on, exited_at, enrolled_at from enrollments"
            " where sequence = ? and contact_id = ?",
            [seq.name, contact_id],
        )
    )
    if not enrolled:
        return _not_entering(con, compiled, contact_id, occ)
    e = enrolled[0]
    if e["status"] != "active":
        if e["exited_at"] == occ.at:
            return f"exits at that occurrence ({e['exit_reason']}): no step is decided"
        return f"exited on {e['exited_on']} ({e['exit_reason']}): nothing more is decided"
    day = con.execute("select day_index from tick_active where contact_id = ?", [contact_id])
    day = (day.fetchone() or [None])[0]
    if seq.type == "smart":
        return f"enrolled (day {day}): no step's `when` holds, or no evaluation that day"
    days = ", ".join(str(d) for d in sorted({s.day for s in seq.steps}))
    return (
        f"enrolled (day {day} at that occurrence): no step is due that day (steps on days {days})"
    )


def _not_entering(con, compiled: CompiledSequence, contact_id: str, occ: Occurrence) -> str:
    seq = compiled.sequence
    if seq.starts_on is not None and occ.on < seq.starts_on:
        return f"not enrolled, and the occurrence is before starts_on ({seq.starts_on})"
    row = con.execute(
        "select reason from tick_entries where contact_id = ?", [contact_id]
    ).fetchone()
    if row is not None:
        return f"not enrolled, and does not enter at that occurrence: {row[0]}"
    if not compiled.audience_sql:
        return "not enrolled: the sequence has no audience (manual enrolment only)"
    return (
        "not enrolled, and not in the audience at that occurrence "
        f"(`sequencer why {seq.name} {contact_id}` shows which condition keeps it out)"
    )
