"""One occurrence of one sequence, the models of ``sql/tick/`` in SPEC order:
exits (int_exits) → entries (int_entries) → steps (int_active_enrollments, int_step_actions,
int_enrollment_engagement) → completion (int_completions). Every decision is one SQL
statement over all contacts/enrolments of the sequence.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import duckdb

from pipelines import sqlrun
from pipelines.compile.sequence import CompiledSequence
from pipelines.instants import utc_now
from pipelines.tick.experiments import holdouts, thresholds
from pipelines.tick.occurrences import Occurrence
from pipelines.tick.pause import NO_PAUSES, Pauses
from pipelines.tick.pause import paused_now as show_paused
from pipelines.tick.report import OccurrenceResult, RunReport


@dataclass
class _Phase:
    """What the phases of one occurrence share: its parameters, its result, the clock."""

    con: duckdb.DuckDBPyConnection
    compiled: CompiledSequence
    occ: Occurrence
    report: RunReport
    params: dict[str, Any]
    result: OccurrenceResult
    clock: float = field(default_factory=time.perf_counter)

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.report.seconds[phase] += now - self.clock
        self.clock = now


def start_occurrence(
    con, compiled: CompiledSequence, occ: Occurrence, run_id: str, report: RunReport,
    record: bool = True,
) -> _Phase:  # fmt: skip
    """Record the occurrence in the ledger (unless ``record`` is off: a batched layer records
    its occurrences in one statement); the parameters its phases share."""
    seq = compiled.sequence
    params = {
        "sequence": seq.name,
        "occurrence_at": occ.at,
        "occurrence_on": occ.on,
        "exclusive_with": list(seq.exclusive_with),
        "step_ids": [s.id for s in seq.steps],
        "decided_at": utc_now(),
        "run_id": run_id,
    }
    if record:
        con.execute(
            "insert into occurrences (sequence, occurrence_on, occurrence_at, run_id) "
            "values (?,?,?,?)",
            [seq.name, occ.on, occ.at, run_id],
        )
    return _Phase(con, compiled, occ, report, params, OccurrenceResult(occ))


def process_occurrence(
    con, compiled: CompiledSequence, occ: Occurrence, run_id: str, report: RunReport,
    precomputed: set[str], pauses: Pauses = NO_PAUSES,
) -> OccurrenceResult:  # fmt: skip
    """Record the occurrence in the ledger, run its four phases, record its counts."""
    phase = start_occurrence(con, compiled, occ, run_id, report)
    _exits(phase)
    phase.lap("exits")
    if not pauses.stops_entries(occ):  # a paused sequence takes no entries (SPEC 11)
        _entries(phase, precomputed)
    phase.lap("entries")
    return steps_and_completion(phase, pauses)


def steps_and_completion(phase: _Phase, pauses: Pauses = NO_PAUSES) -> OccurrenceResult:
    """Phases 3 and 4, then the ledger row's counts."""
    if not _steps(phase, pauses):
        phase.lap("steps")
        return finish_occurrence(phase)
    phase.lap("steps")
    _completion(phase)
    phase.lap("completions")
    return finish_occurrence(phase)


def exits_sql(phase: _Phase, any_active: int) -> str | None:
    """The exits of the occurrence (int_exits.sql); None when nothing can exit (nothing
    active, or every exit reason off: saves the fixed cost of a query)."""
    compiled = phase.compiled
    seq, exit_sql = compiled.sequence, compiled.exit_sql
    exit_branches = any_active and (
        seq.exit.unsubscribed or seq.exit.bounced or seq.exit.replied or exit_sql is not None
    )
    if not exit_branches:
        return None
    return sqlrun.render(
        "tick/int_exits.sql",
        exit=seq.exit,
        exit_sql=exit_sql,
        exit_branches=exit_branches,
        with_sequences=compiled.reads("exit").sequences,
        activity_features=compiled.activity_features("exit"),
    )


def _exits(phase: _Phase) -> None:
    """1. exits."""
    con, params = phase.con, phase.params
    any_active = con.execute(
        "select count(*) from enrollments where sequence = ? and status = 'active'",
        [params["sequence"]],
    ).fetchone()[0]
    sql = exits_sql(phase, any_active)
    if sql is not None:
        sqlrun.materialize(con, "tick_exits", sql, params)
        phase.result.exits.update(
            dict(con.execute("select exit_reason, count(*) from tick_exits group by 1").fetchall())
        )
        sqlrun.execute(con, "tick/dml_exit_enrollments.sql", params, source="tick_exits")


def entries_sql(phase: _Phase, precomputed: set[str]) -> str | None:
    """The entry candidates of the occurrence (int_entries.sql); None before ``starts_on``."""
    compiled = phase.compiled
    seq = compiled.sequence
    if not (seq.starts_on is None or phase.occ.on >= seq.starts_on):
        return None
    return sqlrun.render(
        "tick/int_entries.sql",
        audience_sql=compiled.audience_sql,
        record=seq.audience.record,
        exit_sql=compiled.exit_sql,
        needs_email=seq.has_email_steps,
        prevent_duplicate_emails=seq.audience.prevent_duplicate_emails,
        exclusive_with=bool(seq.exclusive_with),
        precomputed=seq.name in precomputed,
        with_sequences=compiled.reads("exit", "audience").sequences,
        activity_features=compiled.activity_features("exit", "audience"),
    )


