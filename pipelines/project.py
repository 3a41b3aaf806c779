"""The one entry point to the engine: a workspace, its database and their compilation.

Modelled on sqlmesh's ``Context``: the command line (:mod:`pipelines.cli`), the Dagster
resource (:mod:`pipelines.defs.resources`), the tests and the benches all call a
:class:`Project`, so each of them runs the production path. For a tick that path is
compile → warn about (and leave out) broken sequences → lock the connection → tick.

A project acts as ``user`` (SPEC 9); ``None`` is the operator with full access (the
scheduler's case). Who may do what is checked here, before anything is written: ``run``,
``send``, the review of unknowns, requeueing held actions and ``metrics --rebuild`` are for
the operator or an admin; ``preview``, ``enroll``, ``unenroll`` and ``metrics --sequence``
need a sequence the user may use; a task queue is listed and a task completed by its owner,
an admin or the operator.

Each method opens and closes its own connection (DuckDB: one writer process per file), or
uses ``con`` when the caller passes one (tests and benches keep theirs open). ``run`` and
``preview`` lock that connection down (:func:`pipelines.db.lock_down`): the lock holds for the
database instance until its last connection closes, so a caller that locked a connection
opens a fresh one (after closing it) for anything that reads files, such as an ingest.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines import db
from pipelines.backtests import Backtests
from pipelines.compile import cache as compile_cache
from pipelines.compile.condition import ConditionSchema
from pipelines.compile.sequence import Compilation, CompiledSequence, compile_workspace
from pipelines.desk import Desk
from pipelines.engagement.spool import load_spool, spool_files
from pipelines.errors import ErrorList, PermissionDenied, SequencerError, UsageError
from pipelines.explain import Explain
from pipelines.holdouts import holdout_lines
from pipelines.ingest.load import IngestResult, ingest_files
from pipelines.instants import as_of_or_now, utc_now
from pipelines.metrics import (
    DEFAULT_SNAPSHOT,
    Build,
    build_metrics,
    last_build,
    metrics_table,
    publish_snapshot,
    record_build,
)
from pipelines.models import Sequence
from pipelines.outbox.review import list_unknown, requeue_held, resolve_unknown
from pipelines.outbox.send import SendReport, send_due
from pipelines.progress import Progress
from pipelines.scope import Actor, require_sequence, resolve_actor, sees_all, visible_sequences
from pipelines.tick import enrollment
from pipelines.tick import pause as pauses
from pipelines.tick.preview import AudiencePreview, audience_inspector, preview_audience
from pipelines.tick.properties import materialize_contact_state
from pipelines.tick.run import RunReport, preview_occurrence, run_tick
from pipelines.variant_metrics import verdict_lines
from pipelines.workspace import Workspace, load_workspace, missing_secrets

FUTURE_SLACK = dt.timedelta(days=1)
RUN_REFUSED = "run ticks every sequence: it is for the operator or an admin"
INGEST_REFUSED = "ingest writes every user's contacts: it is for the operator or an admin"
SEND_REFUSED = "send and its review are for the operator or an admin"
SERVE_REFUSED = "serve records every user's engagement: it is for the operator or an admin"
METRICS_REFUSED = (
    "metrics --rebuild rewrites the tables and the reader snapshot: it is for the operator "
    "or an admin (without --rebuild, metrics reads them as last built)"
)

Instant = str | dt.datetime | None
"""An ``as_of``: ISO-8601 text (no offset = UTC), a datetime (naive = UTC), or None = now."""


@dataclass
class RunResult:
    """One tick: its report, and the sequences left out because they do not compile."""

    as_of: dt.datetime
    report: RunReport
    problems: list[SequencerError] = field(default_factory=list)
    compile_seconds: float = 0.0


@dataclass
class Validation:
    """What ``validate`` found among the sequences the user may see."""

    compiled: list[CompiledSequence]
    problems: list[SequencerError]
    no_contacts: bool


@dataclass
class PreviewResult:
    """A sequence's audience now and what its next occurrence would decide."""

    sequence: Sequence
    audience: AudiencePreview
    next_occurrence: dict[str, Any]


