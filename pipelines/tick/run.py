"""The tick (SPEC 6): process every due occurrence of every sequence, set-based.

``run_tick(con, ws, compilation, as_of)`` processes every occurrence with instant ≤ ``as_of``
not processed before (ledger ``occurrences``, :mod:`pipelines.tick.pending`), oldest first,
ties by sequence name. Occurrences sharing an instant form a group that commits atomically;
within a group the sequences run in name order, so a later sequence sees the entries of an
earlier one. Before each group the incremental activity state moves to the group's instant
(:mod:`pipelines.tick.state`); the group then runs a layer at a time
(:mod:`pipelines.tick.batch`, topologically by which sequence sees which one's enrolments):
the sequences of a layer share one statement per phase (:mod:`pipelines.tick.phases` holds
the phases, and runs a layer of one).

A sequence whose SQL fails at run time (:class:`SequenceFailed`: a condition that fails
only on data) rolls its group back; the group is redone without it, and it is left out of
the rest of the run. Its error is in the report and the ``runs`` row; the others commit.
A batched statement that fails (:class:`BatchFailed`) rolls the group back too; it is redone
one sequence at a time, which names the culprit, and batching resumes once it is left out.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb

from pipelines.compile.sequence import Compilation
from pipelines.db import transaction
from pipelines.errors import ConfigError, Location
from pipelines.instants import to_naive_utc, utc_now
from pipelines.progress import Progress
from pipelines.tick.batch import BatchFailed, layers, parts, process_layer
from pipelines.tick.occurrences import Occurrence
from pipelines.tick.pause import NO_PAUSES, Pauses
from pipelines.tick.pause import load as load_pauses
from pipelines.tick.pending import group_by_instant, pending_occurrences, register_sequences
from pipelines.tick.phases import process_occurrence
from pipelines.tick.report import OccurrenceResult, RunReport, SequenceFailed
from pipelines.tick.state import (
    AudienceBatchFailed,
    Mark,
    advance_state,
    check_late_activities,
    flush_state,
    start_run,
    watermark,
)
from pipelines.workspace import Workspace

__all__ = [
    "OccurrenceResult",
    "RunReport",
    "SequenceFailed",
    "TickRun",
    "preview_occurrence",
    "run_tick",
]


@dataclass
class TickRun:
    """One run over its groups of occurrences. The per-run tables are set up at the first
    instant (``start_run``); ``precomputed`` is None until then, afterwards the sequences
    whose audience was evaluated once for the run."""

    compilation: Compilation
    run_id: str
    report: RunReport
    groups: list[list[Occurrence]]
    mark: Mark = (None, 0)  # the run's state: instant and activities counted (state.py)
    precomputed: set[str] | None = None
    pauses: Pauses = NO_PAUSES  # the run's pause intervals (tick.pause), read with precomputed
    audiences_once: bool = True  # off after the one-statement audience failed
    batched: bool = True  # layers of independent sequences share statements (tick.batch)
    one_by_one: bool = False  # after a batched statement failed, until its culprit is found

    def process_group(self, con, group: list[Occurrence]) -> list[OccurrenceResult]:
        """One instant: bring the state to it, then each of its occurrences."""
        clock = time.perf_counter()
        if self.precomputed is None:
            self.precomputed = start_run(
                con, self.groups, self.compilation, audiences=self.audiences_once
            )
            if self.mark[0] is None:  # a first run: start_run built the state
                self.mark = watermark(con)
            self.pauses = load_pauses(con, self.groups[-1][0].at)
        self.mark = advance_state(con, self.mark, group[0].at)
        self.report.seconds["state"] += time.perf_counter() - clock
        if not self.batched or self.one_by_one:
            return [self._occurrence(con, occ) for occ in group]
        results = []
        for layer in layers(group, self.compilation):
            for part in parts(layer):
                if len(part) == 1:
                    results.append(self._occurrence(con, part[0]))
                else:
                    results += process_layer(
                        con, self.compilation, part, self.run_id, self.report, self.precomputed,
                        self.pauses,
                    )  # fmt: skip
        order = {occ: i for i, occ in enumerate(group)}
        return sorted(results, key=lambda r: order[r.occurrence])  # the group's order

    def _occurrence(self, con, occ: Occurrence) -> OccurrenceResult:
        try:
            return process_occurrence(
                con,
                self.compilation.sequences[occ.sequence],
                occ,
                self.run_id,
                self.report,
                self.precomputed,
                self.pauses,
            )
        except duckdb.Error as exc:
            raise SequenceFailed(occ.sequence, occ.on, exc) from exc

    def commit_group(self, con, group: list[Occurrence]) -> None:
        """Process one instant atomically; a sequence that fails is dropped and the instant
        redone without it (DuckDB has no savepoints), until the rest commits."""
        mark = self.mark
        while group := [o for o in group if o.sequence not in self.report.failed_sequences]:
            first_of_run, self.mark = self.precomputed is None, mark  # as before a rollback
            try:
                with transaction(con):
                    results = self.process_group(con, group)
            except AudienceBatchFailed:
                self.audiences_once, self.precomputed = False, None  # find it per occurrence
                continue
            except BatchFailed as exc:
                self.report.batch_fallbacks.append(str(exc))
                self.one_by_one = True  # find it one sequence at a time
                if first_of_run:
                    self.precomputed = None
                continue
            except SequenceFailed as failed:
                self.one_by_one = False
                self.report.failed.append(failed)
                kept = self.report.failed_sequences
                self.groups = [
                    g for g in ([o for o in g if o.sequence not in kept] for g in self.groups) if g
                ]
                if first_of_run:
                    self.precomputed = None  # its temp tables were rolled back
                continue
            self.report.occurrences += results
            return


def run_tick(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    compilation: Compilation,
    as_of: dt.datetime,
    progress: Callable[[int], Progress] | None = None,
    *,
    batched: bool = True,
) -> RunReport:
    """Process every unprocessed occurrence with instant ≤ ``as_of``; record a ``runs`` row.

    Each group of occurrences sharing an instant commits atomically, so a crash leaves the
    ledger consistent and the next run resumes where this one stopped. Re-running the same
    ``as_of`` finds nothing to do and changes nothing but the ``runs`` log. ``progress``:
    given the number of occurrences to process, a :class:`~pipelines.progress.Progress`
    stepped after each instant (a catch-up run over many days shows how far it is).
    ``batched=False`` runs every sequence alone (the reference the batched tick must equal).
    """
    as_of = to_naive_utc(as_of)
    report = RunReport(run_id=uuid.uuid4().hex, as_of=as_of)
    started = utc_now()
    with transaction(con):
        starts = register_sequences(con, compilation, as_of)
        check_late_activities(con)
    groups = group_by_instant(pending_occurrences(con, compilation, starts, as_of))
    start = watermark(con)
    run = TickRun(compilation, report.run_id, report, groups, start, batched=batched)
    bar = progress(sum(map(len, groups))) if progress and groups else None
    for group in groups:
        run.commit_group(con, group)
        if bar:
            bar.step(len(group), note=f"{group[0].at:%Y-%m-%d %H:%M}Z")
    if bar:
        bar.close()
    if run.mark != start:
        with transaction(con):
            flush_state(con, run.mark)
    con.execute(
        "insert into runs (run_id, kind, as_of, started_at, finished_at, stats) "
        "values (?, 'tick', ?, ?, ?, ?)",
        [report.run_id, as_of, started, utc_now(), json.dumps(report.stats())],
    )
    return report


def preview_occurrence(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    compilation: Compilation,
    sequence: str,
    as_of: dt.datetime,
    inspect: Callable[[duckdb.DuckDBPyConnection, Occurrence], Any] | None = None,
) -> dict[str, Any]:
    """What the NEXT occurrence of ``sequence`` would decide, without writing anything.

    The next occurrence is the sequence's first unprocessed one: at or before ``as_of`` when
    runs are behind, else the first after ``as_of`` (a new sequence starts as ``run_tick``
    at ``as_of`` would start it). Every pending occurrence of every sequence up to and
    including it is processed exactly as a tick would, inside one transaction that is then
    rolled back. ``inspect(con, occurrence)``, when given, reads the transaction's state
    right after that occurrence, before the rollback; its result is ``inspected`` (a key
    only present with ``inspect``).
    """
    if sequence not in compilation.sequences:
        raise ConfigError("unknown or invalid sequence", Location(sequence=sequence))
    as_of = to_naive_utc(as_of)
    report = RunReport(run_id="preview", as_of=as_of)
    con.execute("begin transaction")
    try:
        starts = register_sequences(con, compilation, as_of)
        check_late_activities(con)
        horizon = as_of + dt.timedelta(days=14)
        pending = pending_occurrences(con, compilation, starts, horizon)
        target = next((o for o in pending if o.sequence == sequence), None)
        if target is None:
            return {"sequence": sequence, "occurrence_on": None, "occurrence_at": None}
        pending = [o for o in pending if (o.at, o.sequence) <= (target.at, target.sequence)]
        result = None
        groups = group_by_instant(pending)
        # one sequence at a time: a batch failure could not be redone inside this transaction
        run = TickRun(compilation, "preview", report, groups, watermark(con), batched=False)
        for group in groups:
            for r in run.process_group(con, group):
                if r.occurrence == target:
                    result = r
        inspected = inspect(con, target) if inspect else None
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
        **({"inspected": inspected} if inspect else {}),
    }
