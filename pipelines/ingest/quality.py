"""The Great Expectations suite over a bounded, seeded sample of the rows an ingest loads
(SPEC 3, NOTES.md, docs/decisions.md "Ingest at DuckDB speed").

Finding bad rows is DuckDB's job: the set-based checks of ``sql/ingest/stg_*.sql`` cover every
row. This suite is the documented, independent check of what loaded; it runs on GX's pandas
path (its SQL datasource over duckdb-engine returns nothing, see NOTES.md) over at most
``SAMPLE_ROWS`` good rows of each batch, chosen by a hash of the key (the same rows for the
same file, whatever its order). ``validation_results`` says so: ``element_count`` is the
sample's size, ``batch_rows`` the batch's, ``note`` "sample of N of M rows".
GX is imported only when the suite runs; :func:`warm_up` starts that import in a thread
while DuckDB reads the file (it takes seconds and is pure Python).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading

import duckdb

from pipelines import sqlrun
from pipelines.ingest.check import ACTIVITY_TYPES
from pipelines.ingest.check import EMAIL_RE as MAILBOX_RE
from pipelines.ingest.read import KEYS

log = logging.getLogger(__name__)

SAMPLE_ROWS = 20_000
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

_lock = threading.Lock()
_loaded: dict[str, object] = {}


def _gx():
    """One ephemeral context per process, quiet: no analytics, no progress bars."""
    with _lock:
        if "gx" not in _loaded:
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
            for name in ("great_expectations", "posthog"):
                logging.getLogger(name).setLevel(logging.ERROR)
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            asset = context.data_sources.add_pandas("ingest").add_dataframe_asset("staged")
            batch_definition = asset.add_batch_definition_whole_dataframe("sample")
            _loaded["gx"] = (gx, context, batch_definition, {})
        return _loaded["gx"]


def warm_up() -> None:
    """Import GX and build its context in a thread (not a daemon: an interpreter shutting
    down mid-import would crash). A failure there is left for :func:`validate_loaded` to raise."""

    def load() -> None:
        try:
            _gx()
        except Exception:  # noqa: BLE001 - raised again, with its traceback, by the caller
            log.debug("GX warm-up failed", exc_info=True)

    if "gx" not in _loaded:
        threading.Thread(target=load, name="gx-import").start()


def _suite(entity: str):
    gx, context, _, suites = _gx()
    if entity not in suites:
        suite = context.suites.add(gx.ExpectationSuite(name=f"ingest_{entity}"))
        for kind, column, kwargs in SUITES[entity]:
            suite.add_expectation(getattr(gx.expectations, kind)(column=column, **kwargs))
        suites[entity] = suite
    return suites[entity]


def sample_sql(entity: str, table: str = "ingest_stg", *, cut: bool = False) -> str:
    """The good rows of ``table`` the suite looks at: the ``$n`` smallest by hash of the key
    (ties by the key), so the sample is bounded, spread over the file, and the same for the
    same rows in any order. Parameter: ``$n``; with ``cut``, also ``$cut``: only rows whose
    hash is below it are sorted (a filter instead of a top-n over the whole batch: 0.2 s vs
    1.0 s at 1e7 rows). Whenever at least ``$n`` rows pass the cut, the answer is the same."""
    key = sqlrun.ident(KEYS[entity])
    columns = sorted({column for _, column, _ in SUITES[entity]})
    select = ", ".join(sqlrun.ident(c) for c in columns)
    where = f" and hash({key}) < $cut::ubigint" if cut else ""
    return (
        f"select {select} from {sqlrun.ident(table)} where len(__reasons) = 0{where} "
        f"order by hash({key}), {key} limit $n"
    )


def _sample(con, entity: str, table: str, n: int, batch_rows: int):
    """The sample as a pandas frame: cut at a hash below which about 2n rows fall (hashes
    are uniform), or sort the whole batch when fewer than n fell below it."""
    if batch_rows > 2 * n:
        cut = min(2**64 - 1, int(2**64 * 2 * n / batch_rows))
        params = {"n": n, "cut": cut}
        frame = con.execute(sample_sql(entity, table, cut=True), params).df()
        if len(frame) == n:
            return frame
    return con.execute(sample_sql(entity, table), {"n": n}).df()


def validate_loaded(
    con: duckdb.DuckDBPyConnection,
    *,
    file: str,
    entity: str,
    table: str = "ingest_stg",
    sample_rows: int | None = None,
    batch_rows: int | None = None,
) -> list[dict]:
    """Run the entity's suite over a sample of at most ``sample_rows`` (default
    ``SAMPLE_ROWS``) good rows of ``table`` (``batch_rows``: how many good rows it has, when
    the caller counted them) and write one ``validation_results`` row per expectation; return
    those rows. The result JSON names the sample: its size, the batch's, and a fingerprint of
    its keys (the same rows give the same fingerprint)."""
    sample_rows = SAMPLE_ROWS if sample_rows is None else sample_rows
    if batch_rows is None:
        (batch_rows,) = con.execute(
            f"select count(*) from {sqlrun.ident(table)} where len(__reasons) = 0"
        ).fetchone()
    frame = _sample(con, entity, table, sample_rows, batch_rows)
    _, _, batch_definition, _ = _gx()
    suite = _suite(entity)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    sample = _described(frame, entity, batch_rows)
    rows = [
        {"file": file, "entity": entity, **_row(r, sample)} for r in batch.validate(suite).results
    ]
    if rows:
        con.executemany(
            "insert into validation_results (file, entity, expectation, success, element_count,"
            " unexpected_count, batch_rows, note, result) values ($file, $entity, $expectation,"
            " $success, $element_count, $unexpected_count, $batch_rows, $note, $result)",
            rows,
        )
    return rows


def _described(frame, entity: str, batch_rows: int) -> dict:
    """What the sample was: its size, the batch's, and a fingerprint of its keys."""
    size = len(frame)
    keys = "\n".join(sorted(frame[KEYS[entity]].astype(str)))
    return {
        "rows": size,
        "of": batch_rows,
        "by": f"hash({KEYS[entity]})",
        "fingerprint": hashlib.sha256(keys.encode()).hexdigest()[:16],
    }


def _row(r, sample: dict) -> dict:
    """One ``validation_results`` row (without file and entity) from a GX result."""
    config, result = r.expectation_config, r.result
    size, batch_rows = sample["rows"], sample["of"]
    unexpected = result.get("partial_unexpected_list") or []
    return {
        "expectation": f"{config.type}({config.kwargs.get('column')})",
        "success": bool(r.success),
        "element_count": int(result.get("element_count") or 0),
        "unexpected_count": int(result.get("unexpected_count") or 0),
        "batch_rows": batch_rows,
        "note": f"sample of {size} of {batch_rows} rows"
        if size < batch_rows
        else f"all {size} rows",
        "result": json.dumps(
            {"sample": sample, "partial_unexpected_list": unexpected[:20]}, default=str
        ),
    }
