"""The ``backtest_job``: replay one sequence over a date range (SPEC 11) on a scratch copy and
write its decisions under ``PROJECT/.sequencer/backtests/`` — the CLI's ``backtest``."""

import datetime as dt

import dagster as dg

from pipelines.defs.resources import WRITER_POOL, SequencerResource


class BacktestConfig(dg.Config):
    """``sequence`` and the occurrence dates ``from_date`` … ``to_date`` (YYYY-MM-DD)."""

    sequence: str
    from_date: str
    to_date: str


# In the writer pool although it only reads: DuckDB refuses even a read-only open of a file
# another process writes to (NOTES.md), so it waits for the tick instead of failing.
@dg.op(pool=WRITER_POOL, tags={"kind": "duckdb"})
def backtest(
    context: dg.OpExecutionContext, config: BacktestConfig, sequencer: SequencerResource
) -> dg.Output[str]:
    """Replay the sequence as written now; every email it decides assumed sent."""
    project = sequencer.project
    first, last = dt.date.fromisoformat(config.from_date), dt.date.fromisoformat(config.to_date)
    out = project.backtest_path(config.sequence, first, last)
    result = project.backtest(config.sequence, first, last, out=out)
    for day in result.days:
        steps = {step: dict(c) for step, c in day.steps.items()}
        context.log.info(f"{day.on}: entries {day.entries}, exits {dict(day.exits)}, {steps}")
    totals = {step: dict(c) for step, c in result.totals.items()}
    return dg.Output(
        str(out),
        metadata={
            "path": dg.MetadataValue.path(str(out)),
            "occurrences": len(result.days),
            "decisions": result.decisions,
            "entries": sum(d.entries for d in result.days),
            "steps": dg.MetadataValue.json(totals),
        },
    )


@dg.job(description="Backtest one sequence over a date range (run config: ops.backtest.config).")
def backtest_job():
    backtest()
