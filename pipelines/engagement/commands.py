"""``sequencer mailbox poll|import``: who may do what, and what is printed (the argument
parsing is :mod:`pipelines.cli_args`'s, the work :mod:`.mailbox`'s and :mod:`.inbox`'s).
:func:`poll_inboxes` and :func:`import_mail` take a :class:`~pipelines.project.Project`: the
CLI, a Dagster asset and the tests share them.

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
import datetime as dt
import json
import os
import sys
from collections.abc import Iterator, Mapping
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


def poll_inboxes(
    project: Project,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    environ: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
) -> list[MailboxResult]:
    """``mailbox poll``: the acting user's inbox (the operator: every user's), loaded; one
    result per user. The one path of the CLI, the scheduler and the tests."""
    ws = project.workspace()
    actor = project.actor(ws)  # an unknown user is refused first
    with project.connection(con) as c:
        users = inbox_users(ws, actor.user_id)
        return poll(c, ws, users, os.environ if environ is None else environ, now or utc_now())


def import_mail(
    project: Project,
    paths: list[Path],
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    now: dt.datetime | None = None,
) -> list[MailboxResult]:
    """``mailbox import``: load .eml, mbox and Maildir files (the operator or an admin)."""
    ws = project.workspace()
    if not sees_all(ws, project.actor(ws)):
        raise PermissionDenied(IMPORT_REFUSED)
    with project.connection(con) as c:
        return import_files(c, paths, ws.users, now or utc_now())


def run(project: Project, args: argparse.Namespace) -> int:
    """The ``mailbox`` command; its exit code (0 ok, 1 a batch could not be read)."""
    if args.verb == "poll":
        return report(poll_inboxes(project))
    paths = [Path(f) for f in args.files]
    if not args.dry_run:
        return report(import_mail(project, paths))
    ws = project.workspace()
    project.actor(ws)  # an unknown user is refused
    failed = 0
    with _read_only(project) as con:
        for row in dry_run(con, paths, ws.users, utc_now()):
            if "error" in row:
                failed += 1
                print(f"error: {row['file']}: {row['error']}", file=sys.stderr)
            else:
                print(json.dumps(row, ensure_ascii=False))
    return 1 if failed else 0


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
