"""Backtest (SPEC 11, issue 13 item 4): replay one sequence as written now over the recorded
history, on a scratch copy, with the real tick.

``backtest(real_db, ws, sequence, first, last, compile)``:

1. *Scratch.* A DuckDB file in a temporary directory gets the schema (``db.connect``) and,
   from the real database ATTACHed ``READ_ONLY`` (never opened for writing, never changed),
   the inputs the tick reads (``sql/backtest/dml_copy_history.sql``): contacts, accounts,
   activities (without the sequence's own recorded ``email_sent``), the compile cache, the
   sequence's pauses and manual requests (pending again), its recorded ``unenroll``
   instants, and the other sequences' enrolments. The sequence starts with no enrolment,
   action, ledger row or tick state: as if it had been switched on at ``first``.
2. *Days.* The scratch connection is locked down (analyst SQL runs next) and, for each
   occurrence date of the sequence in [first, last], in order: the recorded unenrolments
   before its instant are replayed, the other sequences' enrolments are set to what they
   were then (only if the sequence reads them), :func:`pipelines.tick.run.run_tick` runs at
   the occurrence's instant with a :class:`Compilation` holding only this sequence, and every
   email it decided ``due`` is assumed sent (``sql/backtest/dml_assume_sent.sql``).
3. *Out.* The locked instance is closed; the scratch file is opened again (unlocked) to
   write the decisions to Parquet with ``COPY``; the temporary directory is removed.

The tick is point in time already (activities ≤ t, contacts from ``created_at``), so a
backtest of a sequence over the days it ran, from its first day, decides what it decided —
as long as its engagement came from activities (``tests/tick/test_backtest.py``).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines import db, sqlrun
from pipelines.channels.message import MailConfigError, domain_of, sender_user
from pipelines.compile.sequence import Compilation, CompiledSequence
from pipelines.errors import DatabaseBusy, ErrorList, SequencerError
from pipelines.models import Sequence
from pipelines.progress import Progress
from pipelines.tick.occurrences import instant_on, occurrence_dates
from pipelines.tick.run import run_tick
from pipelines.workspace import Workspace

Compile = Callable[[duckdb.DuckDBPyConnection], Compilation]


@dataclass
class BacktestDay:
    """What one occurrence decided in the replay."""

    on: dt.date
    at: dt.datetime
    entries: int = 0
    exits: Counter = field(default_factory=Counter)
    steps: dict[str, Counter] = field(default_factory=dict)


@dataclass
class BacktestResult:
    """A backtest: its days, how many decisions, and the Parquet file (if asked)."""

    sequence: str
    first: dt.date
    last: dt.date
    days: list[BacktestDay]
    decisions: int = 0
    out: Path | None = None

    @property
    def totals(self) -> dict[str, Counter]:
        """Per step, due/skipped over all the days."""
        found: dict[str, Counter] = {}
        for day in self.days:
            for step, counts in day.steps.items():
                found.setdefault(step, Counter()).update(counts)
        return found


def backtest_dates(seq: Sequence, first: dt.date, last: dt.date) -> list[dt.date]:
    """The occurrence dates of ``seq`` in [first, last], none before ``starts_on``."""
    start = max(first, seq.starts_on) if seq.starts_on else first
    return list(occurrence_dates(seq.schedule, start, last))


def backtest(
    real_db: Path,
    ws: Workspace,
    sequence: str,
    first: dt.date,
    last: dt.date,
    compile: Compile,
    *,
    out: Path | None = None,
    progress: Callable[[int], Progress] | None = None,
) -> BacktestResult:
    """Replay ``sequence`` over [first, last] on a scratch copy of ``real_db`` (module doc);
    ``compile(con)`` compiles the workspace against a connection (``Project.compile``)."""
    seq = ws.sequences[sequence]
    dates = backtest_dates(seq, first, last)
    result = BacktestResult(sequence, first, last, [])
    with tempfile.TemporaryDirectory(prefix="sequencer-backtest-") as tmp:
        scratch = Path(tmp) / "scratch.duckdb"
        con = db.connect(scratch)
        try:
            compiled = _prepare(con, Path(real_db), seq, compile, dates)
            bar = progress(len(dates)) if progress and dates else None
            for day in dates:
                result.days.append(_replay_day(con, ws, compiled, day))
                if bar:
                    bar.step(note=day.isoformat())
            if bar:
                bar.close()
        finally:
            con.close()  # ends the locked instance: the export may write a file
        result.decisions = _export(scratch, sequence, out)
    result.out = out
    return result


def _prepare(
    con, real_db: Path, seq: Sequence, compile: Compile, dates: list[dt.date]
) -> CompiledSequence:
    """Copy the history, compile against the copy, start the sequence at its first date."""
    copy_history(con, real_db, seq.name)
    if dates:  # first seen at its first backtest occurrence, which is its first occurrence
        con.execute(
            "insert into sequence_state (sequence, first_seen_at, first_occurrence_on) "
            "values (?, ?, ?)",
            [seq.name, instant_on(dates[0], seq.schedule), dates[0]],
        )
    compilation = compile(con)
    problems = [e for e in compilation.errors if e.location.sequence == seq.name]
    if problems or seq.name not in compilation.sequences:
        raise ErrorList(problems or [SequencerError(f"sequence {seq.name!r} did not compile")])
    compiled = compilation.sequences[seq.name]
    db.lock_down(con)  # analyst SQL runs next; the history is detached already
    return compiled


def copy_history(con: duckdb.DuckDBPyConnection, real_db: Path, sequence: str) -> None:
    """The tick's inputs from ``real_db``, attached READ_ONLY and detached afterwards."""
    if not real_db.is_file():
        raise SequencerError(f"no database at {real_db}: nothing to backtest (ingest first)")
    try:
        con.execute(f"attach {sqlrun.literal(real_db)} as history (read_only)")
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise DatabaseBusy(
                f"another run holds the database {real_db}; wait for it to finish and retry"
            ) from exc
        raise
    try:
        _run_file(con, "backtest/dml_copy_history.sql", {"sequence": sequence})
    finally:
        con.execute("detach history")


