"""Backtest (SPEC 11, issue 13): ``backtest SEQUENCE --from DATE --to DATE [--out FILE]`` as
a :class:`pipelines.project.Project` method (a base class, like :class:`pipelines.desk.Desk`),
with its permissions: the sequence must be one the user may use (SPEC 9). The replay itself,
on a scratch copy (the real database is only ever attached read-only), is
:mod:`pipelines.tick.backtest`'s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from pipelines.errors import UsageError
from pipelines.progress import Progress
from pipelines.scope import require_sequence
from pipelines.tick.backtest import BacktestResult, backtest

BACKTESTS_DIR = Path(".sequencer") / "backtests"  # where the Dagster job writes its Parquet


class Backtests:
    """Project method ``backtest`` (``self`` is the :class:`Project`)."""

    def backtest(
        self,
        sequence: str,
        first: dt.date,
        last: dt.date,
        *,
        out: Path | str | None = None,
        progress: Callable[[int], Progress] | None = None,
    ) -> BacktestResult:
        """Replay ``sequence`` as written now over the occurrences dated [first, last] on a
        scratch copy of the database, assuming every email it decides is sent; nothing is
        written to the real database. ``out``: the decisions as Parquet."""
        if first > last:
            raise UsageError(f"--from {first} is after --to {last}")
        ws = self.workspace()
        seq = require_sequence(ws, self.actor(ws), sequence)

        def compile_scratch(con):
            return self.compile(con, ws, save=False)

        return backtest(
            self.db_path,
            ws,
            seq.name,
            first,
            last,
            compile_scratch,
            out=Path(out) if out else None,
            progress=progress,
        )

    def backtest_path(self, sequence: str, first: dt.date, last: dt.date) -> Path:
        """``PROJECT/.sequencer/backtests/<sequence>_<first>_<last>.parquet``."""
        return self.root / BACKTESTS_DIR / f"{sequence}_{first}_{last}.parquet"
