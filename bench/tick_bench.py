"""Tick benchmark on a generated workspace (bench/generate.py).

    .venv/bin/python bench/tick_bench.py --contacts 100000 --sequences 10
    .venv/bin/python bench/tick_bench.py --contacts 1000000 --sequences 50 --catch-up-days 3

Loads the parquet imports straight into a fresh database file (ingest has its own bench),
then times: a catch-up tick over ``--catch-up-days`` days, one daily tick (the steady
state: only that day's activities are applied to the incremental state), and a replay of
the same as_of (nothing to do). Prints seconds, occurrences, per-phase seconds and counts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import generate  # noqa: E402

from pipelines.compiled import compile_workspace  # noqa: E402
from pipelines.compiler import ConditionSchema  # noqa: E402
from pipelines.db import connect  # noqa: E402
from pipelines.tick import run_tick  # noqa: E402
from pipelines.workspace import load_workspace  # noqa: E402

LOAD = """
alter table contacts add column if not exists lead_score integer;
alter table accounts add column if not exists industry varchar;
alter table accounts add column if not exists employees integer;
insert into accounts by name select * from read_parquet('{ws}/imports/accounts.parquet');
insert into contacts by name select * from read_parquet('{ws}/imports/contacts.parquet');
insert into activities by name select * from read_parquet('{ws}/imports/activities.parquet');
"""


def _timed_tick(con, ws, compilation, as_of: dt.datetime, label: str) -> dict:
    started = time.perf_counter()
    report = run_tick(con, ws, compilation, as_of)
    seconds = time.perf_counter() - started
    stats = report.stats()
    row = {
        "tick": label,
        "as_of": as_of.isoformat(),
        "seconds": round(seconds, 2),
        "occurrences": stats["occurrences"],
        "entries": stats["entries"],
        "exits": sum(stats["exits"].values()),
        "actions": sum(stats["actions"].values()),
        "phases": {k: round(v, 2) for k, v in stats["seconds"].items()},
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--sequences", type=int, default=10)
    parser.add_argument("--catch-up-days", type=int, default=5)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 3, 2))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    root = Path("bench/data") / f"ws-{args.contacts}-{args.sequences}"
    if not (root / "imports" / "activities.parquet").exists():
        generate(root, args.contacts, args.sequences, args.start, 14)
    db = Path("bench/out") / f"tick-{args.contacts}-{args.sequences}.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    for stale in (db, db.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    con = connect(db)
    con.execute(f"set threads = {int(args.threads)}")
    started = time.perf_counter()
    con.execute(LOAD.format(ws=root.resolve()))
    print(json.dumps({"load_seconds": round(time.perf_counter() - started, 2)}), flush=True)
    ws = load_workspace(root)
    compilation = compile_workspace(ws, ConditionSchema.from_database(con))
    assert not compilation.errors, [str(e) for e in compilation.errors]
    base = dt.datetime.combine(args.start, dt.time(0))
    catch_up = base + dt.timedelta(days=args.catch_up_days)
    _timed_tick(con, ws, compilation, catch_up, f"catch-up {args.catch_up_days} days")
    daily = catch_up + dt.timedelta(days=1)
    _timed_tick(con, ws, compilation, daily, "daily")
    _timed_tick(con, ws, compilation, daily, "replay")
    counts = con.execute(
        "select (select count(*) from enrollments), (select count(*) from actions), "
        "(select count(*) from activities)"
    ).fetchone()
    print(json.dumps({"enrollments": counts[0], "actions": counts[1], "activities": counts[2]}))


if __name__ == "__main__":
    main()
