"""Holdout metrics (SPEC 11, issue 13): treated vs holdout contacts of each sequence with a
holdout, and the lift of the sequence on the reply and meeting rates.

:func:`build_holdout_metrics` writes ``holdout_metrics`` (docs/metrics.md): the counts of
``sql/metrics/int_holdout_counts.sql`` per (sequence, outcome), and for each the comparison of
:func:`pipelines.stats.compare` with the holdout as A and the treated contacts as B: the lift
(treated rate − holdout rate), its 95 % Newcombe interval, the p-value and the fixed-sample
verdict. :func:`holdout_lines` prints them for ``sequencer metrics``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable

import duckdb

from pipelines import sqlrun
from pipelines.models import Sequence
from pipelines.stats import compare

TABLE = "holdout_metrics"
OUTCOMES = ("replied", "meeting")
COLUMNS = (
    "sequence varchar, outcome varchar, window_days integer, holdout_percent double, "
    "treated bigint, holdout bigint, treated_outcomes bigint, holdout_outcomes bigint, "
    "treated_rate double, holdout_rate double, lift double, lift_low double, "
    "lift_high double, p_value double, test varchar, significant boolean, verdict varchar"
)


def window_days(seq: Sequence) -> int:
    """The comparison window in calendar days: the sequence's length in occurrences (classic:
    its last step's day; smart: ``duration_days``), × 7/5 rounded up when weekends are excluded.

    >>> from pipelines.models import Schedule, Step
    >>> steps = [Step(id="a", day=10, action="follow_up")]
    >>> window_days(Sequence(name="s", owner="o", steps=steps))
    10
    >>> weekdays = Schedule(exclude_weekends=True)
    >>> window_days(Sequence(name="s", owner="o", steps=steps, schedule=weekdays))
    14
    """
    days = seq.duration_days if seq.type == "smart" else max(s.day or 1 for s in seq.steps)
    return math.ceil(days * 7 / 5) if seq.schedule.exclude_weekends else days


def build_holdout_metrics(con: duckdb.DuckDBPyConnection, sequences: Iterable[Sequence]) -> int:
    """Create or replace ``holdout_metrics`` for ``sequences`` (the workspace's: a sequence
    whose file is gone is not compared); return its row count."""
    specs = [
        {"name": s.name, "window_days": window_days(s), "holdout_percent": s.holdout_percent}
        for s in sorted(sequences, key=lambda s: s.name)
    ]
    counts = con.execute(sqlrun.render("metrics/int_holdout_counts.sql", specs=specs)).fetchall()
    con.execute(f"create or replace table {TABLE} ({COLUMNS})")
    rows = []
    for sequence, outcome, window, percent, n_b, n_a, x_b, x_a in counts:
        c = compare(x_a, n_a, x_b, n_b, names=("holdout", "treated"))
        rows.append(
            (sequence, outcome, window, percent, n_b, n_a, x_b, x_a, c.rate_b, c.rate_a,
             c.diff, c.ci_low, c.ci_high, c.p_value, c.test, c.significant, c.verdict)
        )  # fmt: skip
    if rows:
        marks = ", ".join("?" * 17)
        con.executemany(f"insert into {TABLE} values ({marks})", rows)
    return len(rows)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def holdout_lines(
    con: duckdb.DuckDBPyConnection,
    sequence: str | None = None,
    *,
    only: Collection[str] | None = None,
) -> list[str]:
    """One line per (sequence, outcome) of ``holdout_metrics`` the user may see: the arms,
    their rates, the lift with its 95 % interval (percentage points) and the verdict. Empty
    when there is no holdout (or the table predates holdouts)."""
    exists = con.execute(
        "select count(*) from information_schema.tables"
        f" where table_name = '{TABLE}' and table_schema = 'main'"
    ).fetchall()[0][0]
    if not exists:
        return []
    rows = con.execute(
        "select sequence, outcome, window_days, treated, treated_outcomes, holdout,"
        f" holdout_outcomes, lift, lift_low, lift_high, verdict from {TABLE}"
        " where ($1::varchar is null or sequence = $1)"
        " and ($2::varchar[] is null or list_contains($2::varchar[], sequence))"
        " order by sequence, outcome desc",
        [sequence, None if only is None else sorted(only)],
    ).fetchall()
    lines = []
    for seq, outcome, window, n_b, x_b, n_a, x_a, lift, low, high, verdict in rows:
        interval = f" [{_pct(low)}, {_pct(high)}]" if lift is not None else ""
        lines.append(
            f"holdout {seq} {outcome} within {window} days: treated {x_b}/{n_b}, holdout"
            f" {x_a}/{n_a}; lift {_pct(lift)} pts{interval} (95 %); {verdict}"
        )
    return lines