@dataclass
class MetricsResult:
    """``rows`` and ``snapshot`` only when rebuilt; ``table`` None when never built."""

    rows: dict[str, int]
    table: str | None
    snapshot: Path | None
    build: Build
    verdicts: list[str] = field(default_factory=list)  # variants vs their control (issue 13)
    holdouts: list[str] = field(default_factory=list)  # holdout lift lines (SPEC 11)


class Project(Desk, Explain, Backtests):
    """A workspace directory and its DuckDB file, acting as ``user`` (None: the operator).

    >>> p = Project("/ws")
    >>> p.db_path.as_posix(), p.snapshot_path.as_posix(), p.user is None
    ('/ws/.sequencer/sequencer.duckdb', '/ws/.sequencer/snapshot.duckdb', True)
    """

    def __init__(
        self,
        root: Path | str = ".",
        db_path: Path | str | None = None,
        user: str | None = None,
        *,
        snapshot_path: Path | str | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.db_path = Path(db_path) if db_path else db.default_db_path(self.root)
        self.snapshot_path = Path(snapshot_path) if snapshot_path else self.root / DEFAULT_SNAPSHOT
        self.user = user or None

    # --- parts ---------------------------------------------------------------------------

    def connect(self, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        return db.connect(self.db_path, read_only=read_only)

    @contextmanager
    def connection(
        self, con: duckdb.DuckDBPyConnection | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """``con`` when given (left open), else a new connection closed on exit."""
        if con is not None:
            yield con
            return
        con = self.connect()
        try:
            yield con
        finally:
            con.close()

    def workspace(self) -> Workspace:
        """The files as they are now; a broken sequence file leaves out only itself."""
        return load_workspace(self.root, strict=False)

    def actor(self, ws: Workspace) -> Actor:
        return resolve_actor(ws, self.user)

    def _require_admin(self, ws: Workspace, refusal: str) -> None:
        """Run and send act on every user's sequences: the operator or an admin only."""
        if not self.actor(ws).is_operator and not ws.users.can(self.user or "", "admin"):
            raise PermissionDenied(refusal)

    def compile(
        self,
        con: duckdb.DuckDBPyConnection | None = None,
        ws: Workspace | None = None,
        *,
        save: bool = True,
    ) -> Compilation:
        """Compile every sequence against the database's columns (custom ones included);
        ``save=False`` (preview, render) reads the compile cache but does not update it."""
        ws = ws or self.workspace()
        with self.connection(con) as c:
            schema = ConditionSchema.from_database(c)
            cache = compile_cache.load(c, schema)
            compilation = compile_workspace(ws, schema, cache.compile_conditions)
            if save:
                compile_cache.save(c, cache)
        return compilation

    # --- sequences -------------------------------------------------------------------------

    def sequences(self) -> tuple[Actor, list[Sequence], list[SequencerError]]:
        """The acting user, the sequences they may see, and the workspace's problems."""
        ws = self.workspace()
        actor = self.actor(ws)
        return actor, visible_sequences(ws, actor), ws.problems

    def validate(self) -> Validation:
        """Compile the workspace; keep what concerns the sequences the user may see."""
        ws = self.workspace()
        names = {s.name for s in visible_sequences(ws, self.actor(ws))}
        with self.connection() as con:
            compilation = self.compile(con, ws)
            compilation.errors.extend(missing_secrets(ws, os.environ))
            no_contacts = con.execute("select count(*) from contacts").fetchone()[0] == 0
        return Validation(
            compiled=[compilation.sequences[n] for n in sorted(names & set(compilation.sequences))],
            # a file that did not load has no owner to scope by: everyone sees it
            problems=[
                e
                for e in compilation.errors
                if e.location.sequence is None
                or e.location.sequence in names
                or e.location.sequence not in ws.sequences
            ],
            no_contacts=no_contacts,
        )

    # --- the run ---------------------------------------------------------------------------

    def run(
        self,
        as_of: Instant = None,
        *,
        con: duckdb.DuckDBPyConnection | None = None,
        allow_future: bool = False,
        progress: Callable[[int], Progress] | None = None,
    ) -> RunResult:
        """One tick at ``as_of``: compile, lock the connection, process every due occurrence.

        Broken sequences, and sequences whose SQL fails at run time, are left out of the tick
        and returned in ``problems`` (they miss these occurrences for good:
        docs/decisions.md); the caller prints or logs them. An ``as_of`` more than a day
        ahead of the wall clock is refused unless ``allow_future`` (a typo would otherwise
        decide months of actions at once). ``progress``: see :func:`run_tick`.
        """
        ws = self.workspace()
        self._require_admin(ws, RUN_REFUSED)
        at = as_of_or_now(as_of)
        if at > utc_now() + FUTURE_SLACK and not allow_future:
            raise UsageError(
                f"--as-of {at:%Y-%m-%d %H:%M}Z is more than a day ahead of now "
                f"({utc_now():%Y-%m-%d %H:%M}Z); pass --allow-future to simulate a later day"
            )
        with self.connection(con) as c:
            started = time.perf_counter()
            compilation = self.compile(c, ws)
            compiled = time.perf_counter()
            db.lock_down(c)  # analyst SQL runs next
            report = run_tick(c, ws, compilation, at, progress)
        problems = [*compilation.errors, *report.failed]  # left out: broken, or failed at run
        return RunResult(at, report, problems, compiled - started)

    def send(
        self, as_of: Instant = None, *, con: duckdb.DuckDBPyConnection | None = None, **options: Any
    ) -> SendReport:
        """Carry out every due action once (``options``: see :func:`deliver.send_due`)."""
        ws = self.workspace()
        self._require_admin(ws, SEND_REFUSED)
        with self.connection(con) as c:
            return send_due(c, ws, as_of_or_now(as_of), **options)

    def review(self) -> list[dict[str, Any]]:
        """Actions in status ``unknown`` (claimed, outcome not recorded)."""
        self._require_admin(self.workspace(), SEND_REFUSED)
        with self.connection() as con:
            return list_unknown(con)

    def mark(self, key: str, outcome: str) -> None:
        """Settle an ``unknown`` action: ``sent`` or ``retry``."""
        self._require_admin(self.workspace(), SEND_REFUSED)
        with self.connection() as con:
            resolve_unknown(con, key, outcome)

    def requeue_held(self, sequence: str | None = None, step: str | None = None) -> int:
        """Put ``held`` actions back in the queue after a fix; how many."""
        self._require_admin(self.workspace(), SEND_REFUSED)
        with self.connection() as con:
            return requeue_held(con, sequence, step)

    def preview(
        self, sequence: str, as_of: Instant = None, *, sample_size: int = 10
    ) -> PreviewResult:
        """The audience as the next occurrence will see it (evaluated in the preview's
        transaction right after that occurrence, with its gap to the entries), and what that
        occurrence would decide; on a locked connection, and nothing is written."""
        ws = self.workspace()
        seq = require_sequence(ws, self.actor(ws), sequence)
        at = as_of_or_now(as_of)
        with self.connection() as con:
            compilation = self.compile(con, ws, save=False)  # nothing is written
            problems = [e for e in compilation.errors if e.location.sequence == seq.name]
            if problems:
                raise ErrorList(problems)
            db.lock_down(con)
            compiled = compilation.sequences[seq.name]
            inspect = audience_inspector(compiled, sample_size)  # in the occurrence's state
            nxt = preview_occurrence(con, ws, compilation, seq.name, at, inspect)
            audience = nxt.pop("inspected", None) or preview_audience(
                con, compiled, at, sample_size=sample_size
            )
        return PreviewResult(sequence=seq, audience=audience, next_occurrence=nxt)

    def contact_properties(self, as_of: Instant = None) -> int:
        """Table ``contact_properties``: every contact's derived properties at ``as_of``."""
        with self.connection() as con:
            materialize_contact_state(con, as_of_or_now(as_of), table="contact_state_now")
            con.execute(
                "create or replace table contact_properties as select * from contact_state_now"
            )
            return con.execute("select count(*) from contact_properties").fetchone()[0]

    def metrics(self, sequence: str | None = None, *, rebuild: bool = False) -> MetricsResult:
        """The metrics the user may see (SPEC 9: their own sequences; all for admins and the
        operator). By default read as last built; ``rebuild`` (admin or operator) rebuilds
        the tables first and republishes the reader snapshot."""
        ws = self.workspace()
        actor = self.actor(ws)
        if rebuild:
            self._require_admin(ws, METRICS_REFUSED)
        if sequence and (sequence in ws.sequences or not sees_all(ws, actor)):
            require_sequence(ws, actor, sequence)
        only = None if sees_all(ws, actor) else [s.name for s in visible_sequences(ws, actor)]
        rows, snapshot = {}, None
        with self.connection() as con:
            if rebuild:
                started = utc_now()
                rows = build_metrics(con, ws.sequences.values())
                record_build(con, rows, started)
                snapshot = publish_snapshot(self.db_path, self.snapshot_path)
            build = last_build(con)
            table = metrics_table(con, sequence, only=only) if build.exists else None
            verdicts = verdict_lines(con, sequence, only=only)
            held = holdout_lines(con, sequence, only=only) if build.exists else []
        return MetricsResult(rows, table, snapshot, build, verdicts, held)

    # --- operations ------------------------------------------------------------------------

    def ingest(
        self, paths: list[Path] | None = None, *, tag: str | None = None, fmt: str | None = None
    ) -> list[IngestResult]:
        """Load files (default: every file of ``imports/``, then what the tracking server
        spooled to ``imports/events/`` since the last load); accounts, contacts, activities,
        then ESP event files (recognized by content, or all read as ``fmt``: SPEC 10).
        Each file is its own unit: one that cannot be read comes back with ``error`` set."""
        self._require_admin(self.workspace(), INGEST_REFUSED)
        spool = paths is None and bool(spool_files(self.root))
        if paths is None:
            paths = sorted(p for p in (self.root / "imports").glob("*") if p.is_file())
        if not paths and not spool:
            raise SequencerError("no files to ingest (give FILES or drop them into imports/)")
        with self.connection() as con:
            results = ingest_files(con, paths, tag=tag, fmt=fmt)
            return results + (load_spool(con, self.root) if spool else [])

    def serve(self, host: str, port: int) -> None:
        """Run the tracking server (SPEC 10) until interrupted; it never opens the database."""
        from pipelines.engagement.server import serve

        self._require_admin(self.workspace(), SERVE_REFUSED)
        serve(self.root, host, port)

    def enroll(self, sequence: str, contact_ids: list[str], at: Instant = None) -> dict:
        """Request manual enrolment; the contacts enter at the sequence's next occurrence."""
        return self._enrolment(enrollment.enroll, sequence, contact_ids, at)

    def unenroll(self, sequence: str, contact_ids: list[str], at: Instant = None) -> dict:
        """Take contacts out of a sequence now (exit reason ``manual``)."""
        return self._enrolment(enrollment.unenroll, sequence, contact_ids, at)

    def pause(
        self, sequence: str, contact_ids: list[str], until: dt.date | None = None,
        at: Instant = None,
    ) -> dict:  # fmt: skip
        """Pause enrolments (none given: the whole sequence) until ``until`` (SPEC 11)."""

        def act(con, ws, seq, ids, when):
            return pauses.pause(con, ws, seq, ids, when, until, by=self.user)

        return self._enrolment(act, sequence, contact_ids, at)

    def resume(self, sequence: str, contact_ids: list[str], at: Instant = None) -> dict:
        """End the pauses of the contacts (none given: of the whole sequence)."""

        def act(con, ws, seq, ids, when):
            return pauses.resume(con, ws, seq, ids, when, by=self.user)

        return self._enrolment(act, sequence, contact_ids, at)

    def _enrolment(self, fn, sequence: str, contact_ids: list[str], at: Instant) -> dict:
        ws = self.workspace()
        require_sequence(ws, self.actor(ws), sequence)
        with self.connection() as con:
            return fn(con, ws, sequence, contact_ids, as_of_or_now(at))
