"""Ingest contact, account and activity files into DuckDB (SPEC section 3).

Everything is set-based: a file is read by DuckDB as text columns into a temp table
(``ingest_raw``), typed and checked by one SQL model (``sql/ingest/stg_<entity>.sql``) into
``ingest_stg`` with the reasons each record cannot load, then bad records go to ``quarantine``
and good ones are merged in bulk. No Python runs per row. One file is one transaction.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines import sqlrun
from pipelines.db import transaction
from pipelines.errors import IngestError, Location

log = logging.getLogger(__name__)

ENTITIES = ("accounts", "contacts", "activities")  # also the order ingest_files loads them in
FORMATS = {
    "contacts": (".csv", ".parquet"),
    "accounts": (".csv", ".parquet"),
    "activities": (".csv", ".jsonl", ".parquet"),
}
KEYS = {"contacts": "contact_id", "accounts": "account_id", "activities": "activity_id"}
BASE_COLUMNS = {
    "contacts": (
        "contact_id", "email", "first_name", "last_name", "account_id", "owner_id",
        "timezone", "unsubscribed", "created_at", "updated_at", "import_name",
    ),
    "accounts": (
        "account_id", "name", "domain", "owner_id", "created_at", "updated_at", "import_name",
    ),
    "activities": (
        "activity_id", "contact_id", "email", "type", "occurred_at", "sequence", "step",
        "message_id", "detail",
    ),
}  # fmt: skip
ACTIVITY_TYPES = [
    "email_sent", "email_delivered", "email_opened", "email_clicked", "email_replied",
    "email_bounced", "unsubscribed", "call_incoming", "call_outgoing", "chat", "sms_sent",
    "sms_received", "meeting", "task_completed",
]  # fmt: skip
EMAIL_RE = r"[^@\s]+@[^@\s]+\.[^@\s]+"
# One well-formed CSV record: fields either fully quoted (with "" escapes) or free of quotes.
CSV_RECORD_RE = r'(?s)(?:"(?:[^"]|"")*"|[^",]*)(?:,(?:"(?:[^"]|"")*"|[^",]*))*\r?'
STAGING_TABLES = (
    "ingest_raw", "ingest_stg", "ingest_reject_rows", "ingest_line_map", "ingest_file_lines",
)  # fmt: skip
NO_DELIMITER = "\x01"  # never in a valid JSON line; lets read_csv return whole lines


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


def detect_entity(path: Path) -> str:
    """The entity a file holds, from its name prefix and suffix.

    >>> detect_entity(Path("imports/contacts_march.csv"))
    'contacts'
    >>> detect_entity(Path("activities-2026.jsonl"))
    'activities'
    """
    name, suffix = Path(path).name.lower(), Path(path).suffix.lower()
    for entity, suffixes in FORMATS.items():
        if name.startswith(entity) and suffix in suffixes:
            return entity
    raise IngestError(
        "cannot tell what this file holds: expected contacts*.csv|.parquet, "
        "accounts*.csv|.parquet or activities*.csv|.jsonl|.parquet",
        Location(file=str(path)),
    )


def ingest_files(
    con: duckdb.DuckDBPyConnection, paths, *, tag: str | None = None
) -> list[IngestResult]:
    """Ingest several files: accounts first, then contacts, then activities (so activities
    given by email find contacts of the same batch); name order within an entity."""
    paths = sorted((Path(p) for p in paths), key=lambda p: (_order(p), p.name))
    return [ingest_file(con, p, tag=tag) for p in paths]


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
    # The content hash is computed while DuckDB reads the file (both release the GIL); a
    # file seen before is then dropped unread into the tables. Read outside the transaction:
    # rows of a temp table written inside one carry provisional rowids, and rowid is the
    # record's ordinal in the file.
    with ThreadPoolExecutor(max_workers=1) as pool:
        hashing = pool.submit(_sha256, path)
        columns, quoted = _read(con, path, entity)
        digest = hashing.result()
    seen = con.execute(
        "select 1 from ingested_files where sha256 = $1 and entity = $2 and tag = $3",
        [digest, entity, tag or ""],
    ).fetchone()
    if seen:
        return IngestResult(str(path), entity, 0, 0, 0, True)
    with transaction(con):
        result = _load(con, path, entity, columns, quoted, tag, validate_with_gx)
        con.execute(
            "insert into ingested_files (sha256, file, entity, tag, loaded, updated, quarantined)"
            " values ($1, $2, $3, $4, $5, $6, $7)",
            [digest, str(path), entity, tag or "", result.loaded, result.updated,
             result.quarantined],
        )  # fmt: skip
    log.info(
        "ingested %s (%s): %d rows = %d loaded + %d updated + %d unchanged + %d quarantined",
        path, entity, result.rows, result.loaded, result.updated, result.unchanged,
        result.quarantined,
    )  # fmt: skip
    return result


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _read(con, path: Path, entity: str) -> tuple[dict[str, str], bool]:
    """Stage the file as text in ``ingest_raw``; return normalized name -> column, and
    whether some CSV value holds a quote (then its lines are staged for a grammar check)."""
    fmt = path.suffix.lower().lstrip(".")
    if f".{fmt}" not in FORMATS[entity]:
        raise IngestError(f"{entity} cannot be read from .{fmt}", Location(file=str(path)))
    for table in STAGING_TABLES:
        con.execute(f"drop table if exists {table}")
    columns = _stage_raw(con, path, fmt)
    if fmt != "jsonl" and KEYS[entity] not in columns:
        raise IngestError(f"no {KEYS[entity]} column", Location(file=str(path)))
    quoted = False
    if fmt == "csv":
        (quoted,) = con.execute(
            f"select count(*) > 0 from ingest_raw as raw where {_quote_expr(columns)}"
        ).fetchone()
    if quoted:
        _stage_lines(con, path)
    return columns, quoted


def _stage_lines(con, path: Path) -> None:
    """The file's physical lines, numbered (``line``, 1-based; blank lines as NULL text).

    Numbered by rowid order rather than rowid itself: inside a transaction a temp table's
    rowids are provisional (offset), though still in insertion order."""
    if con.execute(
        "select count(*) from duckdb_tables() where table_name = 'ingest_file_lines'"
    ).fetchone()[0]:
        return
    con.execute(
        "create temp table ingest_file_text as select * from read_csv($path, "
        "columns = {'text': 'VARCHAR'}, header = false, auto_detect = false, "
        "delim = $delim, quote = '', escape = '', strict_mode = false, "
        "ignore_errors = true, max_line_size = 100000000)",
        {"path": str(path), "delim": NO_DELIMITER},
    )
    con.execute(
        "create temp table ingest_file_lines as select"
        " row_number() over (order by rowid) as line, text from ingest_file_text"
    )
    con.execute("drop table ingest_file_text")


def _joined(columns: dict[str, str]) -> str:
    cols = [f"coalesce(raw.{c}, '')" for c in columns.values()]
    return f"concat({', '.join(cols)})" if cols else "''"


def _quote_expr(columns: dict[str, str]) -> str:
    """Some value holds a quote (per column: cheaper than concatenating the row)."""
    tests = [f"contains(raw.{c}, '\"')" for c in columns.values()]
    return "(" + " or ".join(tests) + ")" if tests else "false"


def _load(con, path, entity, columns, quoted, tag, validate) -> IngestResult:
    """Type and check the staged rows, quarantine the bad ones, merge the good ones."""
    fmt = path.suffix.lower().lstrip(".")
    custom = _custom_columns(con, entity, columns) if entity != "activities" else []
    _stage_typed(con, entity, fmt, columns, custom, tag)
    suspect = fmt != "csv" or _check_csv_text(con, path, columns, quoted)
    quarantined = _quarantine(con, path, entity, fmt, columns) if suspect else 0
    loaded, updated = _merge(con, entity, columns, custom, tag)
    good, total = con.execute(
        "select count(*) filter (where len(__reasons) = 0), count(*) from ingest_stg"
    ).fetchone()
    if validate and good:
        from pipelines.quality import validate_loaded

        validate_loaded(con, file=str(path), entity=entity)
    return IngestResult(
        file=str(path),
        entity=entity,
        loaded=loaded,
        updated=updated,
        quarantined=quarantined,
        skipped=False,
        unchanged=good - loaded - updated,
        rows=total + quarantined - (total - good),  # rejected CSV records are not staged
    )


# --- reading ------------------------------------------------------------------------------


def _stage_raw(con, path: Path, fmt: str) -> dict[str, str]:
    """Read the file into ``ingest_raw`` as text, in file order; return its columns."""
    if fmt == "csv":
        return _stage_csv(con, path)
    if fmt == "jsonl":
        con.execute(
            "create temp table ingest_raw as select * from read_csv($path, "
            "columns = {'__text': 'VARCHAR'}, header = false, auto_detect = false, "
            "delim = $delim, quote = '', escape = '', strict_mode = false, "
            "max_line_size = 100000000)",
            {"path": str(path), "delim": NO_DELIMITER},
        )
        return {}
    # parquet: every column as text, so the checks are the same as for CSV
    described = con.execute("describe select * from read_parquet($1)", [str(path)]).fetchall()
    names = [r[0] for r in described]
    columns = _normalize(names, path)
    select = ", ".join(
        f"{sqlrun.ident(src)}::varchar as {sqlrun.ident(name)}"
        for name, src in zip(columns, names, strict=True)
    )
    con.execute(
        f"create temp table ingest_raw as select {select} from read_parquet($1)", [str(path)]
    )
    return {name: sqlrun.ident(name) for name in columns}


def _stage_csv(con, path: Path) -> dict[str, str]:
    # The header is read by Python (one line): the sniffer gives up on files with broken
    # quotes, so the dialect is fixed and every column is read as VARCHAR.
    with path.open(encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f), None)
    if not header:
        raise IngestError("empty file: no header line", Location(file=str(path)))
    columns = _normalize(header, path)
    con.execute("drop table if exists ingest_rejects")
    con.execute("drop table if exists ingest_reject_scans")
    con.execute(
        "create temp table ingest_raw as select * from read_csv($path, columns = $columns, "
        "header = true, auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
        "strict_mode = true, store_rejects = true, rejects_table = 'ingest_rejects', "
        "rejects_scan = 'ingest_reject_scans', max_line_size = 100000000)",
        {"path": str(path), "columns": {name: "VARCHAR" for name in columns}},
    )
    con.execute(
        "create temp table ingest_reject_rows as " + sqlrun.render("ingest/int_csv_reject_rows.sql")
    )
    return {name: sqlrun.ident(name) for name in columns}


def _normalize(names: list[str], path: Path) -> list[str]:
    columns = [n.strip().lower() for n in names]
    bad = [n for n in columns if not n or n.startswith("__")]
    dupes = {n for n in columns if columns.count(n) > 1}
    if bad or dupes:
        raise IngestError(
            "bad header: empty, '__'-prefixed or duplicate column names "
            f"{sorted(set(bad) | dupes)}",
            Location(file=str(path)),
        )
    return columns


# --- typing and checks --------------------------------------------------------------------


def _custom_columns(con, entity: str, columns: dict[str, str]) -> list[dict]:
    """Extra columns of a contacts/accounts file with their type: fixed by the table when
    the column exists, otherwise inferred from this file's values and added to the table."""
    stored = dict(
        con.execute(
            "select column_name, data_type from duckdb_columns() "
            "where table_name = $1 and schema_name = 'main' and not internal",
            [entity],
        ).fetchall()
    )
    extra = [n for n in columns if n not in BASE_COLUMNS[entity]]
    new = [{"name": n, "source": columns[n]} for n in extra if n not in stored]
    if new:
        sql = sqlrun.render("ingest/int_infer_types.sql", columns=new)
        types = con.execute(sql).fetchone()
        for col, type_ in zip(new, types, strict=True):
            con.execute(f"alter table {entity} add column {sqlrun.ident(col['name'])} {type_}")
            stored[col["name"]] = type_
    return [{"name": n, "source": columns[n], "type": stored[n]} for n in extra]


