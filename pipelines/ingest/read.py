"""Reading (SPEC 3): a file's entity, and the file as text columns in ``ingest_raw`` (in file
order), with its physical lines when a CSV value holds a quote.
"""

from __future__ import annotations

import csv
from pathlib import Path

from pipelines import sqlrun
from pipelines.errors import IngestError, Location

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
STAGING_TABLES = (
    "ingest_raw", "ingest_stg", "ingest_reject_rows", "ingest_line_map", "ingest_file_lines",
)  # fmt: skip
NO_DELIMITER = "\x01"  # never in a valid JSON line; lets read_csv return whole lines


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
        "accounts*.csv|.parquet, activities*.csv|.jsonl|.parquet or an ESP event file "
        "(SendGrid, Mailgun, SES, Postmark .json|.jsonl; or say which with --format)",
        Location(file=str(path)),
    )


def read(con, path: Path, entity: str) -> dict[str, str]:
    """Stage the file as text in ``ingest_raw``; return normalized name -> column. (Whether
    some CSV value holds a quote is found by the typing pass: ``ingest_stg.__quoted``.)"""
    fmt = path.suffix.lower().lstrip(".")
    if f".{fmt}" not in FORMATS[entity]:
        raise IngestError(f"{entity} cannot be read from .{fmt}", Location(file=str(path)))
    for table in STAGING_TABLES:
        con.execute(f"drop table if exists {table}")
    columns = _stage_raw(con, path, fmt)
    if fmt != "jsonl" and KEYS[entity] not in columns:
        raise IngestError(f"no {KEYS[entity]} column", Location(file=str(path)))
    return columns


def stage_lines(con, path: Path) -> None:
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


def joined(columns: dict[str, str]) -> str:
    cols = [f"coalesce(raw.{c}, '')" for c in columns.values()]
    return f"concat({', '.join(cols)})" if cols else "''"


def quote_expr(columns: dict[str, str]) -> str:
    """Some value holds a quote (per column: cheaper than concatenating the row)."""
    tests = [f"contains(raw.{c}, '\"')" for c in columns.values()]
    return "(" + " or ".join(tests) + ")" if tests else "false"


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
