"""The Great Expectations suite run over the rows an ingest loads (SPEC 3, NOTES.md).

Finding bad rows is DuckDB's job (set-based, in ``sql/ingest/stg_*.sql``); this suite is the
documented, independent check of what loaded. It runs on GX's pandas path (its SQL datasource
over duckdb-engine returns nothing, see NOTES.md) in chunks of the staged good rows, so a large
file never becomes one pandas frame. Uniqueness is checked per chunk; across chunks DuckDB's
in-file dedup and the primary key guarantee it. GX is imported lazily: it is slow to import.
"""

from __future__ import annotations

import json
import logging
import os
import re
from functools import cache

import duckdb

from pipelines.ingest.check import ACTIVITY_TYPES
from pipelines.ingest.check import EMAIL_RE as MAILBOX_RE

CHUNK_ROWS = 200_000
# the built-in types (one list: ACTIVITY_TYPES, SPEC 3 and 10) and custom sales activities
ACTIVITY_TYPE_RE = rf"^(?:{'|'.join(map(re.escape, ACTIVITY_TYPES))}|sales_activity:\S.*)$"
EMAIL_RE = f"^{MAILBOX_RE}$"  # the same mailbox rule as the SQL check

# (expectation class name, column, extra keyword arguments) per entity
SUITES: dict[str, list[tuple[str, str, dict]]] = {
    "contacts": [
        ("ExpectColumnValuesToNotBeNull", "contact_id", {}),
        ("ExpectColumnValuesToBeUnique", "contact_id", {}),
        ("ExpectColumnValuesToMatchRegex", "email", {"regex": EMAIL_RE}),
    ],
    "accounts": [
        ("ExpectColumnValuesToNotBeNull", "account_id", {}),
        ("ExpectColumnValuesToBeUnique", "account_id", {}),
    ],
    "activities": [
        ("ExpectColumnValuesToNotBeNull", "activity_id", {}),
        ("ExpectColumnValuesToBeUnique", "activity_id", {}),
        ("ExpectColumnValuesToNotBeNull", "occurred_at", {}),
        ("ExpectColumnValuesToMatchRegex", "type", {"regex": ACTIVITY_TYPE_RE}),
    ],
}


@cache
def _gx():
    """One ephemeral context per process, quiet: no analytics, no progress bars."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    for name in ("great_expectations", "posthog"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("ingest").add_dataframe_asset("staged")
    return gx, context, asset.add_batch_definition_whole_dataframe("chunk")


@cache
def _suite(entity: str):
    gx, context, _ = _gx()
    suite = context.suites.add(gx.ExpectationSuite(name=f"ingest_{entity}"))
    for kind, column, kwargs in SUITES[entity]:
        suite.add_expectation(getattr(gx.expectations, kind)(column=column, **kwargs))
    return suite


def validate_loaded(
    con: duckdb.DuckDBPyConnection,
    *,
    file: str,
    entity: str,
    table: str = "ingest_stg",
    chunk_rows: int = CHUNK_ROWS,
) -> list[dict]:
    """Run the entity's suite over the good rows of ``table`` chunk by chunk and write one
    ``validation_results`` row per expectation; return those rows."""
    _, _, batch_definition = _gx()
    suite = _suite(entity)
    columns = sorted({column for _, column, _ in SUITES[entity]})
    select = ", ".join(f'"{c}"' for c in columns)
    totals: dict[str, dict] = {}
    reader = con.execute(f"select {select} from {table} where len(__reasons) = 0")
    vectors = max(1, chunk_rows // 2048)
    while len(frame := reader.fetch_df_chunk(vectors)):
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        for r in batch.validate(suite).results:
            _accumulate(totals, r.expectation_config, r.success, r.result)
    rows = [
        {"file": file, "entity": entity, **t, "result": json.dumps(t["result"], default=str)}
        for t in totals.values()
    ]
    if rows:
        con.executemany(
            "insert into validation_results (file, entity, expectation, success, element_count,"
            " unexpected_count, result) values ($file, $entity, $expectation, $success,"
            " $element_count, $unexpected_count, $result)",
            rows,
        )
    return rows


def _accumulate(totals: dict, config, success: bool, result: dict) -> None:
    name = f"{config.type}({config.kwargs.get('column')})"
    t = totals.setdefault(
        name,
        {
            "expectation": name,
            "success": True,
            "element_count": 0,
            "unexpected_count": 0,
            "result": {"chunks": 0, "partial_unexpected_list": []},
        },
    )
    t["success"] = t["success"] and bool(success)
    t["element_count"] += int(result.get("element_count") or 0)
    t["unexpected_count"] += int(result.get("unexpected_count") or 0)
    t["result"]["chunks"] += 1
    sample = t["result"]["partial_unexpected_list"]
    sample.extend((result.get("partial_unexpected_list") or [])[: 20 - len(sample)])