def _stage_typed(con, entity, fmt, columns, custom, tag) -> None:
    src = {c: columns.get(c, "null::varchar") for c in BASE_COLUMNS[entity]}
    sql = sqlrun.render(f"ingest/stg_{entity}.sql", src=src, custom=custom, jsonl=fmt == "jsonl")
    if entity != "activities":
        con.execute(
            "create temp table if not exists ingest_timezones as "
            "select distinct name from pg_timezone_names()"
        )
    params = {"email_re": EMAIL_RE, "types": ACTIVITY_TYPES, "tag": tag}
    sqlrun.run(con, f"create temp table ingest_stg as {sql}", params)
    _mark_duplicates(con, entity)


def _mark_duplicates(con, entity: str) -> None:
    key = KEYS[entity]
    (repeats,) = con.execute(
        f"select count({sqlrun.ident(key)}) - count(distinct {sqlrun.ident(key)}) from ingest_stg"
        " where len(__reasons) = 0"
    ).fetchone()
    if repeats:
        sql = sqlrun.render("ingest/int_dedup.sql", key=key, has_updated_at=entity != "activities")
        con.execute(
            f"update ingest_stg set __reasons = [$reason] where __rec in ({sql})",
            {"reason": f"duplicate {key} in file"},
        )


def _check_csv_text(con, path: Path, columns: dict[str, str], quoted: bool) -> bool:
    """Map CSV records to physical lines and catch quotes DuckDB read as literals. Only runs
    when something is wrong or suspicious (a clean file costs one scan for a quote); returns
    whether it ran, i.e. whether there may be something to quarantine."""
    (rejects,) = con.execute("select count(*) from ingest_reject_rows").fetchone()
    (bad,) = con.execute("select count(*) from ingest_stg where len(__reasons) > 0").fetchone()
    if not (rejects or bad or quoted):
        return False
    _stage_lines(con, path)  # physical lines: blank lines and multi-line values
    joined = _joined(columns)
    nl_expr = f"len({joined}) - len(replace({joined}, chr(10), ''))"
    (multi_line,) = con.execute(
        f"select count(*) > 0 from ingest_raw as raw where {nl_expr} > 0 union all "
        "select count(*) > 0 from ingest_reject_rows where contains(raw, chr(10))"
        " order by 1 desc limit 1"
    ).fetchone()
    sql = sqlrun.render("ingest/int_csv_line_map.sql", nl_expr=nl_expr, single_line=not multi_line)
    con.execute(f"create temp table ingest_line_map as {sql}")
    if not quoted:
        return True
    sql = sqlrun.render("ingest/int_stray_quotes.sql", quote_expr=_quote_expr(columns))
    con.execute(
        f"update ingest_stg set __reasons = list_append(__reasons, 'stray quote') "
        f"where __rec in ({sql})",
        {"csv_re": CSV_RECORD_RE},
    )
    return True


