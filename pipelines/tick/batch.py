"""Batched phases: the occurrences of one instant group, a layer of sequences at a time.

SPEC 6 processes the sequences of an instant in name order, each through exits → entries →
steps → completion, so a later sequence sees what an earlier one did. Only two things read
another sequence's enrolments: a condition reading ``contact.sequences``
(``CompiledSequence.reads().sequences``: it sees every sequence) and ``exclusive_with`` (it
sees the sequences named). Otherwise a sequence reads and writes only its own rows
(enrolments, manual requests, actions, ledger), so between two sequences neither of which
sees the other the order is invisible. :func:`layers` orders the group topologically by
"sees" (each pair that does keeps its name order, in different layers); within a layer no
sequence sees another, so its phases can run side by side. A layer of one runs
:func:`pipelines.tick.phases.process_occurrence`.

A layer of several runs each phase as ONE statement plus its DML (:func:`process_layer`):
each sequence's model (int_exits, int_entries, int_active_enrollments, int_step_actions,
int_completions) with its parameters inlined as literals (``sqlrun.inline``) is one branch
of a UNION ALL carrying ``sequence``, ``occurrence_on``, ``occurrence_at`` and
``decided_at``; the DML (``batched=True``) reads those columns, and the counts are grouped
by sequence. Steps and completion read their sequence's rows of the batched ``tick_active``.
A failure of a batched statement raises :class:`BatchFailed`: the group is rolled back and
redone one sequence at a time, which names the culprit (``SequenceFailed``) exactly as before.
"""

from __future__ import annotations

import time
from collections import Counter

import duckdb

from pipelines import sqlrun
from pipelines.compile.activity import ActivityFeature
from pipelines.compile.sequence import Compilation
from pipelines.tick.experiments import holdouts
from pipelines.tick.occurrences import Occurrence
from pipelines.tick.pause import NO_PAUSES, Pauses
from pipelines.tick.phases import (
    _Phase,
    completion_sql,
    count_steps,
    exits_sql,
    finish_occurrence,
    ledger_counts,
    paused_enrollments,
    start_occurrence,
    steps_sql,
)
from pipelines.tick.report import OccurrenceResult, RunReport

# Branches per UNION ALL statement: DuckDB's planning of a UNION ALL of int_entries branches
# grew faster than linearly (per branch: ~8 ms at 20-40 branches, ~13 ms at 80, ~53 ms at
# 172; 13 ms for one alone), so the phases built of branches (exits, steps, completion)
# write their table in statements of at most this many; the entries are one set-based
# statement for the whole part.
BATCH_SIZE = 32


def parts(layer: list[Occurrence]) -> list[list[Occurrence]]:
    """A layer in parts that each run as one batch (a part of a layer is a layer too): one
    occurrence date each (the batched entries evaluate ``current_date`` once)."""
    dates = sorted({occ.on for occ in layer})
    return [[occ for occ in layer if occ.on == on] for on in dates]


class BatchFailed(Exception):
    """A batched statement failed: redo the group one sequence at a time."""


def layers(group: list[Occurrence], compilation: Compilation) -> list[list[Occurrence]]:
    """The group (in name order) in layers: a sequence's layer is one past the latest layer
    of an earlier sequence it sees or that sees it, so every such pair keeps its name order
    across layers, and no two sequences of a layer see each other. Each layer keeps name
    order. A sequence reading ``contact.sequences`` sees every sequence; ``exclusive_with``
    sees the sequences it names. Linear in the group (plus the names named)."""
    level: dict[str, int] = {}
    latest = -1  # the latest layer of any earlier sequence
    latest_reader = -1  # ... of an earlier sequence reading `sequences`
    named_by: dict[str, int] = {}  # sequence -> latest layer of an earlier one naming it
    for occ in group:
        compiled = compilation.sequences[occ.sequence]
        if compiled.reads().sequences:
            mine = latest + 1
            latest_reader = max(latest_reader, mine)
        else:
            seen = [level[n] for n in compiled.sequence.exclusive_with if n in level]
            mine = 1 + max([latest_reader, named_by.get(occ.sequence, -1), *seen])
        level[occ.sequence] = mine
        latest = max(latest, mine)
        for name in compiled.sequence.exclusive_with:
            named_by[name] = max(named_by.get(name, -1), mine)
    out: list[list[Occurrence]] = [[] for _ in range(latest + 1)]
    for occ in group:
        out[level[occ.sequence]].append(occ)
    return out