def _run_file(con, name: str, params: dict, **context) -> None:
    """Each statement of ``sql/<name>`` in turn, binding what it uses."""
    for statement in con.extract_statements(sqlrun.render(name, **context)):
        sqlrun.run(con, statement.query, params)


def _replay_day(con, ws: Workspace, compiled: CompiledSequence, day: dt.date) -> BacktestDay:
    """One occurrence: the recorded history up to it, the real tick, the assumed sends."""
    seq = compiled.sequence
    at = instant_on(day, seq.schedule)
    params = {
        "sequence": seq.name,
        "occurrence_at": at,
        "occurrence_on": day,
        "timezone": seq.schedule.timezone,
    }
    with db.transaction(con):
        _run_file(con, "backtest/dml_replay_unenrolments.sql", params)
        if compiled.reads_sequences or seq.exclusive_with:
            _run_file(con, "backtest/dml_other_enrollments.sql", params)
    report = run_tick(con, ws, Compilation(sequences={seq.name: compiled}), at)
    if report.failed:
        raise ErrorList(list(report.failed))
    steps, domains = _email_domains(ws, seq)
    with db.transaction(con):
        _run_file(
            con, "backtest/dml_assume_sent.sql", {**params, "steps": steps, "domains": domains}
        )
    found = BacktestDay(day, at)
    for r in report.occurrences:
        found.entries += r.entries
        found.exits.update(r.exits)
        for step, counts in r.steps.items():
            found.steps.setdefault(step, Counter()).update(counts)
    return found


def _email_domains(ws: Workspace, seq: Sequence) -> tuple[list[str], list[str | None]]:
    """Each email step and the domain of its sender (the Message-ID's), None if unknown."""
    owner = ws.users.user(seq.owner)
    steps, domains = [], []
    for step in seq.steps:
        if step.action != "email":
            continue
        try:
            domain = domain_of(sender_user(ws.users, step.from_, owner).email) if owner else None
        except MailConfigError:
            domain = None
        steps.append(step.id)
        domains.append(domain)
    return steps, domains


def _export(scratch: Path, sequence: str, out: Path | None) -> int:
    """How many decisions; with ``out``, written there as Parquet (DuckDB ``COPY``)."""
    con = duckdb.connect(str(scratch))
    try:
        query = sqlrun.render("backtest/rpt_decisions.sql")
        query = sqlrun.inline(query, {"sequence": sequence})
        count = con.execute(f"select count(*) from ({query})").fetchone()[0]
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"copy ({query}) to {sqlrun.literal(out)} (format parquet)")
        return count
    finally:
        con.close()
