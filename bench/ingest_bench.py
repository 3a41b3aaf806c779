"""Ingest throughput against DuckDB's own ``read_csv``.

    .venv/bin/python bench/ingest_bench.py --contacts 1000000 --activities 10000000

Generates seeded CSVs with DuckDB (COPY TO), then, each into a fresh database file:
``create table t as select * from read_csv(file)`` per file (the baseline), ``ingest_file``
without Great Expectations, and ``ingest_file`` with it. Prints rows/s and ingest/read_csv.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.db import connect  # noqa: E402
from pipelines.ingest.load import ingest_file  # noqa: E402

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


def baseline(out: Path, path: Path) -> float:
    con = duckdb.connect(str(fresh(out, "bench_read_csv")))
    start = time.perf_counter()
    con.execute("create table t as select * from read_csv($1)", [str(path)])
    elapsed = time.perf_counter() - start
    con.close()
    return elapsed


def run_ingest(out: Path, paths: list[Path], gx: bool) -> list[float]:
    con = connect(fresh(out, f"bench_ingest_gx{int(gx)}"))
    times = []
    for path in paths:
        start = time.perf_counter()
        r = ingest_file(con, path, validate_with_gx=gx)
        times.append(time.perf_counter() - start)
        assert r.loaded == r.rows and r.quarantined == 0, r
    con.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--no-gx", action="store_true", help="skip the run with GX")
    args = parser.parse_args()

    start = time.perf_counter()
    paths = generate(args.out, args.contacts, args.activities)
    print(f"generated in {time.perf_counter() - start:.1f}s: {', '.join(map(str, paths))}")
    rows = [args.contacts, args.activities]
    base = [baseline(args.out, p) for p in paths]
    no_gx = run_ingest(args.out, paths, gx=False)
    with_gx = None if args.no_gx else run_ingest(args.out, paths, gx=True)

    print(f"{'file':<28}{'rows':>11}{'read_csv':>18}{'ingest':>18}{'ratio':>7}", end="")
    print(f"{'ingest+GX':>18}{'ratio':>7}" if with_gx else "")
    for i, path in enumerate(paths):
        n = rows[i]

        def cell(t: float, n: int = n) -> str:
            return f"{t:6.2f}s {n / t / 1e6:5.2f}M/s"

        line = f"{path.name:<28}{n:>11}{cell(base[i]):>18}{cell(no_gx[i]):>18}"
        line += f"{base[i] / no_gx[i]:>7.2f}"
        if with_gx:
            line += f"{cell(with_gx[i]):>18}{base[i] / with_gx[i]:>7.2f}"
        print(line)
    print("ratio = read_csv time / ingest time (throughput of ingest relative to read_csv)")


if __name__ == "__main__":
    main()