# --- writing ------------------------------------------------------------------------------


def _quarantine(con, path: Path, entity: str, fmt: str, columns: dict[str, str]) -> int:
    csv_file = fmt == "csv"
    if fmt == "jsonl":
        raw_expr = "raw.__text"
    else:
        parts = [
            f"case when raw.{c} is null then '' when regexp_matches(raw.{c}, '[,\"\\r\\n]') "
            f"then '\"' || replace(raw.{c}, '\"', '\"\"') || '\"' else raw.{c} end"
            for c in columns.values()
        ]
        raw_expr = f"concat_ws(',', {', '.join(parts)})"
    line_expr = "line_map.__line" if csv_file else "stg.__rec"
    params = {"file": str(path), "entity": entity}
    (count,) = sqlrun.execute(
        con, "ingest/dml_quarantine.sql", params, csv=csv_file, raw_expr=raw_expr,
        line_expr=line_expr,
    ).fetchone()  # fmt: skip
    return count


def _merge(con, entity, columns, custom, tag) -> tuple[int, int]:
    """Bulk update of newer rows (and of the tag), then bulk insert of new ids:
    (inserted, updated)."""
    key = KEYS[entity]
    stg_columns = [c for c in BASE_COLUMNS[entity]] + [c["name"] for c in custom]
    updated = 0
    if entity != "activities":
        present = set(columns) | ({"import_name"} if tag else set())
        set_columns = [c for c in stg_columns if c in present and c != key]
        if set_columns:
            (updated,) = sqlrun.execute(
                con, "ingest/dml_merge_update.sql", table=entity, key=key, set_columns=set_columns
            ).fetchone()
        if tag:
            (stamped,) = sqlrun.execute(
                con, "ingest/dml_merge_tag.sql", {"tag": tag}, table=entity, key=key
            ).fetchone()
            updated += stamped
    match_emails = (
        entity == "activities"
        and con.execute(
            "select count(*) > 0 from ingest_stg where contact_id is null and email is not null"
        ).fetchone()[0]
    )
    (inserted,) = sqlrun.execute(
        con, "ingest/dml_merge_insert.sql", table=entity, key=key, columns=stg_columns,
        match_emails=match_emails,
    ).fetchone()  # fmt: skip
    return inserted, updated
