"""Writing (SPEC 3): bad records to ``quarantine`` (as their original text), good ones merged
in bulk: newer ``updated_at`` wins, activities are insert-only.
"""

from __future__ import annotations

from pathlib import Path

from pipelines import sqlrun
from pipelines.ingest.read import BASE_COLUMNS, KEYS


def quarantine(
    con,
    path: Path,
    entity: str,
    fmt: str,
    columns: dict[str, str],
    *,
    staged: bool = False,
    line_offset: int = 0,
) -> int:
    """Bad records of ``ingest_stg`` into ``quarantine``; ``staged``: the records a door
    staged (:func:`pipelines.ingest.load.load_staged_activities`) keep their source text in
    ``ingest_raw.__raw``, and their number in the source in ``ingest_raw.__line`` if the door
    gives one (several activities may come from one source record)."""
    csv_file = fmt == "csv"
    if staged:
        raw_expr = "coalesce(raw.__raw, raw.__text)"
    elif fmt == "jsonl":
        raw_expr = "raw.__text"
    else:
        parts = [
            f"case when raw.{c} is null then '' when regexp_matches(raw.{c}, '[,\"\\r\\n]') "
            f"then '\"' || replace(raw.{c}, '\"', '\"\"') || '\"' else raw.{c} end"
            for c in columns.values()
        ]
        raw_expr = f"concat_ws(',', {', '.join(parts)})"
    line_expr = "line_map.__line" if csv_file else f"stg.__rec + {int(line_offset)}"
    if staged and _has_column(con, "ingest_raw", "__line"):
        # the door numbered its source records itself
        line_expr = f"coalesce(raw.__line, stg.__rec + {int(line_offset)})"
    params = {"file": str(path), "entity": entity}
    (count,) = sqlrun.execute(
        con, "ingest/dml_quarantine.sql", params, csv=csv_file, raw_expr=raw_expr,
        line_expr=line_expr,
    ).fetchone()  # fmt: skip
    return count


def _has_column(con, table: str, column: str) -> bool:
    (found,) = con.execute(
        "select count(*) > 0 from duckdb_columns() where table_name = $1 and column_name = $2",
        [table, column],
    ).fetchone()
    return found


def merge(con, entity, columns, custom, tag, *, match_emails: bool = True) -> tuple[int, int]:
    """Bulk update of newer rows (and of the tag), then bulk insert of new ids:
    (inserted, updated). ``match_emails``: some good activity has an email and no contact_id
    (the typing pass counted it: :class:`pipelines.ingest.check.Staged`)."""
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
    match_emails = entity == "activities" and match_emails
    (inserted,) = sqlrun.execute(
        con, "ingest/dml_merge_insert.sql", table=entity, key=key, columns=stg_columns,
        match_emails=match_emails,
    ).fetchone()  # fmt: skip
    return inserted, updated