def _entries(phase: _Phase, precomputed: set[str]) -> None:
    """2. entries (from ``starts_on`` on)."""
    con, params, result = phase.con, phase.params, phase.result
    sql = entries_sql(phase, precomputed)
    if sql is None:
        return
    sqlrun.materialize(con, "tick_entries", sql, params)
    sqlrun.execute(
        con,
        "tick/dml_insert_enrollments.sql",
        params,
        holdouts=holdouts([phase.compiled.sequence]),
    )
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


def steps_sql(phase: _Phase, active: str = "tick_active") -> str:
    """The step decisions of the occurrence (int_step_actions.sql) over ``active``."""
    compiled = phase.compiled
    seq = compiled.sequence
    steps = [
        {"id": s.id, "index": i, "day": s.day, "action": s.action, "sql": compiled.step_sql(s.id),
         "variants": thresholds(s.variants) if s.variants else None}
        for i, s in enumerate(seq.steps)
    ]  # fmt: skip
    return sqlrun.render(
        "tick/int_step_actions.sql",
        steps=steps,
        smart=seq.type == "smart",
        interval_days=seq.interval_days,
        duration_days=seq.duration_days,
        uses_enrollment=compiled.reads("step").enrollment,
        with_sequences=compiled.reads("step").sequences,
        activity_features=compiled.activity_features("step"),
        active=active,
    )


def count_steps(result: OccurrenceResult, step: str, status: str, n: int) -> None:
    result.steps.setdefault(step, Counter())[status] += n
    result.actions[status] += n


def paused_enrollments(con, sequences: list[str], params: dict[str, Any]) -> None:
    """``tick_paused`` (int_paused_enrollments.sql) for ``sequences`` at the occurrence of
    ``params``, and their ``paused_until`` shown (:mod:`pipelines.tick.pause`)."""
    sql = sqlrun.render("tick/int_paused_enrollments.sql")
    sqlrun.materialize(
        con, "tick_paused", sql, {"sequences": sequences, "occurrence_on": params["occurrence_on"]}
    )
    show_paused(con)


def _steps(phase: _Phase, pauses: Pauses = NO_PAUSES) -> bool:
    """3. steps; False when no enrolment is active (then there is nothing to complete)."""
    con, params, result = phase.con, phase.params, phase.result
    if pauses.any:
        paused_enrollments(con, [params["sequence"]], params)
    active_sql = sqlrun.render("tick/int_active_enrollments.sql", pauses=pauses.any)
    sqlrun.materialize(con, "tick_active", active_sql, params)
    active, params["min_enrolled_at"] = con.execute(
        "select count(*), min(enrolled_at) from tick_active"
    ).fetchone()
    if active == 0:
        return False
    sqlrun.materialize(con, "tick_actions", steps_sql(phase), params)
    sqlrun.execute(con, "tick/dml_insert_actions.sql", params)
    for step, status, n in con.execute(
        "select step, status, count(*) from tick_actions group by all"
    ).fetchall():
        count_steps(result, step, status, n)
    return True


def completion_sql(phase: _Phase, active: str = "tick_active") -> str:
    """The enrolments completing at the occurrence (int_completions.sql) among ``active``."""
    seq = phase.compiled.sequence
    return sqlrun.render(
        "tick/int_completions.sql",
        smart=seq.type == "smart",
        duration_days=seq.duration_days,
        all_steps_done=seq.exit.all_steps_done,
        last_day=max((s.day or 0) for s in seq.steps),
        active=active,
    )


def _completion(phase: _Phase) -> None:
    """4. completion."""
    con, params = phase.con, phase.params
    sqlrun.materialize(con, "tick_completions", completion_sql(phase), params)
    sqlrun.execute(
        con,
        "tick/dml_exit_enrollments.sql",
        params,
        source="(select contact_id, 'completed' as exit_reason from tick_completions)",
    )
    completed = con.execute("select count(*) from tick_completions").fetchone()[0]
    phase.result.exits["completed"] += completed


def finish_occurrence(phase: _Phase, record: bool = True) -> OccurrenceResult:
    """Record the occurrence's counts in the ledger row (unless ``record`` is off: a batched
    layer records them in one statement, :func:`ledger_counts`)."""
    result = phase.result
    result.exits = +result.exits
    if record:
        for statement in ledger_counts([result]):
            phase.con.execute(statement)
    return result


def ledger_counts(results: list[OccurrenceResult]) -> list[str]:
    """The statement writing the counts of ``results`` into their ledger rows."""
    rows = ", ".join(
        "({}, {}, {}, {}, {}, {})".format(
            *map(
                sqlrun.value,
                [
                    r.occurrence.sequence,
                    r.occurrence.on,
                    r.entries,
                    sum(r.exits.values()),
                    r.actions["due"],
                    r.actions["skipped"],
                ],
            )
        )
        for r in results
    )
    return [
        "update occurrences set entries = c.entries, exits = c.exits, due = c.due, "
        "skipped = c.skipped "
        f"from (values {rows}) as c(sequence, occurrence_on, entries, exits, due, skipped) "
        "where occurrences.sequence = c.sequence and occurrences.occurrence_on = c.occurrence_on"
    ]
