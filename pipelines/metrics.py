"""Effectiveness metrics (SPEC 7) and the snapshot readers use (docs/readers.md).

:func:`build_metrics` rebuilds ``sequence_metrics``, ``step_metrics`` and
``variant_metrics`` (:mod:`pipelines.variant_metrics`) from ``sql/metrics/``;
:func:`metrics_table` prints the per-sequence totals for the CLI;
:func:`publish_snapshot` copies the database to a file that readers open while a run holds
the main one (DuckDB allows one writer process per file, and it blocks readers too).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines import sqlrun
from pipelines.db import transaction
from pipelines.holdouts import TABLE as HOLDOUT_TABLE
from pipelines.holdouts import build_holdout_metrics
from pipelines.instants import utc_now
from pipelines.models import Sequence
from pipelines.variant_metrics import TABLE as VARIANTS_TABLE
from pipelines.variant_metrics import build_variant_metrics

METRIC_MODELS = ("sequence_metrics", "step_metrics")  # tables, from sql/metrics/fct_<table>.sql
EMAILS_TABLE = "email_outcomes"  # int_emails.sql kept for readers: one row per sent email
DEFAULT_SNAPSHOT = Path(".sequencer") / "snapshot.duckdb"

# (header, column, format) of the CLI table; rates print as percentages, hours with one decimal.
TABLE_COLUMNS = (
    ("sequence", "sequence", "{:<24}"),
    ("enrolled", "enrolled", "{:>8}"),
    ("active", "active", "{:>7}"),
    ("exited", "exited", "{:>7}"),
    ("sent", "sent", "{:>7}"),
    ("delivered", "delivered", "{:>9}"),
    ("opened", "opened", "{:>7}"),
    ("m.opened", "machine_opened", "{:>8}"),
    ("clicked", "clicked", "{:>7}"),
    ("replied", "replied", "{:>7}"),
    ("bounced", "bounced", "{:>7}"),
    ("soft", "soft_bounced", "{:>5}"),
    ("unsub", "unsubscribed", "{:>6}"),
    ("compl", "complained", "{:>5}"),
    ("open%", "open_rate", "{:>6}"),
    ("click%", "click_rate", "{:>6}"),
    ("reply%", "reply_rate", "{:>6}"),
    ("bounce%", "bounce_rate", "{:>7}"),
    ("reply_h_p50", "reply_hours_p50", "{:>11}"),
    ("reply_h_p90", "reply_hours_p90", "{:>11}"),
)


def build_metrics(
    con: duckdb.DuckDBPyConnection, sequences: Iterable[Sequence] = ()
) -> dict[str, int]:
    """Create or replace ``sequence_metrics``, ``step_metrics``, ``email_outcomes`` (one row
    per sent email with its engagement and reply hours: the reply-time distribution) and
    ``variant_metrics`` (``sequences``: the files, for their variants' order and weights) and
    ``holdout_metrics`` (treated vs holdout of ``sequences``, :mod:`pipelines.holdouts`);
    return their row counts.

    The tables are replaced in one transaction, so a reader never sees one new and one old.
    """
    with transaction(con):
        sqlrun.materialize(con, "int_emails", sqlrun.render("metrics/int_emails.sql"))
        for model in METRIC_MODELS:
            sql = sqlrun.render(f"metrics/fct_{model}.sql")
            con.execute(f"create or replace table {model} as {sql}")
        con.execute(
            f"create or replace table {EMAILS_TABLE} as"
            " select * from int_emails order by sequence, step, metric_date, contact_id"
        )
        build_variant_metrics(con, sequences)
        con.execute("drop table int_emails")
        build_holdout_metrics(con, sequences)
    tables = (*METRIC_MODELS, EMAILS_TABLE, VARIANTS_TABLE, HOLDOUT_TABLE)
    return {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}


@dataclass(frozen=True)
class Build:
    """When the metrics tables were last rebuilt, and how many tick/send runs came after."""

    exists: bool
    built_at: dt.datetime | None = None
    runs_since: int = 0


def record_build(con: duckdb.DuckDBPyConnection, rows: dict[str, int], started: dt.datetime):
    """A ``runs`` row of kind ``metrics`` (SPEC 7: every run records what it did); readers of
    the tables learn from it how fresh they are (:func:`last_build`)."""
    con.execute(
        "insert into runs (run_id, kind, as_of, started_at, finished_at, stats)"
        " values (?, 'metrics', ?, ?, ?, ?)",
        [f"metrics-{uuid.uuid4().hex[:12]}", started, started, utc_now(), json.dumps(rows)],
    )


def last_build(con: duckdb.DuckDBPyConnection) -> Build:
    """The latest metrics build (None: never built here) and the tick/send runs since."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_name = 'sequence_metrics'"
        " and table_schema = 'main'"
    ).fetchone()[0]
    if not exists:
        return Build(False)
    built_at, since = con.execute(
        "with b as (select max(finished_at) as at from runs where kind = 'metrics')"
        " select b.at, (select count(*) from runs as r where r.kind in ('tick', 'send')"
        "  and r.finished_at > coalesce(b.at, '-infinity'::timestamp)) from b"
    ).fetchone()
    return Build(True, built_at, since)


