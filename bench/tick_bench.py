"""Tick benchmark on a generated workspace (bench/generate.py).

    .venv/bin/python bench/tick_bench.py                      # 1e5 contacts, 10 vs 40 sequences
    .venv/bin/python bench/tick_bench.py --contacts 1000000 --sequences 50 --compare 10,200

For every sequence count (``--sequences``, then each of ``--compare``) a fresh process loads
the parquet imports straight into a fresh database file (ingest has its own bench), times one
``arg_max(type, occurred_at) GROUP BY contact_id`` pass over the activities (the yardstick),
then: a catch-up tick over ``--catch-up-days`` days, ``--days`` daily ticks (the first is
the steady state: a weekday, so every sequence has an occurrence; tier (a)'s heavy day, a
step due for most enrolments, is the day after a large day 1: ``--catch-up-days 1
--days 2``), and a replay of the last as_of (nothing to do). ``--near-empty`` and
``--one-instant`` shape the sequences (bench/generate.py): the per-sequence overhead case
is ``--near-empty --one-instant --compare 10,200``. Each tick is ``Project.run`` on the
bench's connection, the production path: compile, lock the connection down, tick;
``seconds`` is all of it, ``compile_seconds`` its first part. It prints one JSON line per
tick (seconds, occurrences, per-phase seconds, counts) and a summary per count: the first
daily tick's seconds, the arg_max seconds, the ratio of the catch-up and of each daily tick
to it, and the process's peak RSS; finally the ratio of the daily tick of the largest to
the smallest ``--compare`` count.
Ratios are always taken within one invocation (same machine load).

Tier (d), ``--incremental DAYS``: one database ticked day by day for DAYS days (the
production path), another replaying the same DAYS from an empty state in one catch-up tick;
prints the last daily tick, the replay and their ratio (target ≥ 20×), and checks both made
identical decisions (enrolments and actions):

    .venv/bin/python bench/tick_bench.py --incremental 60
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from generate import VERSION, generate  # noqa: E402

from pipelines.db import connect  # noqa: E402
from pipelines.project import Project  # noqa: E402

LOAD = """
alter table contacts add column if not exists lead_score integer;
alter table accounts add column if not exists industry varchar;
alter table accounts add column if not exists employees integer;
insert into accounts by name select * from read_parquet('{ws}/imports/accounts.parquet');
insert into contacts by name select * from read_parquet('{ws}/imports/contacts.parquet');
insert into activities by name select * from read_parquet('{ws}/imports/activities.parquet');
"""

ARG_MAX = """
select count(*), count(last_type) from (
    select contact_id, arg_max(type, occurred_at) as last_type
    from activities
    group by contact_id
)
"""


def _timed_tick(con, project: Project, as_of: dt.datetime, label: str) -> dict:
    """One ``Project.run`` on ``con``: the production path (compile, lock down, tick)."""
    started = time.perf_counter()
    result = project.run(as_of, con=con, allow_future=True)
    seconds = time.perf_counter() - started
    assert not result.problems, [str(e) for e in result.problems]
    stats = result.report.stats()
    row = {
        "tick": label,
        "as_of": as_of.isoformat(),
        "seconds": round(seconds, 3),
        "compile_seconds": round(result.compile_seconds, 3),
        "occurrences": stats["occurrences"],
        "entries": stats["entries"],
        "exits": sum(stats["exits"].values()),
        "actions": sum(stats["actions"].values()),
        "phases": {k: round(v, 2) for k, v in stats["seconds"].items()},
    }
    print(json.dumps(row), flush=True)
    return row


def _workspace(args, sequences: int) -> Path:
    shape = {"near_empty": args.near_empty, "one_instant": args.one_instant}
    suffix = "".join(f"-{k.replace('_', '-')}" for k, on in shape.items() if on)
    root = HERE / "data" / f"ws-{args.contacts}-{sequences}{suffix}"
    marker = root / "GENERATOR"
    if not marker.exists() or marker.read_text(encoding="utf-8") != VERSION:
        for stale in (root / "sequences").glob("*.yaml"):
            stale.unlink()
        generate(root, args.contacts, sequences, args.start, 14, **shape)
    return root


def _fresh_db(name: str, threads: int):
    db = HERE / "out" / f"{name}.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    for stale in (db, db.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    con = connect(db)
    con.execute(f"set threads = {int(threads)}")
    return db, con


DECISIONS = (
    "select 'e', sequence, contact_id, null, enrolled_on::varchar, status, exit_reason,"
    " exited_on::varchar from enrollments union all "
    "select 'a', sequence, contact_id, step, occurrence_on::varchar, decided_status, action,"
    " day::varchar from actions order by all"
)


def incremental(args) -> dict:
    """Tier (d): a daily tick after DAYS days of history vs replaying the DAYS at once."""
    root = _workspace(args, args.sequences)
    base = dt.datetime.combine(args.start, dt.time(0))
    db, con = _fresh_db(f"incremental-{args.contacts}-{args.sequences}", args.threads)
    con.execute(LOAD.format(ws=root.resolve()))
    project = Project(root, db_path=db)
    daily = []
    for day in range(1, args.incremental + 1):
        daily.append(_timed_tick(con, project, base + dt.timedelta(days=day), f"day {day}"))
    kept = con.execute(DECISIONS).fetchall()
    con.close()
    db, con = _fresh_db(f"replay-{args.contacts}-{args.sequences}", args.threads)
    con.execute(LOAD.format(ws=root.resolve()))
    project = Project(root, db_path=db)
    until = base + dt.timedelta(days=args.incremental)
    replay = _timed_tick(con, project, until, f"replay {args.incremental} days")
    replayed = con.execute(DECISIONS).fetchall()
    con.close()
    summary = {
        "tier": "incremental",
        "contacts": args.contacts,
        "sequences": args.sequences,
        "days": args.incremental,
        "last_daily_seconds": daily[-1]["seconds"],
        "replay_seconds": replay["seconds"],
        "replay_over_daily": round(replay["seconds"] / daily[-1]["seconds"], 1),
        "identical_decisions": kept == replayed,
        "decisions": len(kept),
        "peak_rss_mib": _peak_rss_mib(),
    }
    print(json.dumps(summary), flush=True)
    if kept != replayed:
        raise SystemExit("the daily ticks and the replay decided differently")
    return summary


def _peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def scenario(args, sequences: int) -> dict:
    """One sequence count in this process: load, yardstick, catch-up, daily, replay."""
    root = _workspace(args, sequences)
    db, con = _fresh_db(f"tick-{args.contacts}-{sequences}", args.threads)
    if args.checkpoint_threshold:
        # DuckDB checkpoints at a commit once the WAL exceeds this (default 16MB); each
        # checkpoint rewrites the primary-key indexes (actions!). Off by default: the engine's
        # connection (db.connect) does not set it.
        con.execute("set checkpoint_threshold = ?", [args.checkpoint_threshold])
    started = time.perf_counter()
    con.execute(LOAD.format(ws=root.resolve()))
    print(json.dumps({"load_seconds": round(time.perf_counter() - started, 2)}), flush=True)
    arg_max = []
    for _ in range(3):  # best of 3: the yardstick should not be inflated by a cold cache
        started = time.perf_counter()
        con.execute(ARG_MAX).fetchall()
        arg_max.append(time.perf_counter() - started)
    project = Project(root, db_path=db)
    base = dt.datetime.combine(args.start, dt.time(0))
    catch_up = base + dt.timedelta(days=args.catch_up_days)
    first = _timed_tick(con, project, catch_up, f"catch-up {args.catch_up_days} days")
    days = []
    for k in range(1, args.days + 1):  # the daily ticks after it (tier a: steady, heavy)
        at = catch_up + dt.timedelta(days=k)
        days.append(_timed_tick(con, project, at, "daily" if k == 1 else f"daily +{k}"))
    daily = days[0]
    _timed_tick(con, project, at, "replay")
    counts = con.execute(
        "select (select count(*) from enrollments), (select count(*) from actions), "
        "(select count(*) from activities)"
    ).fetchone()
    con.close()
    summary = {
        "sequences": sequences,
        "contacts": args.contacts,
        "activities": counts[2],
        "enrollments": counts[0],
        "actions": counts[1],
        "daily_seconds": daily["seconds"],
        "daily_occurrences": daily["occurrences"],
        "arg_max_seconds": round(min(arg_max), 3),
        "daily_over_arg_max": round(daily["seconds"] / min(arg_max), 2),
        "catch_up_over_arg_max": round(first["seconds"] / min(arg_max), 2),
        "days_over_arg_max": [
            {
                "as_of": d["as_of"][:10],
                "actions": d["actions"],
                "ratio": round(d["seconds"] / min(arg_max), 2),
            }
            for d in days
        ],  # fmt: skip
        "peak_rss_mib": _peak_rss_mib(),
    }
    print(json.dumps(summary), flush=True)
    return summary


def _in_child(args, sequences: int) -> dict:
    """Run one scenario in a fresh process, so its peak RSS is its own."""
    cmd = [
        sys.executable, __file__, "--only", str(sequences), "--contacts", str(args.contacts),
        "--catch-up-days", str(args.catch_up_days), "--start", args.start.isoformat(),
        "--threads", str(args.threads), "--checkpoint-threshold", args.checkpoint_threshold,
        "--days", str(args.days),
    ] + ["--near-empty"] * args.near_empty + ["--one-instant"] * args.one_instant  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    lines = out.strip().splitlines()
    for line in lines[:-1]:
        print(f"  [{sequences}] {line}", flush=True)
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--sequences", type=int, default=10)
    parser.add_argument(
        "--compare",
        default="10,40",
        help="comma-separated sequence counts; '' to skip (the issue's target: 10,200)",
    )
    parser.add_argument("--catch-up-days", type=int, default=3)
    parser.add_argument(
        "--days", type=int, default=1, help="daily ticks after the catch-up (tier a: 2 or more)"
    )
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 3, 2))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--checkpoint-threshold",
        default="",
        help="e.g. 1GB: DuckDB's checkpoint_threshold for the run (default: DuckDB's own)",
    )
    parser.add_argument(
        "--near-empty",
        action="store_true",
        help="every audience also requires lead_score = 100, which matches nobody",
    )
    parser.add_argument(
        "--one-instant",
        action="store_true",
        help="every sequence at 09:00 UTC, weekends included: one instant group per day",
    )
    parser.add_argument(
        "--incremental", type=int, default=0, metavar="DAYS", help="tier d: daily vs replay"
    )
    parser.add_argument("--only", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.incremental:
        incremental(args)
        return
    if args.only is not None:
        scenario(args, args.only)
        return
    counts = [args.sequences] + [int(c) for c in args.compare.split(",") if c.strip()]
    results = {}
    for n in dict.fromkeys(counts):
        results[n] = _in_child(args, n)
        print(json.dumps(results[n]), flush=True)
    main_run = results[args.sequences]
    final = {
        "contacts": args.contacts,
        "sequences": args.sequences,
        "daily_seconds": main_run["daily_seconds"],
        "arg_max_seconds": main_run["arg_max_seconds"],
        "daily_over_arg_max": main_run["daily_over_arg_max"],
        "peak_rss_mib": max(r["peak_rss_mib"] for r in results.values()),
    }
    compared = [int(c) for c in args.compare.split(",") if c.strip()]
    if len(compared) >= 2:
        low, high = min(compared), max(compared)
        final[f"daily_{high}_over_{low}_sequences"] = round(
            results[high]["daily_seconds"] / results[low]["daily_seconds"], 2
        )
    print(json.dumps({"summary": final}), flush=True)


if __name__ == "__main__":
    main()
