"""Incremental state and the run's per-run tables.

The activity-derived contact properties live in ``contact_activity_state`` as of
``tick_state.properties_as_of`` (W: the latest instant of the latest run). A run reads the
activities after W once (``tick_window``); before the group at instant t, only the window's
activities since the previous instant are aggregated and merged into the run's window state
(int_activity_delta), so a daily run costs about the day's new activity plus the
enrolments involved, not the history. The stored state and W are written once, at the end
of the run (``flush_state``: issue 11, one write instead of one per instant).

Per-run work (``start_run``). Contacts without activity in the run's window have the same
row at every instant of the run: their ``contact`` rows are materialized once
(``tick_contacts_static``), and the audience of every sequence whose audience reads neither
``now()``, ``sequences`` nor an activity function (``activity_count``: a window moves with
the occurrence) is evaluated over them once (``tick_audience_static``). Only the
window's contacts (``tick_contacts_window``) are rebuilt per instant, and evaluated per
occurrence. Per occurrence, what remains scales with the sequence's enrolments (plus one
hash-join probe over the contacts per phase).

The state carries how many activities (occurred_at ≤ W) it was built from; when a run finds
a different count — activities ingested late, with an occurred_at at or before an instant
already processed — it rebuilds the state from the full history once. Decisions already made
at those earlier instants are NOT re-decided (trade-off: replays stay stable and cheap); the
late activities count from the next occurrence on.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from pipelines import sqlrun
from pipelines.compile.sequence import Compilation
from pipelines.tick.occurrences import Occurrence

Mark = tuple[dt.datetime | None, int]  # (the state's instant W, activities counted up to it)


def watermark(con) -> Mark:
    row = con.execute("select properties_as_of, activities_counted from tick_state").fetchone()
    return (row[0], row[1] or 0) if row else (None, 0)


def _set_watermark(con, at: dt.datetime, counted: int) -> None:
    if (
        con.execute(
            "update tick_state set properties_as_of = ?, activities_counted = ?", [at, counted]
        ).fetchone()[0]
        == 0
    ):
        con.execute("insert into tick_state values (1, ?, ?)", [at, counted])


def _apply_activity_delta(
    con, from_at: dt.datetime | None, to_at: dt.datetime, source: str = "activities"
) -> int:
    """Merge the activities in (from_at, to_at] into contact_activity_state; return their count.

    ``source`` is ``activities`` or the run's ``tick_window`` (see ``start_run``).
    """
    sql = sqlrun.render("tick/int_activity_delta.sql", from_at=from_at is not None, source=source)
    sqlrun.materialize(con, "activity_delta", sql, {"from_at": from_at, "to_at": to_at})
    sqlrun.execute(con, "tick/dml_upsert_activity_state.sql")
    return con.execute("select coalesce(sum(activities), 0) from activity_delta").fetchone()[0]


def check_late_activities(con) -> bool:
    """Rebuild the state when the activities at or before W changed since it was built."""
    at, counted = watermark(con)
    if at is None:
        return False
    now_count = con.execute(
        "select count(*) from activities where contact_id is not null and occurred_at <= ?",
        [at],
    ).fetchone()[0]
    if now_count == counted:
        return False
    con.execute("delete from contact_activity_state")
    _set_watermark(con, at, _apply_activity_delta(con, None, at))
    return True


def _instant_contacts(con, table: str, contacts: str, state: str) -> None:
    sql = sqlrun.render("tick/int_instant_contacts.sql", contacts=contacts, state=state)
    con.execute(f"create or replace temp table {table} as {sql}")


class AudienceBatchFailed(Exception):
    """The run's one-statement audience failed (a condition that fails only on data): the
    caller redoes the run with each audience evaluated per occurrence, where the failing
    sequence is named."""


def start_run(
    con, groups: list[list[Occurrence]], compilation: Compilation, *, audiences: bool = True
) -> set[str]:
    """Per-run temp tables, so that each instant costs about its own changes.

    - ``tick_window``: the activities in (W, last instant], read once from ``activities``
      (a first run builds the state up to its first instant from the whole history first);
    - ``tick_contacts_static``: the contact rows (int_instant_contacts) of every contact
      WITHOUT activity in the window: their state is that of W for the whole run;
    - ``tick_window_contact_rows`` / ``tick_window_state``: the contacts with activity in
      the window and their state, which ``advance_state`` moves instant by instant;
    - ``instant_contacts``: the view over the static rows and the instant's window rows;
    - ``tick_email_activities``: the opens/clicks that can belong to an enrolment's email;
    - ``tick_audience_static``: the static contacts in the audience of every sequence whose
      audience reads neither ``now()``, ``sequences`` nor an activity function
      (``CompiledSequence.reads``; the SQL is int_audience_static.sql).

    Returns the names of those sequences (their entries read ``tick_audience_static``);
    none with ``audiences=False``.
    """
    first_at, last_at = groups[0][0].at, groups[-1][0].at
    at, counted = watermark(con)
    if at is None:
        _set_watermark(con, first_at, _apply_activity_delta(con, None, first_at))
        at = first_at
    _window_tables(con, at, last_at)
    con.execute("create or replace temp table tick_state_touched (contact_id varchar)")
    if any(c.reads_enrollment for c in compilation.sequences.values()):
        _email_activities(con, first_at, last_at)
    return _precompute_audiences(con, groups, compilation) if audiences else set()


def _window_tables(con, at: dt.datetime, last_at: dt.datetime) -> None:
    """``tick_window`` (the activities in (at, last_at]), the window's contacts and state, the
    static contact rows and the ``instant_contacts`` view over both."""
    sqlrun.run(
        con,
        """
        create or replace temp table tick_window as
        select contact_id, activity_id, type, occurred_at
        from activities
        where contact_id is not null
          and occurred_at > $from_at
          and occurred_at <= $to_at
        order by occurred_at
        """,
        {"from_at": at, "to_at": last_at},
    )
    con.execute(
        """
        create or replace temp table tick_window_contacts as
        select distinct contact_id from tick_window;
        create or replace temp table tick_window_contact_rows as
        select * from contacts semi join tick_window_contacts using (contact_id);
        create or replace temp table tick_window_state as
        select * from contact_activity_state semi join tick_window_contacts using (contact_id);
        """
    )
    _instant_contacts(
        con,
        "tick_contacts_static",
        "(select * from contacts anti join tick_window_contacts using (contact_id))",
        "contact_activity_state",
    )
    _instant_contacts(con, "tick_contacts_window", "tick_window_contact_rows", "tick_window_state")
    con.execute(
        "create or replace temp view instant_contacts as "
        "select * from tick_contacts_static union all by name select * from tick_contacts_window"
    )


def _email_activities(con, first_at: dt.datetime, last_at: dt.datetime) -> None:
    """``tick_email_activities``: the human opens and the clicks that can belong to an
    enrolment's email.
    An open/click counts only after the enrolment: the earliest active one bounds it."""
    sqlrun.run(
        con,
        """
        create or replace temp table tick_email_activities as
        select contact_id, type, sequence, step, message_id, occurred_at
        from activities
        where type in ('email_opened', 'email_clicked')
          and not is_machine_open(type, detail)  -- sql/schema.sql: human opens only (SPEC 10)
          and contact_id is not null
          and (sequence is not null or message_id is not null)
          and occurred_at <= $to_at
          and occurred_at > least(
              $first_at,
              (select min(enrolled_at) from enrollments where status = 'active')
          )
        """,
        {"first_at": first_at, "to_at": last_at},
    )


def _precompute_audiences(
    con, groups: list[list[Occurrence]], compilation: Compilation
) -> set[str]:
    names = sorted({occ.sequence for group in groups for occ in group})
    batch = [
        {"name": name, "record": c.sequence.audience.record, "audience_sql": c.audience_sql}
        for name in names
        if (c := compilation.sequences[name]).audience_sql
        and not (reads := c.reads("audience")).sequences
        and not reads.now
        and not reads.activities  # the contact's activities as of each occurrence
    ]
    if not batch:
        return set()
    sql = sqlrun.render("tick/int_audience_static.sql", sequences=batch)
    try:
        con.execute(f"create or replace temp table tick_audience_static as {sql}")
    except duckdb.Error as exc:
        raise AudienceBatchFailed(str(exc)) from exc
    return {s["name"] for s in batch}


def advance_state(con, mark: Mark, to_at: dt.datetime) -> Mark:
    """Bring the run's window state (``tick_window_state`` and ``tick_contacts_window``) to
    ``to_at``; the run's new mark (instant, activities counted).

    Reads only the instant's slice of ``tick_window``; the merge is the one of
    ``_apply_activity_delta``, computed against the window state (every contact of the delta
    is a window contact) so that nothing here scans all contacts. ``contact_activity_state``
    and the watermark are written once, at the end of the run (:func:`flush_state`); the
    contacts changed meanwhile are noted in ``tick_state_touched``.
    """
    at, counted = mark
    if at is None or to_at <= at:
        return mark
    sql = sqlrun.render("tick/int_activity_delta.sql", from_at=True, source="tick_window")
    sqlrun.materialize(con, "activity_delta", sql, {"from_at": at, "to_at": to_at})
    delta = con.execute("select count(*), coalesce(sum(activities), 0) from activity_delta")
    changed, activities = delta.fetchone()
    if changed == 0:
        return to_at, counted + activities
    sqlrun.materialize(con, "tick_state_changed", sqlrun.render("tick/int_state_changed.sql"))
    con.execute("insert into tick_state_touched select contact_id from tick_state_changed")
    for table in ("tick_window_state", "tick_contacts_window"):
        con.execute(
            f"delete from {table} where contact_id in (select contact_id from tick_state_changed)"
        )
    con.execute(
        "insert into tick_window_state by name select * exclude (__new) from tick_state_changed"
    )
    sql = sqlrun.render(
        "tick/int_instant_contacts.sql",
        contacts="(select * from tick_window_contact_rows "
        "semi join tick_state_changed using (contact_id))",
        state="tick_window_state",
    )
    con.execute(f"insert into tick_contacts_window by name {sql}")
    return to_at, counted + activities


def flush_state(con, mark: Mark) -> None:
    """Write the run's state into ``contact_activity_state`` and the watermark, together
    (the caller's transaction): the rows of the contacts whose state changed during the run,
    then the mark. Until then the stored pair is the run's start, just as consistent: a run
    stopped before this rebuilds the window from there (the ledger, not the watermark, says
    which occurrences are done: ``pending.pending_occurrences``)."""
    sqlrun.materialize(
        con,
        "tick_state_changed",
        "select run_state.*, stored.contact_id is null as __new "
        "from tick_window_state as run_state "
        "semi join tick_state_touched using (contact_id) "
        "left join contact_activity_state as stored using (contact_id)",
    )
    sqlrun.execute(con, "tick/dml_apply_state_changes.sql")
    _set_watermark(con, *mark)
