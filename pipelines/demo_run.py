"""``make demo``: generate the demo data, ingest it, validate and preview every sequence.

Each phase calls the same ``sequencer`` commands a user would type, so the demo shows the
real product path.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from pipelines import cli, db
from pipelines.demo import generate


def step(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def run(argv: list[str]) -> None:
    print(f"$ sequencer {shlex.join(argv)}", flush=True)
    code = cli.main(argv)
    if code != cli.EXIT_OK:
        sys.exit(f"demo stopped: `sequencer {' '.join(argv)}` exited with {code}")


def show_quarantine(db_path: Path) -> None:
    con = db.connect(db_path, read_only=True)
    try:
        rows = con.execute(
            "select file, line, reason from quarantine order by file, line"
        ).fetchall()
    finally:
        con.close()
    print(f"quarantine holds {len(rows)} row(s):")
    for file, line, reason in rows:
        print(f"  {Path(file).name}:{line}  {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", default=".")
    parser.add_argument("--db", default=".sequencer/demo.duckdb")
    args = parser.parse_args()
    project = Path(args.project)
    db_path = Path(args.db)
    started = time.monotonic()
    common = ["--project", str(project), "--db", str(db_path)]
    if db_path.exists():
        db_path.unlink()  # a fresh demo every time
    step("1. generate demo imports (seeded)")
    for name, path in generate(project / "imports").items():
        print(f"wrote {path} ({name})")
    step("2. ingest (bad rows go to quarantine)")
    files = [str(project / "imports" / f"{n}.csv") for n in ("accounts", "contacts", "activities")]
    run(["ingest", *common, "--tag", "demo import", *files])
    show_quarantine(db_path)
    step("3. validate every sequence")
    run(["validate", *common])
    step("4. sequences per user")
    run(["sequences", *common, "--user", "alice"])
    run(["sequences", *common])
    step("5. preview each sequence (nothing is written)")
    for name in ("outbound-q1", "nurture-2026", "abm-enterprise"):
        run(["preview", name, *common, "--as-of", "2026-01-05T15:00:00Z", "--sample", "3"])
    print(f"\ndemo finished in {time.monotonic() - started:.1f}s; database: {db_path}")


if __name__ == "__main__":
    main()
