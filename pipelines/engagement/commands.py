"""``sequencer mailbox poll|import``: who may do what, and what is printed (the argument
parsing is :mod:`pipelines.cli_args`'s, the work :mod:`.mailbox`'s and :mod:`.inbox`'s).

- ``poll`` as ``--user U`` reads U's inbox; as the operator, every user's. A user whose inbox
  cannot be read (password not set, server down, login refused) is one ``error:`` line and
  exit 1; the others are read and loaded.
- ``import FILES…`` writes every user's activities: the operator or an admin, as ``ingest``.
- ``import --dry-run FILES…`` writes nothing (the database is opened read-only, or not at all
  when there is none yet): one JSON object per message and recipient on stdout; a file that
  cannot be read is an ``error:`` line on stderr (exit 1), the others are still classified.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from pipelines import db, sqlrun
from pipelines.engagement.inbox import inbox_users, poll
from pipelines.engagement.mailbox import MailboxResult, dry_run, import_files
from pipelines.errors import PermissionDenied
from pipelines.instants import utc_now
from pipelines.project import Project
from pipelines.scope import sees_all

IMPORT_REFUSED = (
    "mailbox import writes every user's activities: it is for the operator or an admin "
    "(--dry-run writes nothing and is open to every user)"
)


def run(project: Project, args: argparse.Namespace) -> int:
    """The ``mailbox`` command; its exit code (0 ok, 1 a batch could not be read)."""
    ws = project.workspace()
    actor = project.actor(ws)  # an unknown user is refused first
    now = utc_now()
    if args.verb == "poll":
        with project.connection() as con:
            users = inbox_users(ws, actor.user_id)
            return report(poll(con, ws, users, os.environ, now))
    paths = [Path(f) for f in args.files]
    if args.dry_run:
        failed = 0
        with _read_only(project) as con:
            for row in dry_run(con, paths, ws.users, now):
                if "error" in row:
                    failed += 1
                    print(f"error: {row['file']}: {row['error']}", file=sys.stderr)
                else:
                    print(json.dumps(row, ensure_ascii=False))
        return 1 if failed else 0
    if not sees_all(ws, actor):
        raise PermissionDenied(IMPORT_REFUSED)
    with project.connection() as con:
        return report(import_files(con, paths, ws.users, now))


def report(results: list[MailboxResult]) -> int:
    """One line per batch; an unreadable one is an ``error:`` line on stderr (exit 1)."""
    for r in results:
        if r.error:
            print(f"error: {r.source}: {r.error}", file=sys.stderr)
            continue
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(r.kinds.items())) or "nothing"
        print(
            f"{r.source}: {r.messages} message(s) ({kinds}): loaded {r.loaded}, "
            f"already stored {r.already}, quarantined {r.quarantined}, "
            f"not ours {r.not_ours}, sent by us {r.from_us}"
        )
        for note in r.notes:
            print(f"  note: {note}")
    return 1 if any(r.error for r in results) else 0


@contextmanager
def _read_only(project: Project) -> Iterator[duckdb.DuckDBPyConnection]:
    """The project's database read-only; with no database yet, an empty one in memory."""
    if project.db_path.exists():
        con = db.connect(project.db_path, read_only=True)
    else:
        con = duckdb.connect()
        con.execute("set python_enable_replacements = false")
        sqlrun.execute(con, "schema.sql")
    try:
        yield con
    finally:
        con.close()
