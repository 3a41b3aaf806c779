"""Batched phases: the occurrences of one instant group, a layer of sequences at a time.

SPEC 6 processes the sequences of an instant in name order, each through exits → entries →
steps → completion, so a later sequence sees what an earlier one did. Only two things read
another sequence's enrolments: a condition reading ``contact.sequences``
(``CompiledSequence.reads().sequences``) and ``exclusive_with``. Every other sequence reads
and writes only its own rows (enrolments, manual requests, actions, ledger), so for a run of
such sequences the order is invisible. :func:`layers` cuts the group, in name order, into
maximal runs of these independent sequences; a dependent sequence is a layer on its own,
between them, so every effect it sees (or that sees it) comes in the same order as one by
one. A layer of one runs :func:`pipelines.tick.phases.process_occurrence`.

A layer of several runs its entries as ONE statement (:func:`process_layer`): each
sequence's int_entries.sql with its parameters inlined as literals (``sqlrun.inline``) is one
branch of a UNION ALL carrying ``sequence``, ``occurrence_on`` and ``occurrence_at``, and the
DML (``batched=True``) reads those columns. A failure of a batched statement raises
:class:`BatchFailed`: the group is rolled back and redone one sequence at a time, which names
the culprit (``SequenceFailed``) exactly as before.
"""

from __future__ import annotations

import time
from collections import Counter

import duckdb

from pipelines import sqlrun
from pipelines.compile.sequence import Compilation, CompiledSequence
from pipelines.tick.occurrences import Occurrence
from pipelines.tick.phases import (
    _exits,
    entries_sql,
    start_occurrence,
    steps_and_completion,
)
from pipelines.tick.report import OccurrenceResult, RunReport, SequenceFailed


class BatchFailed(Exception):
    """A batched statement failed: redo the group one sequence at a time."""


def dependent(compiled: CompiledSequence) -> bool:
    """The sequence sees other sequences' enrolments: ``contact.sequences`` or
    ``exclusive_with``."""
    return compiled.reads().sequences or bool(compiled.sequence.exclusive_with)


def layers(group: list[Occurrence], compilation: Compilation) -> list[list[Occurrence]]:
    """The group (in name order) as maximal runs of independent sequences; a dependent
    sequence alone. Concatenated, the layers are the group in its order."""
    out: list[list[Occurrence]] = []
    run: list[Occurrence] = []
    for occ in group:
        if dependent(compilation.sequences[occ.sequence]):
            if run:
                out.append(run)
                run = []
            out.append([occ])
        else:
            run.append(occ)
    if run:
        out.append(run)
    return out


def _per_sequence(occ: Occurrence, call, *args):
    try:
        return call(*args)
    except duckdb.Error as exc:
        raise SequenceFailed(occ.sequence, occ.on, exc) from exc


def process_layer(
    con, compilation: Compilation, layer: list[Occurrence], run_id: str, report: RunReport,
    precomputed: set[str],
) -> list[OccurrenceResult]:  # fmt: skip
    """The occurrences of a layer of independent sequences: exits one by one, entries in one
    statement, then steps and completion one by one."""
    clock = time.perf_counter()
    phases = []
    for occ in layer:
        phase = _per_sequence(
            occ, start_occurrence, con, compilation.sequences[occ.sequence], occ, run_id, report
        )
        _per_sequence(occ, _exits, phase)
        phases.append(phase)
    now = time.perf_counter()
    report.seconds["exits"] += now - clock
    clock = now
    _batched_entries(con, phases, precomputed)
    now = time.perf_counter()
    report.seconds["entries"] += now - clock
    results = []
    for phase in phases:
        phase.clock = time.perf_counter()
        results.append(_per_sequence(phase.occ, steps_and_completion, phase))
    return results


def _batched_entries(con, phases, precomputed: set[str]) -> None:
    """Phase 2 for every sequence of the layer: one tick_entries, one insert, one update."""
    branches = []
    for phase in phases:
        sql = entries_sql(phase, precomputed)
        if sql is None:
            continue
        p = phase.params
        branches.append(
            f"select {sqlrun.value(p['sequence'])} as sequence, "
            f"{sqlrun.value(p['occurrence_on'])} as occurrence_on, "
            f"{sqlrun.value(p['occurrence_at'])} as occurrence_at, *\n"
            f"from (\n{sqlrun.inline(sql, p)}\n)"
        )
    if not branches:
        return
    try:
        sqlrun.materialize(con, "tick_entries", "\nunion all\n".join(branches))
        sqlrun.execute(con, "tick/dml_insert_enrollments.sql", batched=True)
        sqlrun.execute(con, "tick/dml_resolve_manual_requests.sql", batched=True)
        counts = con.execute(
            "select sequence, count(*) filter (where reason is null), "
            "list(reason) filter (where manual and reason is not null) "
            "from tick_entries group by sequence"
        ).fetchall()
    except duckdb.Error as exc:
        raise BatchFailed(str(exc)) from exc
    by_sequence = {phase.params["sequence"]: phase.result for phase in phases}
    for sequence, entries, rejected in counts:
        result = by_sequence[sequence]
        result.entries = entries
        result.rejected.update(Counter(rejected or []))