def _cell(value: object, column: str) -> str:
    if value is None:
        return "-"
    if column.endswith("_rate"):
        return f"{100 * value:.1f}"
    if column.startswith("reply_hours"):
        return f"{value:.1f}"
    return str(value)


def metrics_table(
    con: duckdb.DuckDBPyConnection,
    sequence: str | None = None,
    *,
    only: Collection[str] | None = None,
) -> str:
    """Per-sequence totals (``period = 'all'``) as a fixed-width text table.

    ``sequence`` picks one; ``only`` limits the rows to sequences a user may see (SPEC 9).
    Reads the materialized ``sequence_metrics``: run :func:`build_metrics` first.
    """
    columns = ", ".join(column for _, column, _ in TABLE_COLUMNS)
    rows = con.execute(
        f"select {columns} from sequence_metrics where period = 'all'"
        " and ($1::varchar is null or sequence = $1)"
        " and ($2::varchar[] is null or list_contains($2::varchar[], sequence))"
        " order by sequence",
        [sequence, None if only is None else sorted(only)],
    ).fetchall()
    lines = [" ".join(fmt.format(header) for header, _, fmt in TABLE_COLUMNS)]
    for row in rows:
        cells = [
            fmt.format(_cell(value, column))
            for value, (_, column, fmt) in zip(row, TABLE_COLUMNS, strict=True)
        ]
        lines.append(" ".join(cells))
    if not rows:
        lines.append(f"(no metrics{f' for sequence {sequence!r}' if sequence else ''} yet)")
    lines.append(
        "counts are unique contacts; rates (%) are over sent; reply hours from send;"
        " opened = human opens (m.opened: privacy proxies and scanners, not in open%)"
    )
    return "\n".join(lines)


def publish_snapshot(db_path: Path | str, snapshot_path: Path | str) -> Path:
    """Copy the database to ``snapshot_path`` atomically; readers open the copy.

    Call it from the process that holds the database, after the run's writes, in a process
    whose DuckDB instance is not locked down (``ATTACH`` needs external access). DuckDB
    itself writes the copy (``COPY FROM DATABASE`` into a temporary file beside the target),
    which is then renamed over the old snapshot with :func:`os.replace`: a reader sees the
    old snapshot or the new one, never half a file.

    The file is never opened by Python here: DuckDB's lock is a POSIX record lock, and
    closing *any* descriptor of the file in the holding process silently drops it (so a
    ``shutil.copyfile`` of a held database would let a second writer in).
    """
    db_path, snapshot_path = Path(db_path), Path(snapshot_path)
    if not db_path.is_file():
        raise FileNotFoundError(f"no database to snapshot at {db_path}")
    snapshot_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = snapshot_path.with_name(f".{snapshot_path.name}.{uuid.uuid4().hex}.tmp")
    con = duckdb.connect(str(db_path))  # joins this process's open instance, if any
    try:
        con.execute("attach $1 as sequencer_snapshot", [str(tmp)])
        try:
            main = con.execute("select current_database()").fetchone()[0]
            con.execute(
                f'copy from database "{main.replace(chr(34), chr(34) * 2)}" to sequencer_snapshot'
            )
        finally:
            con.execute("detach sequencer_snapshot")
        os.replace(tmp, snapshot_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
        raise
    finally:
        con.close()
    return snapshot_path