def _batch(con, *statements: str) -> list:
    """Run ``statements``; the rows of the last. Any failure is a :class:`BatchFailed`."""
    try:
        for statement in statements[:-1]:
            con.execute(statement)
        return con.execute(statements[-1]).fetchall()
    except duckdb.Error as exc:
        raise BatchFailed(str(exc)) from exc


def _batch_call(fn, *args) -> None:
    """``fn(*args)``; any database failure is a :class:`BatchFailed`."""
    try:
        fn(*args)
    except duckdb.Error as exc:
        raise BatchFailed(str(exc)) from exc


def _union(table: str, branches: list[tuple[_Phase, str]]) -> list[str]:
    """``create temp table <table>`` as the UNION ALL (by name) of each phase's statement,
    its parameters inlined, tagged with its sequence and occurrence (and decided_at): the
    first BATCH_SIZE branches create it, each next BATCH_SIZE are inserted by name."""
    parts = []
    for phase, sql in branches:
        p = phase.params
        parts.append(
            f"select {sqlrun.value(p['sequence'])} as sequence, "
            f"{sqlrun.value(p['occurrence_on'])} as occurrence_on, "
            f"{sqlrun.value(p['occurrence_at'])} as occurrence_at, "
            f"{sqlrun.value(p['decided_at'])} as decided_at, *\n"
            f"from (\n{sqlrun.inline(sql, p)}\n)"
        )
    chunks = [parts[i : i + BATCH_SIZE] for i in range(0, len(parts), BATCH_SIZE)]
    bodies = ["\nunion all by name\n".join(chunk) for chunk in chunks]
    name = sqlrun.ident(table)
    return [f"create or replace temp table {name} as {bodies[0]}"] + [
        f"insert into {name} by name {body}" for body in bodies[1:]
    ]


def _own_rows(table: str, phase: _Phase) -> str:
    """A branch's view of a batched table: its sequence's rows, without the batch columns."""
    return (
        f"(select * exclude (sequence, occurrence_on, occurrence_at) "
        f"from {table} where sequence = {sqlrun.value(phase.params['sequence'])})"
    )


class _Clock:
    def __init__(self, report: RunReport) -> None:
        self.report, self.at = report, time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.report.seconds[phase] += now - self.at
        self.at = now


def process_layer(
    con, compilation: Compilation, layer: list[Occurrence], run_id: str, report: RunReport,
    precomputed: set[str], pauses: Pauses = NO_PAUSES,
) -> list[OccurrenceResult]:  # fmt: skip
    """The occurrences of a layer of independent sequences, each phase one batched statement
    (plus its DML) for all of them, in SPEC order."""
    clock = _Clock(report)
    phases = [
        start_occurrence(con, compilation.sequences[occ.sequence], occ, run_id, report, False)
        for occ in layer
    ]
    _batch(
        con,
        sqlrun.inline(
            "insert into occurrences (sequence, occurrence_on, occurrence_at, run_id) "
            "select unnest($names), $on, $at, $run_id",
            {
                "names": [o.sequence for o in layer],
                "on": layer[0].on,
                "at": layer[0].at,
                "run_id": run_id,
            },
        ),  # fmt: skip
    )
    by_name = {phase.params["sequence"]: phase for phase in phases}
    _batched_exits(con, phases, by_name)
    clock.lap("exits")
    entering = [p for p in phases if not pauses.stops_entries(p.occ)]  # SPEC 11
    _batched_entries(con, entering, by_name, precomputed)
    clock.lap("entries")
    live = _batched_steps(con, phases, by_name, pauses)
    clock.lap("steps")
    if live:
        _batched_completion(con, live, by_name)
        clock.lap("completions")
    results = [finish_occurrence(phase, False) for phase in phases]
    _batch(con, *ledger_counts(results))
    return results


def _batched_exits(con, phases: list[_Phase], by_name: dict[str, _Phase]) -> None:
    """Phase 1 for every sequence of the layer."""
    names = sqlrun.value(list(by_name))
    active = dict(
        _batch(
            con,
            "select sequence, count(*) from enrollments "
            f"where status = 'active' and list_contains({names}, sequence) group by sequence",
        )
    )
    branches = [
        (p, sql) for p in phases if (sql := exits_sql(p, active.get(p.params["sequence"], 0)))
    ]
    if not branches:
        return
    dml = sqlrun.render("tick/dml_exit_enrollments.sql", batched=True, source="tick_exits")
    counts = _batch(
        con,
        *_union("tick_exits", branches),
        dml,
        "select sequence, exit_reason, count(*) from tick_exits group by all",
    )
    for sequence, reason, n in counts:
        by_name[sequence].result.exits[reason] += n


