"""A seeded engagement simulator for the demo: turns the emails sent in a window into the
opens, clicks, replies, bounces and unsubscribes a prospect base would produce, written as an
activity file into ``imports/`` — the same path real activity exports take.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from pipelines import sqlrun


def simulate_engagement(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    window_start: dt.datetime,
    window_end: dt.datetime,
    *,
    seed: str = "demo",
) -> tuple[Path, int]:
    """Write ``activities_sim_<end>.csv`` for emails sent in (start, end]; return it and its
    row count."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rel = con.sql(
        sqlrun.render("demo/sim_engagement.sql"),
        params={"window_start": window_start, "window_end": window_end, "seed": seed},
    )
    path = out_dir / f"activities_sim_{window_end:%Y%m%dT%H%M}.csv"
    rel.write_csv(str(path))
    return path, len(rel)
