"""Ingest contact, account and activity files into DuckDB (SPEC section 3).

Everything is set-based: a file is read by DuckDB as text columns into a temp table
(``ingest_raw``), typed and checked by one SQL model (``sql/ingest/stg_<entity>.sql``) into
``ingest_stg`` with the reasons each record cannot load, then bad records go to ``quarantine``
and good ones are merged in bulk. No Python runs per row. One file is one transaction.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines.db import transaction
from pipelines.errors import IngestError, Location
from pipelines.ingest.check import check_csv_text, custom_columns, stage_typed
from pipelines.ingest.read import ENTITIES, STAGING_TABLES, detect_entity, read
from pipelines.ingest.source import NotDecodable, prepare, scan
from pipelines.ingest.write import merge, quarantine

log = logging.getLogger(__name__)

__all__ = [
    "IngestResult", "detect_entity", "ingest_file", "ingest_files", "load_staged_activities",
    "reset_staging",
]  # fmt: skip


@dataclass
class IngestResult:
    """What one file did. ``rows`` = loaded + updated + unchanged + quarantined."""

    file: str
    entity: str
    loaded: int
    updated: int
    quarantined: int
    skipped: bool  # same content (sha256) + entity + tag already ingested
    unchanged: int = 0
    rows: int = 0
    notes: list[str] = field(default_factory=list)  # warnings: decoding, typing, widening
    error: str | None = None  # the file was rejected as a whole: why (nothing of it loaded)


def ingest_files(
    con: duckdb.DuckDBPyConnection, paths, *, tag: str | None = None, fmt: str | None = None
) -> list[IngestResult]:
    """Ingest several files: accounts first, then contacts, then activities (so activities
    given by email find contacts of the same batch), then ESP event files (SPEC 10: they
    match contacts and sends); name order within an entity. ``fmt`` (``sendgrid``,
    ``mailgun``, ``ses``, ``postmark``) reads every file as that provider's events; without it
    a ``.json``/``.jsonl`` file is recognized by its content."""
    paths = sorted((Path(p) for p in paths), key=lambda p: (_order(p), p.name))
    return [_ingest_one(con, p, tag, fmt) for p in paths]


def _ingest_one(con, path: Path, tag: str | None, fmt: str | None = None) -> IngestResult:
    """One file is one unit: a file that cannot be read at all is reported (its result
    carries ``error``) and the batch goes on with the next file."""
    provider = None
    try:
        # pipelines.engagement.esp builds on this module (the one loader): imported here
        from pipelines.engagement import esp

        provider = fmt or esp.detect_provider(path)
        if provider:
            return esp.ingest_esp_file(con, path, provider)
        return ingest_file(con, path, tag=tag)
    except (IngestError, duckdb.Error, OSError) as exc:
        if not isinstance(exc, IngestError):
            exc = IngestError(_reason(exc), Location(file=str(path)))
        if isinstance(exc, NotDecodable):
            _quarantine_rejected(con, path, exc)
        log.warning("rejected %s", exc)
        entity = provider or _entity_or_unknown(path)
        return IngestResult(str(path), entity, 0, 0, 0, False, error=exc.message)


def _reason(exc: Exception) -> str:
    """DuckDB's or the OS's message, first line only (no traceback reaches the user)."""
    if isinstance(exc, OSError):
        return f"cannot be read: {exc.strerror or exc}"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"cannot be read: {first}"


def _entity_or_unknown(path: Path) -> str:
    try:
        return detect_entity(path)
    except IngestError:
        return "?"


def _quarantine_rejected(con, path: Path, exc: NotDecodable) -> None:
    """A file that does not decode leaves one quarantine row (the line of its first bad
    byte), once: a rejected file is retried by every later ingest until it is fixed."""
    con.execute(
        "insert into quarantine (file, line, entity, reason, raw) select $1, $2, $3, $4, $5 "
        "where not exists (select 1 from quarantine where file = $1 and line = $2 "
        "and reason = $4)",
        [str(path), exc.line, _entity_or_unknown(path), exc.message, exc.raw],
    )


def _order(path: Path) -> int:
    try:
        return ENTITIES.index(detect_entity(path))
    except IngestError:
        return len(ENTITIES)  # fails with its own message when its turn comes


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    tag: str | None = None,
    entity: str | None = None,
    validate_with_gx: bool = True,
) -> IngestResult:
    """Load one file; bad records go to ``quarantine``, the rest is merged.

    Re-ingesting the same content for the same entity and tag is skipped; the merge itself
    is idempotent too (newer ``updated_at`` wins, activities are insert-only).
    """
    path = Path(path)
    entity = entity or detect_entity(path)
    if not path.is_file():
        raise IngestError("file not found", Location(file=str(path)))
    con.execute("set TimeZone = 'UTC'")  # offset-less timestamps are UTC
    if validate_with_gx:
        from pipelines.ingest import quality  # imports GX only in warm_up's thread

        quality.warm_up()  # GX's import (seconds) overlaps DuckDB's reading
    # One thread hashes the file and checks its encoding and line endings while DuckDB reads
    # it as it is (most files need no scratch copy; one that does is read again from the copy,
    # one that is not UTF-8 is rejected by the check); a file seen before is then dropped.
    # Read outside the transaction: rows of a temp table written inside one carry
    # provisional rowids, and rowid is the record's ordinal.
    with ThreadPoolExecutor(max_workers=1) as pool:
        scanned, columns = _read_while_scanning(con, pool, path, entity)
        source = prepare(path, scanned)  # UTF-8 with one kind of line ending
        try:
            if columns is None or source.path != path:
                columns = read(con, source.path, entity)
            digest = scanned.digest
            seen = con.execute(
                "select 1 from ingested_files where sha256 = $1 and entity = $2 and tag = $3",
                [digest, entity, tag or ""],
            ).fetchone()
            if seen:
                return IngestResult(str(path), entity, 0, 0, 0, True)
            with transaction(con):
                result = _load(con, path, source.path, entity, columns, tag, validate_with_gx)
                con.execute(
                    "insert into ingested_files (sha256, file, entity, tag, loaded, updated,"
                    " quarantined) values ($1, $2, $3, $4, $5, $6, $7)",
                    [digest, str(path), entity, tag or "", result.loaded, result.updated,
                     result.quarantined],
                )  # fmt: skip
        finally:
            source.close()
    result.notes[:0] = source.notes
    log.info(
        "ingested %s (%s): %d rows = %d loaded + %d updated + %d unchanged + %d quarantined",
        path, entity, result.rows, result.loaded, result.updated, result.unchanged,
        result.quarantined,
    )  # fmt: skip
    return result


def _read_while_scanning(con, pool, path: Path, entity: str):
    """The file's :func:`scan` (a thread) and, meanwhile, DuckDB's read of the file as it is:
    (scan, columns), columns None when that read failed (read again by the caller from a
    scratch copy, or to raise its error). A file that is not UTF-8 raises NotDecodable
    whatever DuckDB made of it."""
    scanning = pool.submit(scan, path)
    try:
        columns = read(con, path, entity)
    except (IngestError, duckdb.Error, UnicodeError):
        columns = None
    return scanning.result(), columns


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _load(con, path, read_path, entity, columns, tag, validate) -> IngestResult:
    """Type and check the staged rows, quarantine the bad ones, merge the good ones."""
    fmt = path.suffix.lower().lstrip(".")
    notes: list[str] = []
    custom = custom_columns(con, entity, columns, notes) if entity != "activities" else []
    staged = stage_typed(con, entity, fmt, columns, custom, tag)
    if fmt == "csv":
        suspect = check_csv_text(con, read_path, columns, staged)
    else:
        suspect = staged.bad > 0  # JSONL and Parquet records all reach ingest_stg
    quarantined = quarantine(con, path, entity, fmt, columns) if suspect else 0
    loaded, updated = merge(con, entity, columns, custom, tag, match_emails=staged.match_emails)
    good, total = staged.good, staged.total
    if validate and good:
        from pipelines.ingest.quality import validate_loaded

        validate_loaded(con, file=str(path), entity=entity, batch_rows=good)
    return IngestResult(
        file=str(path),
        entity=entity,
        loaded=loaded,
        updated=updated,
        quarantined=quarantined,
        skipped=False,
        unchanged=good - loaded - updated,
        rows=total + quarantined - (total - good),  # rejected CSV records are not staged
        notes=notes,
    )


def reset_staging(con) -> None:
    """Drop the staging tables of the previous file (a door stages ``ingest_raw`` next)."""
    for table in STAGING_TABLES:
        con.execute(f"drop table if exists {table}")


def load_staged_activities(
    con: duckdb.DuckDBPyConnection,
    path: Path | str,
    *,
    digest: str,
    kind: str,
    first_line: int = 1,
    within: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> IngestResult:
    """Load the activity records an engagement door (ESP file, mailbox, event spool) staged in
    the temp table ``ingest_raw``: ``__text`` one JSON activity object per record (the
    columns of SPEC 3), ``__raw`` the record as its source gave it (what quarantine keeps;
    NULL: ``__text``), in source order (``rowid + 1`` is the record's number, quarantine's
    ``line``, unless the door numbers its source records in an optional ``__line`` column:
    an ESP record may give several activities). The same checks and insert-only merge as an
    activities JSONL file; one transaction; a source whose ``digest`` was loaded before as
    ``kind`` is skipped, and an ``activity_id`` already stored is never inserted twice (the
    doors derive ids from the provider's event id or the message, so a re-delivered event is
    one activity).
    ``first_line``: the source line of the first record (a spool file loaded in pieces).
    ``within`` runs in the same transaction (a skipped source too): a door's own
    bookkeeping, such as the mailbox's IMAP cursor, commits with the load or not at all.
    """
    path = Path(path)
    con.execute("set TimeZone = 'UTC'")
    seen = con.execute(
        "select 1 from ingested_files where sha256 = $1 and entity = $2 and tag = ''",
        [digest, kind],
    ).fetchone()
    if seen:
        if within is not None:
            with transaction(con):
                within(con)
        return IngestResult(str(path), kind, 0, 0, 0, True)
    with transaction(con):
        if within is not None:
            within(con)
        staged = stage_typed(con, "activities", "jsonl", {}, [], None)
        quarantined = quarantine(
            con, path, "activities", "jsonl", {}, staged=True, line_offset=first_line - 1
        )
        loaded, _ = merge(con, "activities", {}, [], None, match_emails=staged.match_emails)
        good, total = staged.good, staged.total
        con.execute(
            "insert into ingested_files (sha256, file, entity, tag, loaded, updated,"
            " quarantined) values ($1, $2, $3, '', $4, 0, $5)",
            [digest, str(path), kind, loaded, quarantined],
        )
    log.info("ingested %s (%s): %d records = %d loaded + %d already stored + %d quarantined",
             path, kind, total, loaded, good - loaded, quarantined)  # fmt: skip
    return IngestResult(
        str(path), kind, loaded, 0, quarantined, False, unchanged=good - loaded, rows=total
    )