def _batched_entries(con, phases, by_name, precomputed: set[str]) -> None:
    """Phase 2 for every sequence of the layer (one occurrence date): int_entries_batch.sql,
    one insert, one update."""
    seqs = []
    for phase in phases:
        compiled, occ = phase.compiled, phase.occ
        seq = compiled.sequence
        if not (seq.starts_on is None or occ.on >= seq.starts_on):
            continue
        seqs.append(
            {
                "name": seq.name,
                "audience_sql": compiled.audience_sql,
                "record": seq.audience.record,
                "exit_sql": compiled.exit_sql,
                "needs_email": sqlrun.value(bool(seq.has_email_steps)),
                "prevent_duplicate_emails": sqlrun.value(
                    bool(seq.audience.prevent_duplicate_emails)
                ),
                "exclusive_with": sqlrun.value(list(seq.exclusive_with)),
                "precomputed": seq.name in precomputed,
            }
        )
    if not seqs:
        return
    params = phases[0].params  # the layer's one instant and occurrence date
    suppressed = sqlrun.render("tick/int_suppressed_emails.sql")
    contact = sqlrun.render("tick/int_occurrence_contact.sql", with_sequences=False)
    features = {f for p in phases for f in p.compiled.activity_features("exit", "audience")}
    entries = sqlrun.render(
        "tick/int_entries_batch.sql",
        seqs=seqs,
        with_sequences=False,
        activity_features=sorted(features, key=ActivityFeature.sort_key),
    )
    inline = {k: params[k] for k in ("occurrence_at", "occurrence_on")}
    counts = _batch(
        con,
        "create or replace temp table tick_suppressed_emails as\n"
        + sqlrun.inline(f"with contact as (\n{contact}\n)\n{suppressed}", inline),
        "create or replace temp table tick_entries as\n" + sqlrun.inline(entries, inline),
        sqlrun.render(
            "tick/dml_insert_enrollments.sql",
            batched=True,
            holdouts=holdouts(p.compiled.sequence for p in phases),
        ),
        sqlrun.render("tick/dml_resolve_manual_requests.sql", batched=True),
        "select sequence, count(*) filter (where reason is null), "
        "list(reason) filter (where manual and reason is not null) "
        "from tick_entries group by sequence",
    )
    for sequence, n, rejected in counts:
        result = by_name[sequence].result
        result.entries = n
        result.rejected.update(Counter(rejected or []))


def _batched_steps(con, phases, by_name, pauses: Pauses) -> list[_Phase]:
    """Phase 3 for every sequence of the layer; the phases with an active enrolment."""
    p = phases[0].params  # the layer's one instant and occurrence date
    if pauses.any:
        _batch_call(paused_enrollments, con, list(by_name), p)
    active = sqlrun.inline(
        sqlrun.render("tick/int_active_enrollments_batch.sql", pauses=pauses.any),
        {"sequences": list(by_name), "occurrence_on": p["occurrence_on"],
         "occurrence_at": p["occurrence_at"]},
    )  # fmt: skip
    live = []
    for sequence, n, first in _batch(
        con,
        f"create or replace temp table tick_active as\n{active}",
        "select sequence, count(*), min(enrolled_at) from tick_active group by sequence",
    ):
        if n:
            by_name[sequence].params["min_enrolled_at"] = first
            live.append(by_name[sequence])
    live.sort(key=lambda p: p.params["sequence"])
    if not live:
        return live
    branches = [(p, steps_sql(p, _own_rows("tick_active", p))) for p in live]
    counts = _batch(
        con,
        *_union("tick_actions", branches),
        sqlrun.render("tick/dml_insert_actions.sql", batched=True),
        "select sequence, step, status, count(*) from tick_actions group by all",
    )
    for sequence, step, status, n in counts:
        count_steps(by_name[sequence].result, step, status, n)
    return live


def _batched_completion(con, live, by_name) -> None:
    """Phase 4 for every sequence of the layer with an active enrolment."""
    branches = [(p, completion_sql(p, _own_rows("tick_active", p))) for p in live]
    source = (
        "(select sequence, occurrence_on, occurrence_at, contact_id, "
        "'completed' as exit_reason from tick_completions)"
    )
    counts = _batch(
        con,
        *_union("tick_completions", branches),
        sqlrun.render("tick/dml_exit_enrollments.sql", batched=True, source=source),
        "select sequence, count(*) from tick_completions group by sequence",
    )
    for sequence, n in counts:
        by_name[sequence].result.exits["completed"] += n
