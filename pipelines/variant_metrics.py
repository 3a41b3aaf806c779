"""``variant_metrics`` (SPEC 11 "Variants", issue 13): per variant of an email step, its sends
and engagement (``sql/metrics/fct_variant_metrics.sql``, counted as ``step_metrics`` counts),
and for every variant after the first (the control, first in file order) the comparison with
the control on the reply rate and on the human open rate (:func:`pipelines.stats.compare`,
Bonferroni over the step's comparisons, no verdict below :data:`pipelines.stats.MIN_N` per
arm); :func:`verdict_lines` prints them for ``sequencer metrics``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from itertools import groupby
from typing import Any

import duckdb

from pipelines import sqlrun
from pipelines.models import Sequence
from pipelines.stats import MIN_N, Comparison, compare

TABLE = "variant_metrics"
HEADER = (
    f"variants vs their step's control (the first variant): no verdict before {MIN_N} sent"
    " per arm; 95 %, Bonferroni over the step's comparisons"
)
COUNTS = ("sent", "opened", "clicked", "replied")
TESTS = (("reply", "replied"), ("open", "opened"))  # (column prefix, count compared)
RESULT_COLUMNS = ("diff", "ci_low", "ci_high", "p_value", "test", "significant", "verdict")
SCHEMA = (
    ("sequence", "varchar"), ("step", "varchar"), ("variant", "varchar"),
    ("position", "integer"), ("weight", "double"), ("control", "varchar"),
    ("is_control", "boolean"), ("sent", "bigint"), ("opened", "bigint"),
    ("clicked", "bigint"), ("replied", "bigint"), ("open_rate", "double"),
    ("click_rate", "double"), ("reply_rate", "double"), ("comparisons", "integer"),
    *((f"{prefix}_{c}", {"test": "varchar", "verdict": "varchar", "significant": "boolean"}
       .get(c, "double")) for prefix, _ in TESTS for c in RESULT_COLUMNS),
)  # fmt: skip


def arms(sequences: Iterable[Sequence]) -> list[tuple[str, str, str, int, float]]:
    """(sequence, step, variant, position in the file, weight) of every step with variants."""
    return [
        (seq.name, step.id, variant.id, position, variant.weight)
        for seq in sequences
        for step in seq.steps
        for position, variant in enumerate(step.variants or [])
    ]


def build_variant_metrics(con: duckdb.DuckDBPyConnection, sequences: Iterable[Sequence]) -> int:
    """Create or replace ``variant_metrics`` from ``int_emails`` (the caller's temp table) and
    the variants of ``sequences``; its row count."""
    con.execute(
        "create or replace temp table _variant_arms (sequence varchar, step varchar,"
        " variant varchar, position integer, weight double)"
    )
    listed = arms(sequences)
    if listed:
        con.executemany("insert into _variant_arms values (?, ?, ?, ?, ?)", listed)
    counted = sqlrun.rows(con, "metrics/fct_variant_metrics.sql")
    con.execute("drop table _variant_arms")
    out = []
    for _, group in groupby(counted, key=lambda r: (r["sequence"], r["step"])):
        out.extend(compare_arms(list(group)))
    columns = ", ".join(f"{sqlrun.ident(name)} {kind}" for name, kind in SCHEMA)
    con.execute(f"create or replace table {TABLE} ({columns})")
    if out:
        marks = ", ".join("?" for _ in SCHEMA)
        con.executemany(
            f"insert into {TABLE} values ({marks})", [[r[n] for n, _ in SCHEMA] for r in out]
        )
    return len(out)


def compare_arms(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of one step (control first) with their rates and, after the control, the
    comparisons with it; Bonferroni over the step's ``len(rows) - 1`` comparisons.

    >>> rows = [{"variant": "a", "sent": 400, "opened": 100, "clicked": 9, "replied": 20},
    ...         {"variant": "b", "sent": 400, "opened": 120, "clicked": 7, "replied": 45}]
    >>> [(r["variant"], r["reply_verdict"], r["open_verdict"]) for r in compare_arms(rows)]
    [('a', None, None), ('b', 'b better', 'no difference')]
    """
    control, comparisons = rows[0], len(rows) - 1
    out = []
    for row in rows:
        sent = row["sent"]
        rates = {f"{c}_rate": row[c] / sent if sent else None for c in ("opened", "clicked")}
        row = {
            **row,
            "control": control["variant"],
            "is_control": row is control,
            "comparisons": comparisons,
            "open_rate": rates["opened_rate"],
            "click_rate": rates["clicked_rate"],
            "reply_rate": row["replied"] / sent if sent else None,
        }
        for prefix, count in TESTS:
            result = None if row["is_control"] else _compare(control, row, count, comparisons)
            for column in RESULT_COLUMNS:
                row[f"{prefix}_{column}"] = getattr(result, column) if result else None
        out.append(row)
    return out


def _compare(control: dict, arm: dict, count: str, comparisons: int) -> Comparison:
    return compare(
        control[count], control["sent"], arm[count], arm["sent"],
        comparisons=comparisons, names=(control["variant"], arm["variant"]),
    )  # fmt: skip


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}%"


def _line(row: dict[str, Any], control: dict[str, Any], prefix: str, rate: str) -> str:
    own, theirs = _pct(row[rate]), _pct(control[rate])
    if row[f"{prefix}_p_value"] is None:
        return f"{own} vs {theirs}: {row[f'{prefix}_verdict']}"
    low, high = (100 * row[f"{prefix}_ci_{side}"] for side in ("low", "high"))
    return (
        f"{own} vs {theirs} ({100 * row[f'{prefix}_diff']:+.1f} pts, 95% CI {low:+.1f} to "
        f"{high:+.1f}, p={row[f'{prefix}_p_value']:.3f} {row[f'{prefix}_test']}): "
        f"{row[f'{prefix}_verdict']}"
    )


def verdict_lines(
    con: duckdb.DuckDBPyConnection,
    sequence: str | None = None,
    *,
    only: Collection[str] | None = None,
) -> list[str]:
    """One line per comparison of a variant with its step's control, as built; none when
    no sequence (of ``only``, or ``sequence``) has variants, or ``variant_metrics`` was never
    built (metrics built before variants existed)."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_name = $1"
        " and table_schema = 'main'",
        [TABLE],
    ).fetchone()[0]
    if not exists:
        return []
    found = sqlrun.dicts(
        con.execute(
            f"select * from {TABLE} where ($1::varchar is null or sequence = $1)"
            " and ($2::varchar[] is null or list_contains($2::varchar[], sequence))"
            " order by sequence, step, not is_control, position nulls last, variant",
            [sequence, None if only is None else sorted(only)],
        )
    )
    lines = []
    for (seq, step), group in groupby(found, key=lambda r: (r["sequence"], r["step"])):
        control, *others = list(group)
        for row in others:
            lines.append(
                f"{seq} {step}: {row['variant']} ({row['sent']} sent) vs control "
                f"{control['variant']} ({control['sent']} sent) — reply "
                f"{_line(row, control, 'reply', 'reply_rate')}; human open "
                f"{_line(row, control, 'open', 'open_rate')}"
            )
    return lines
