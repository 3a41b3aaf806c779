"""Ingest (with its quality checks) against DuckDB's own ``read_csv``, in one run.

    .venv/bin/python bench/ingest_bench.py --contacts 1000000 --activities 10000000

Generates seeded CSVs with DuckDB (COPY TO), then times, each in its own process and into a
fresh database file (each file alone, then both in one process as ``sequencer ingest``
does), with a ``checkpoint`` at the end so all is on disk: ``create table t as select *
from read_csv(file)`` (the baseline); ``ingest_file`` without the Great Expectations suite;
and ``ingest_file`` with it (the CLI's ingest: GX imported cold, run on its bounded sample).
Prints seconds, rows/s, ingest/read_csv and each process's peak RSS. Ratios are measured in
the same run: the machine is shared, absolute times drift.
Figures: docs/decisions.md, "Ingest at DuckDB speed (issue 11)".
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CONTACTS_SQL = """
copy (
    select
        'c' || i as contact_id,
        'user' || i || '@example' || (i % 97) || '.com' as email,
        'First' || (i % 1000) as first_name,
        'Last, ' || (i % 5000) as last_name,
        'a' || (i % 50000) as account_id,
        'u' || (i % 50) as owner_id,
        (['America/New_York', 'Europe/Paris', 'Asia/Tokyo', ''])[1 + i % 4] as timezone,
        (i % 20 = 0)::varchar as unsubscribed,
        strftime(timestamp '2025-01-01' + to_seconds(i % 31536000), '%Y-%m-%dT%H:%M:%SZ')
            as created_at,
        strftime(timestamp '2026-01-01' + to_seconds((random() * 1e6)::bigint),
            '%Y-%m-%dT%H:%M:%S+00:00') as updated_at,
        (random() * 100)::int as lead_score,
    from range($n) as t(i)
) to '{path}' (header, delimiter ',')
"""

ACTIVITIES_SQL = """
copy (
    select
        'act' || i as activity_id,
        'c' || (hash(i) % $contacts::ubigint) as contact_id,
        (['email_sent', 'email_opened', 'email_clicked', 'email_replied', 'call_outgoing',
          'meeting', 'sales_activity:lunch'])[(1 + hash(i * 7) % 7)::bigint] as type,
        strftime(timestamp '2026-01-01' + to_seconds((hash(i * 3) % 8000000)::bigint),
            '%Y-%m-%dT%H:%M:%SZ') as occurred_at,
        'seq' || (i % 20) as sequence,
        's' || (i % 5) as step,
        'm' || i as message_id,
    from range($n) as t(i)
) to '{path}' (header, delimiter ',')
"""


def generate(out: Path, contacts: int, activities: int) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    c_path = out / f"contacts_{contacts}.csv"
    a_path = out / f"activities_{activities}.csv"
    con = duckdb.connect()
    con.execute("select setseed(0.42)")
    if not c_path.exists():
        con.execute(CONTACTS_SQL.format(path=c_path), {"n": contacts})
    if not a_path.exists():
        con.execute(ACTIVITIES_SQL.format(path=a_path), {"n": activities, "contacts": contacts})
    con.close()
    return c_path, a_path


def fresh(out: Path, name: str) -> Path:
    db = out / f"{name}.duckdb"
    for p in (db, db.with_suffix(".duckdb.wal")):
        p.unlink(missing_ok=True)
    return db


def one(mode: str, paths: list[Path], db: Path) -> dict:
    """One measurement in this process (every file into one database, in order): seconds,
    and this process's peak RSS."""
    start = time.perf_counter()
    if mode == "read_csv":
        con = duckdb.connect(str(db))
        for i, path in enumerate(paths):
            con.execute(f"create table t{i} as select * from read_csv($1)", [str(path)])
    else:
        from pipelines.db import connect
        from pipelines.ingest.load import ingest_file

        con = connect(db)
        start = time.perf_counter()  # the schema is not the file's cost
        for path in paths:
            r = ingest_file(con, path, validate_with_gx=mode == "ingest+GX")
            assert r.loaded == r.rows and r.quarantined == 0, r
    con.execute("checkpoint")
    elapsed = time.perf_counter() - start
    con.close()
    return {
        "seconds": elapsed,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(mode: str, paths: list[Path], out: Path) -> dict:
    db = fresh(out, "bench_" + mode.replace("+", "_"))
    files = [str(p) for p in paths]
    proc = subprocess.run(
        [sys.executable, __file__, "--one", mode, "--db", str(db), "--file", *files],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode:
        sys.exit(f"{mode} of {', '.join(p.name for p in paths)} failed:\n{proc.stderr}")
    fresh(out, "bench_" + mode.replace("+", "_"))
    return json.loads(proc.stdout.strip().splitlines()[-1])


MODES = ("read_csv", "ingest", "ingest+GX")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--no-gx", action="store_true", help="skip the run with GX")
    parser.add_argument("--one", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.file, args.db)))
        return

    start = time.perf_counter()
    paths = generate(args.out, args.contacts, args.activities)
    print(f"generated in {time.perf_counter() - start:.1f}s: {', '.join(map(str, paths))}")
    modes = MODES[:2] if args.no_gx else MODES
    print(f"{'file':<28}{'rows':>11}" + "".join(f"{m:>26}" for m in modes) + "   ratio")
    rows = [args.contacts, args.activities]
    batches = [([p], p.name, n) for p, n in zip(paths, rows, strict=True)]
    batches.append((paths, "both, one process (CLI)", sum(rows)))
    for batch, name, n in batches:
        got = {m: measure(m, batch, args.out) for m in modes}
        cells = "".join(
            f"{got[m]['seconds']:7.2f}s {n / got[m]['seconds'] / 1e6:5.2f}M/s "
            f"{got[m]['rss_mib']:5.0f}MiB"
            for m in modes
        )
        ratio = got[modes[-1]]["seconds"] / got["read_csv"]["seconds"]
        print(f"{name:<28}{n:>11}{cells}{ratio:7.2f}x", flush=True)
    print(f"ratio = {modes[-1]} time / read_csv time (target <= 2); MiB = the process's peak RSS")


if __name__ == "__main__":
    main()
