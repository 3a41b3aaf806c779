"""The ``backtest`` command: parse → call :meth:`Project.backtest
<pipelines.backtests.Backtests.backtest>` → print. Registered in
:data:`pipelines.cli.COMMANDS`; its arguments are in :mod:`pipelines.cli_args`."""

from __future__ import annotations

import argparse
from collections import Counter

from pipelines.progress import Progress
from pipelines.project import Project
from pipelines.tick.backtest import BacktestDay, BacktestResult

EXIT_OK = 0


def cmd_backtest(p: Project, args: argparse.Namespace) -> int:
    result = p.backtest(
        args.sequence, args.from_date, args.to_date, out=args.out, progress=_progress
    )
    print_backtest(result)
    return EXIT_OK


def _progress(days: int) -> Progress:
    """A bar on a terminal; in a log one closing line, for a backtest of more than 5 s."""
    return Progress("backtest", days, min_seconds=5.0)


def _counts(counts: Counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def day_line(day: BacktestDay) -> str:
    """``2026-03-02 (14:00Z)  entries 3  exits replied 1  |  intro: due 2, skipped 1``."""
    steps = "; ".join(f"{step}: {_counts(c)}" for step, c in day.steps.items()) or "no steps"
    return (
        f"{day.on} ({day.at:%H:%M}Z)  entries {day.entries}  exits {_counts(day.exits)}  |  {steps}"
    )


def print_backtest(result: BacktestResult) -> None:
    print(
        f"backtest {result.sequence} from {result.first} to {result.last}: "
        f"{len(result.days)} occurrence(s), the sequence as written now, every email it "
        "decides assumed sent"
    )
    for day in result.days:
        print("  " + day_line(day))
    entries = sum(d.entries for d in result.days)
    exits = sum((d.exits for d in result.days), Counter())
    print(f"total: entries {entries}, exits {_counts(exits)}")
    for step, counts in result.totals.items():
        print(f"  step {step:<16} {_counts(counts)}")
    if result.out is not None:
        print(f"{result.decisions} decision(s) written to {result.out}")
    print("(nothing was written to the database and nothing was sent)")
