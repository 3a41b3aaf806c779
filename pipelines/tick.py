"""The tick (SPEC 6): process every due occurrence of every sequence, set-based.

``run_tick(con, ws, compilation, as_of)`` processes every occurrence with instant ≤ ``as_of``
not processed before (ledger ``occurrences``), oldest first, ties by sequence name.
Occurrences sharing an instant form a group that commits atomically; within a group the
sequences run in name order, so a later sequence sees the entries of an earlier one.

Each occurrence of sequence S at instant t runs the models of ``sql/tick/``, in SPEC order:
exits (int_exits) → entries (int_entries) → steps (int_active_enrollments, int_step_actions,
int_enrollment_engagement) → completion (int_completions). Every decision is one SQL
statement over all contacts/enrolments; Python loops only over instants and sequences.

Incremental state. The activity-derived contact properties live in ``contact_activity_state``
as of ``tick_state.properties_as_of`` (the latest instant processed, W). A run reads the
activities after W once (``tick_window``); before the group at instant t, only the window's
activities in (W, t] are aggregated and merged (int_activity_delta), so a daily run costs
about the day's new activity plus the enrolments involved, not the history.

Per-run work (``_start_run``). Contacts without activity in the run's window have the same
row at every instant of the run: their ``contact`` rows are materialized once
(``tick_contacts_static``), and the audience of every sequence whose audience reads neither
``now()`` nor ``sequences`` is evaluated over them once (``tick_audience_static``). Only the
window's contacts (``tick_contacts_window``) are rebuilt per instant, and evaluated per
occurrence. Per occurrence, what remains scales with the sequence's enrolments (plus one
hash-join probe over the contacts per phase).
The state carries how many activities (occurred_at ≤ W) it was built from; when a run finds
a different count — activities ingested late, with an occurred_at at or before an instant
already processed — it rebuilds the state from the full history once. Decisions already made
at those earlier instants are NOT re-decided (trade-off: replays stay stable and cheap); the
late activities count from the next occurrence on.

Ordering rule: occurrences are processed in global instant order and never before W. A
sequence first seen (or rescheduled) after W starts with its first occurrence at or after W;
``starts_on`` catches up from there only when no later instant has been processed yet.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import duckdb

from pipelines import sqlrun
from pipelines.db import transaction
from pipelines.errors import ConfigError, Location
from pipelines.instants import to_naive_utc, utc_now
from pipelines.occurrences import Occurrence, first_occurrence, occurrences_between
from pipelines.workspace import Workspace


@dataclass
class OccurrenceResult:
    """What one occurrence decided."""

    occurrence: Occurrence
    entries: int = 0
    exits: Counter = field(default_factory=Counter)
    actions: Counter = field(default_factory=Counter)
    steps: dict[str, Counter] = field(default_factory=dict)
    rejected: Counter = field(default_factory=Counter)


@dataclass
class RunReport:
    """What ``run_tick`` did; ``stats`` is what the ``runs`` row records."""

    run_id: str
    as_of: dt.datetime
    occurrences: list[OccurrenceResult] = field(default_factory=list)
    seconds: Counter = field(default_factory=Counter)

    @property
    def entries(self) -> int:
        return sum(r.entries for r in self.occurrences)

    @property
    def exits(self) -> Counter:
        return sum((r.exits for r in self.occurrences), Counter())

    @property
    def actions(self) -> Counter:
        return sum((r.actions for r in self.occurrences), Counter())

    def stats(self) -> dict[str, Any]:
        return {
            "occurrences": len(self.occurrences),
            "processed": [
                {"sequence": r.occurrence.sequence, "on": r.occurrence.on.isoformat()}
                for r in self.occurrences
            ],
            "entries": self.entries,
            "exits": dict(self.exits),
            "actions": dict(self.actions),
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
        }


# --- state --------------------------------------------------------------------------------


def _watermark(con) -> tuple[dt.datetime | None, int]:
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

    ``source`` is ``activities`` or the run's ``tick_window`` (see ``_start_run``).
    """
    sql = sqlrun.render("tick/int_activity_delta.sql", from_at=from_at is not None, source=source)
    sqlrun.materialize(con, "activity_delta", sql, {"from_at": from_at, "to_at": to_at})
    sqlrun.execute(con, "tick/dml_upsert_activity_state.sql")
    return con.execute("select coalesce(sum(activities), 0) from activity_delta").fetchone()[0]


def _check_late_activities(con) -> bool:
    """Rebuild the state when the activities at or before W changed since it was built."""
    at, counted = _watermark(con)
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


