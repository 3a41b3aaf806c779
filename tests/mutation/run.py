"""`make mutate`: the SQL mutants, then a sample of mutmut's Python mutants, in a time box.

    python -m tests.mutation.run [--budget-seconds 1800] [--jobs 2] [--sql GLOB ...]

Prints the survivors, one line per target and, last, ``mutants: K killed of N (P%)``;
writes every verdict to ``.mutation/summary.json``. See docs/testing.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from tests.mutation.python_run import run_python
from tests.mutation.sql_run import PRIORITY, SqlRun, as_dicts, planned_files

KILLED = ("killed", "timeout")
COUNTED = (*KILLED, "survived", "no tests")
TARGET_ORDER = ("tick", "entries/exits SQL", "send batch", "outbox")
# Seconds one Python mutant takes on one worker, and the mutmut warm-up plus clean run,
# measured on the trial (docs/testing.md); they size the sample to the time left.
PY_SECONDS_PER_MUTANT = 6.0
PY_OVERHEAD_SECONDS = 240.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation.run", description=__doc__)
    parser.add_argument("--budget-seconds", type=float, default=1800.0)
    parser.add_argument("--sql-share", type=float, default=0.6, help="of the budget, at most")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once")
    parser.add_argument("--sql", nargs="*", default=list(PRIORITY), help="SQL file globs")
    parser.add_argument("--python-mutants", type=int, help="sample size (default: fits budget)")
    parser.add_argument("--no-sql", action="store_true")
    parser.add_argument("--no-python", action="store_true")
    return parser.parse_args(argv)


def score(rows: list[dict]) -> tuple[int, int]:
    counted = [r for r in rows if r["status"] in COUNTED]
    return sum(r["status"] in KILLED for r in counted), len(counted)


def fraction(killed: int, total: int) -> str:
    percent = f"{100 * killed / total:.1f}%" if total else "n/a"
    return f"{killed} killed of {total} ({percent})"


def report(rows: list[dict]) -> list[str]:
    """The survivors, one line per target, and the total, last.

    >>> rows = [
    ...     {"kind": "sql", "target": "tick", "file": "sql/a.sql", "line": 3, "status": "killed",
    ...      "id": "x", "change": "sql/a.sql:3: < → <="},
    ...     {"kind": "sql", "target": "tick", "file": "sql/a.sql", "line": 4, "status": "survived",
    ...      "id": "y", "change": "sql/a.sql:4: and b → ∅"},
    ...     {"kind": "python", "target": "outbox", "file": "p.py", "status": "not run", "id": "z"},
    ... ]
    >>> for line in report(rows):
    ...     print(line)
    survivors:
      sql/a.sql:4: and b → ∅
    tick: 1 killed of 2 (50.0%); sql 1 killed of 2 (50.0%); 0 not run
    outbox: 0 killed of 0 (n/a); python 0 killed of 0 (n/a); 1 not run
    mutants: 1 killed of 2 (50.0%)
    """
    lines = ["survivors:"]
    survivors = [r for r in rows if r["status"] in ("survived", "no tests")]
    for r in sorted(survivors, key=lambda r: (r["kind"], r["file"], r.get("line", 0))):
        note = " (no test reaches it)" if r["status"] == "no tests" else ""
        lines.append(f"  {r['file']}:{r.get('line', 0)}: {_change(r)}{note}")
    rank = {t: i for i, t in enumerate(TARGET_ORDER)}
    targets = sorted({r["target"] for r in rows}, key=lambda t: (rank.get(t, len(rank)), t))
    for target in targets:
        mine = [r for r in rows if r["target"] == target]
        kinds = [k for k in ("sql", "python") if any(r["kind"] == k for r in mine)]
        parts = [f"{k} {fraction(*score([r for r in mine if r['kind'] == k]))}" for k in kinds]
        not_run = sum(r["status"] == "not run" for r in mine)
        lines.append(f"{target}: {fraction(*score(mine))}; {', '.join(parts)}; {not_run} not run")
    lines.append(f"mutants: {fraction(*score(rows))}")
    return lines


def _change(row: dict) -> str:
    change = row.get("change", row["id"])
    prefix = f"{row['file']}:{row.get('line', 0)}: "
    return change.removeprefix(prefix)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root, start = Path.cwd(), time.monotonic()
    deadline = start + args.budget_seconds
    work = root / ".mutation"
    work.mkdir(exist_ok=True)
    log_file = work / "run.log"
    log_file.write_text("", encoding="utf-8")

    def log(message: str) -> None:
        stamp = f"[{time.monotonic() - start:6.0f}s]"
        print(stamp, message, flush=True)
        with log_file.open("a", encoding="utf-8") as f:
            f.write(f"{stamp} {message}\n")

    rows: list[dict] = []
    if not args.no_sql:
        share = 1.0 if args.no_python else args.sql_share
        sql_deadline = start + args.budget_seconds * share
        files = planned_files(root, tuple(args.sql))
        log(f"SQL: {len(files)} files, until {sql_deadline - start:.0f}s")
        rows += as_dicts(SqlRun(root, work, args.jobs, sql_deadline, log).run(files))
    if not args.no_python:
        left = deadline - time.monotonic() - PY_OVERHEAD_SECONDS
        size = args.python_mutants or max(10, int(left * args.jobs / PY_SECONDS_PER_MUTANT))
        rows += run_python(root, size, args.jobs, deadline, work / "mutmut.log", log)
    elapsed = time.monotonic() - start
    killed, total = score(rows)
    statuses = Counter(r["status"] for r in rows)
    summary = {
        "killed": killed,
        "total": total,
        "elapsed_seconds": round(elapsed),
        "budget_seconds": args.budget_seconds,
        "statuses": statuses,
        "mutants": rows,
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    log(f"done in {elapsed:.0f}s; {dict(statuses)}; summary in {work / 'summary.json'}")
    print("\n".join(report(rows)))
    return 0 if total else 1


if __name__ == "__main__":
    sys.exit(main())