def _start_run(con, groups: list[list[Occurrence]], compilation) -> set[str]:
    """Per-run temp tables, so that each instant costs about its own changes.

    - ``tick_window``: the activities in (W, last instant], read once from ``activities``
      (a first run builds the state up to its first instant from the whole history first);
    - ``tick_contacts_static``: the contact rows (int_instant_contacts) of every contact
      WITHOUT activity in the window: their state is that of W for the whole run;
    - ``tick_window_contact_rows`` / ``tick_window_state``: the contacts with activity in
      the window and their state, which ``_advance_state`` moves instant by instant;
    - ``instant_contacts``: the view over the static rows and the instant's window rows;
    - ``tick_email_activities``: the opens/clicks that can belong to an enrolment's email;
    - ``tick_audience_static``: the static contacts in the audience of every sequence whose
      audience reads neither ``now()`` nor ``sequences`` (``CompiledSequence.reads``; the
      SQL is int_audience_static.sql).

    Returns the names of those sequences (their entries read ``tick_audience_static``).
    """
    first_at, last_at = groups[0][0].at, groups[-1][0].at
    at, counted = _watermark(con)
    if at is None:
        _set_watermark(con, first_at, _apply_activity_delta(con, None, first_at))
        at = first_at
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
    if any(c.reads_enrollment for c in compilation.sequences.values()):
        # an open/click counts only after the enrolment: the earliest active one bounds it
        sqlrun.run(
            con,
            """
            create or replace temp table tick_email_activities as
            select contact_id, type, sequence, step, message_id, occurred_at
            from activities
            where type in ('email_opened', 'email_clicked')
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
    return _precompute_audiences(con, groups, compilation)


def _precompute_audiences(con, groups: list[list[Occurrence]], compilation) -> set[str]:
    names = sorted({occ.sequence for group in groups for occ in group})
    batch = [
        {"name": name, "record": c.sequence.audience.record, "audience_sql": c.audience_sql}
        for name in names
        if (c := compilation.sequences[name]).audience_sql
        and not (reads := c.reads("audience")).sequences
        and not reads.now
    ]
    if not batch:
        return set()
    sql = sqlrun.render("tick/int_audience_static.sql", sequences=batch)
    con.execute(f"create or replace temp table tick_audience_static as {sql}")
    return {s["name"] for s in batch}


def _advance_state(con, to_at: dt.datetime) -> None:
    """Bring contact_activity_state (and the run's window rows) to ``to_at``.

    Reads only the instant's slice of ``tick_window``; the merge below is the one of
    ``_apply_activity_delta``, computed against the window state (every contact of the delta
    is a window contact) so that nothing here scans all contacts.
    """
    at, counted = _watermark(con)
    if at is None or to_at <= at:
        return
    sql = sqlrun.render("tick/int_activity_delta.sql", from_at=True, source="tick_window")
    sqlrun.materialize(con, "activity_delta", sql, {"from_at": at, "to_at": to_at})
    delta = con.execute("select count(*), coalesce(sum(activities), 0) from activity_delta")
    changed, activities = delta.fetchone()
    _set_watermark(con, to_at, counted + activities)
    if changed == 0:
        return
    sqlrun.materialize(con, "tick_state_changed", sqlrun.render("tick/int_state_changed.sql"))
    sqlrun.execute(con, "tick/dml_apply_state_changes.sql")
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


# --- which occurrences ------------------------------------------------------------------


def _register_sequences(con, compilation, as_of: dt.datetime) -> dict[str, dt.date]:
    """First occurrence date of every compiled sequence; newly seen ones are recorded."""
    known = dict(con.execute("select sequence, first_occurrence_on from sequence_state").fetchall())
    new = []
    for name, compiled in compilation.sequences.items():
        if name not in known:
            seq = compiled.sequence
            known[name] = first_occurrence(seq.schedule, seq.starts_on, as_of)
            new.append((name, as_of, known[name]))
    if new:
        con.executemany(
            "insert into sequence_state (sequence, first_seen_at, first_occurrence_on) "
            "values (?, ?, ?)",
            new,
        )
    return known


def _pending_occurrences(con, compilation, starts: dict[str, dt.date], until: dt.datetime):
    """Unprocessed occurrences with W ≤ instant ≤ until, sorted by (instant, sequence)."""
    last_done = dict(
        con.execute("select sequence, max(occurrence_on) from occurrences group by 1").fetchall()
    )
    watermark, _ = _watermark(con)
    found: list[Occurrence] = []
    for name, compiled in compilation.sequences.items():
        first = starts[name]
        if name in last_done:
            first = max(first, last_done[name] + dt.timedelta(days=1))
        found += occurrences_between(name, compiled.sequence.schedule, first, watermark, until)
    return sorted(found, key=lambda o: (o.at, o.sequence))


def _group_by_instant(occurrences: list[Occurrence]) -> list[list[Occurrence]]:
    groups: dict[dt.datetime, list[Occurrence]] = defaultdict(list)
    for occ in occurrences:
        groups[occ.at].append(occ)
    return [groups[at] for at in sorted(groups)]


# --- one occurrence -----------------------------------------------------------------------


def _process_occurrence(
    con, compiled, occ: Occurrence, run_id: str, report: RunReport, precomputed: set[str]
):
    seq = compiled.sequence
    result = OccurrenceResult(occ)
    steps = [
        {"id": s.id, "index": i, "day": s.day, "action": s.action, "sql": compiled.step_sql(s.id)}
        for i, s in enumerate(seq.steps)
    ]
    exit_sql = compiled.exit_sql
    audience_sql = compiled.audience_sql
    params = {
        "sequence": seq.name,
        "occurrence_at": occ.at,
        "occurrence_on": occ.on,
        "exclusive_with": list(seq.exclusive_with),
        "step_ids": [s.id for s in seq.steps],
        "decided_at": utc_now(),
        "run_id": run_id,
    }
    con.execute(
        "insert into occurrences (sequence, occurrence_on, occurrence_at, run_id) values (?,?,?,?)",
        [seq.name, occ.on, occ.at, run_id],
    )
    clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        report.seconds[phase] += now - clock
        clock = now

    # 1. exits (skipped when nothing is active: saves the fixed cost of a query)
    any_active = con.execute(
        "select count(*) from enrollments where sequence = ? and status = 'active'", [seq.name]
    ).fetchone()[0]
    exit_branches = any_active and (
        seq.exit.unsubscribed or seq.exit.bounced or seq.exit.replied or exit_sql is not None
    )
    sql = sqlrun.render(
        "tick/int_exits.sql",
        exit=seq.exit,
        exit_sql=exit_sql,
        exit_branches=exit_branches,
        with_sequences=compiled.reads("exit").sequences,
    )
    if exit_branches:
        sqlrun.materialize(con, "tick_exits", sql, params)
        result.exits.update(
            dict(con.execute("select exit_reason, count(*) from tick_exits group by 1").fetchall())
        )
        sqlrun.execute(con, "tick/dml_exit_enrollments.sql", params, source="tick_exits")
    lap("exits")

    # 2. entries
    if seq.starts_on is None or occ.on >= seq.starts_on:
        sql = sqlrun.render(
            "tick/int_entries.sql",
            audience_sql=audience_sql,
            record=seq.audience.record,
            exit_sql=exit_sql,
            needs_email=seq.has_email_steps,
            prevent_duplicate_emails=seq.audience.prevent_duplicate_emails,
            exclusive_with=bool(seq.exclusive_with),
            precomputed=seq.name in precomputed,
            with_sequences=compiled.reads("exit", "audience").sequences,
        )
        sqlrun.materialize(con, "tick_entries", sql, params)
        sqlrun.execute(con, "tick/dml_insert_enrollments.sql", params)
        sqlrun.execute(con, "tick/dml_resolve_manual_requests.sql", params)
        result.entries = con.execute(
            "select count(*) from tick_entries where reason is null"
        ).fetchone()[0]
        result.rejected.update(
            dict(
                con.execute(
                    "select reason, count(*) from tick_entries where manual and reason is not null "
                    "group by 1"
                ).fetchall()
            )
        )
    lap("entries")

    # 3. steps
    sqlrun.materialize(con, "tick_active", sqlrun.render("tick/int_active_enrollments.sql"), params)
    active, params["min_enrolled_at"] = con.execute(
        "select count(*), min(enrolled_at) from tick_active"
    ).fetchone()
    if active == 0:
        lap("steps")
        return _finish_occurrence(con, seq, occ, result)
    smart = seq.type == "smart"
    sql = sqlrun.render(
        "tick/int_step_actions.sql",
        steps=steps,
        smart=smart,
        interval_days=seq.interval_days,
        duration_days=seq.duration_days,
        uses_enrollment=compiled.reads("step").enrollment,
        with_sequences=compiled.reads("step").sequences,
    )
    sqlrun.materialize(con, "tick_actions", sql, params)
    sqlrun.execute(con, "tick/dml_insert_actions.sql", params)
    for step, status, n in con.execute(
        "select step, status, count(*) from tick_actions group by all"
    ).fetchall():
        result.steps.setdefault(step, Counter())[status] += n
        result.actions[status] += n
    lap("steps")

    # 4. completion
    sql = sqlrun.render(
        "tick/int_completions.sql",
        smart=smart,
        duration_days=seq.duration_days,
        all_steps_done=seq.exit.all_steps_done,
        last_day=max((s.day or 0) for s in seq.steps),
    )
    sqlrun.materialize(con, "tick_completions", sql, params)
    sqlrun.execute(
        con,
        "tick/dml_exit_enrollments.sql",
        params,
        source="(select contact_id, 'completed' as exit_reason from tick_completions)",
    )
    result.exits["completed"] += con.execute("select count(*) from tick_completions").fetchone()[0]
    lap("completions")
    return _finish_occurrence(con, seq, occ, result)


def _finish_occurrence(con, seq, occ: Occurrence, result: OccurrenceResult) -> OccurrenceResult:
    """Record the occurrence's counts in the ledger row."""
    result.exits = +result.exits
    con.execute(
        "update occurrences set entries = ?, exits = ?, due = ?, skipped = ? "
        "where sequence = ? and occurrence_on = ?",
        [
            result.entries,
            sum(result.exits.values()),
            result.actions["due"],
            result.actions["skipped"],
            seq.name,
            occ.on,
        ],
    )
    return result


# --- runs ---------------------------------------------------------------------------------


def _process_group(
    con, compilation, group: list[Occurrence], run_id: str, report: RunReport, run: dict
):
    """One instant; the run's first instant sets up the run (``_start_run``) in ``run``."""
    clock = time.perf_counter()
    if "groups" in run:
        run["precomputed"] = _start_run(con, run.pop("groups"), compilation)
    _advance_state(con, group[0].at)
    report.seconds["state"] += time.perf_counter() - clock
    return [
        _process_occurrence(
            con, compilation.sequences[occ.sequence], occ, run_id, report, run["precomputed"]
        )
        for occ in group
    ]


def run_tick(con: duckdb.DuckDBPyConnection, ws: Workspace, compilation, as_of: dt.datetime):
    """Process every unprocessed occurrence with instant ≤ ``as_of``; record a ``runs`` row.

    Each group of occurrences sharing an instant commits atomically, so a crash leaves the
    ledger consistent and the next run resumes where this one stopped. Re-running the same
    ``as_of`` finds nothing to do and changes nothing but the ``runs`` log.
    """
    as_of = to_naive_utc(as_of)
    report = RunReport(run_id=uuid.uuid4().hex, as_of=as_of)
    started = utc_now()
    with transaction(con):
        starts = _register_sequences(con, compilation, as_of)
        _check_late_activities(con)
    groups = _group_by_instant(_pending_occurrences(con, compilation, starts, as_of))
    run = {"groups": groups}
    for group in groups:
        with transaction(con):
            report.occurrences += _process_group(
                con, compilation, group, report.run_id, report, run
            )
    con.execute(
        "insert into runs (run_id, kind, as_of, started_at, finished_at, stats) "
        "values (?, 'tick', ?, ?, ?, ?)",
        [report.run_id, as_of, started, utc_now(), json.dumps(report.stats())],
    )
    return report


def preview_occurrence(
    con: duckdb.DuckDBPyConnection, ws: Workspace, compilation, sequence: str, as_of: dt.datetime
) -> dict[str, Any]:
    """What the NEXT occurrence of ``sequence`` would decide, without writing anything.

    The next occurrence is the sequence's first unprocessed one: at or before ``as_of`` when
    runs are behind, else the first after ``as_of`` (a new sequence starts as ``run_tick``
    at ``as_of`` would start it). Every pending occurrence of every sequence up to and
    including it is processed exactly as a tick would, inside one transaction that is then
    rolled back.
    """
    if sequence not in compilation.sequences:
        raise ConfigError("unknown or invalid sequence", Location(sequence=sequence))
    as_of = to_naive_utc(as_of)
    report = RunReport(run_id="preview", as_of=as_of)
    con.execute("begin transaction")
    try:
        starts = _register_sequences(con, compilation, as_of)
        _check_late_activities(con)
        horizon = as_of + dt.timedelta(days=14)
        pending = _pending_occurrences(con, compilation, starts, horizon)
        target = next((o for o in pending if o.sequence == sequence), None)
        if target is None:
            return {"sequence": sequence, "occurrence_on": None, "occurrence_at": None}
        pending = [o for o in pending if (o.at, o.sequence) <= (target.at, target.sequence)]
        result = None
        groups = _group_by_instant(pending)
        run = {"groups": groups}
        for group in groups:
            for r in _process_group(con, compilation, group, "preview", report, run):
                if r.occurrence == target:
                    result = r
    finally:
        con.execute("rollback")
    return {
        "sequence": sequence,
        "occurrence_on": target.on,
        "occurrence_at": target.at,
        "entries": result.entries,
        "manual_rejected": dict(result.rejected),
        "exits": dict(result.exits),
        "steps": {step: dict(c) for step, c in result.steps.items()},
    }
