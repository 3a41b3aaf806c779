"""The ``sequencer`` command line (SPEC 8).

Every command takes ``--project DIR`` (default ``.``) and ``--db PATH`` (default
``DIR/.sequencer/sequencer.duckdb``) and acts as a user given by ``--user U`` or
``SEQUENCER_USER``; with neither it acts as the operator with full access (the
scheduler's case). Exit codes: 0 ok, 1 a problem in the input (one line on stderr per
problem), 2 bad usage, 3 the database is held by another run, 4 permission denied.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable
from pathlib import Path

from pipelines import db
from pipelines.errors import DatabaseBusy, ErrorList, PermissionDenied, SequencerError

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_BUSY, EXIT_DENIED = 0, 1, 2, 3, 4
COMMON_EPILOG = (
    "Acts as --user U or $SEQUENCER_USER; with neither, as the operator (full access, the "
    "scheduler's case)."
)


class Context:
    """What every command needs: the project, the database path and the acting user."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.project = Path(args.project).resolve()
        self.db_path = Path(args.db) if args.db else db.default_db_path(self.project)
        self.user = args.user or os.environ.get("SEQUENCER_USER") or None

    def connect(self, *, read_only: bool = False):
        return db.connect(self.db_path, read_only=read_only)

    def workspace(self, *, strict: bool = False):
        from pipelines.workspace import load_workspace

        return load_workspace(self.project, strict=strict)

    def actor(self, ws):
        from pipelines.scope import resolve_actor

        return resolve_actor(ws, self.user)


def parse_timestamp(text: str) -> dt.datetime:
    """An ISO-8601 instant as naive UTC; no offset means UTC (SPEC 3).

    >>> parse_timestamp("2026-03-02T09:30:00-05:00")
    datetime.datetime(2026, 3, 2, 14, 30)
    """
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# --- commands ------------------------------------------------------------------------------


def cmd_ingest(ctx: Context, args: argparse.Namespace) -> int:
    from pipelines.ingest import ingest_files

    paths = [Path(p) for p in args.files] or sorted(
        p for p in (ctx.project / "imports").glob("*") if p.is_file()
    )
    if not paths:
        raise SequencerError("no files to ingest (give FILES or drop them into imports/)")
    con = ctx.connect()
    try:
        print(f"{'file':<40} {'entity':<11} {'loaded':>8} {'updated':>8} {'quarantined':>11}")
        # ingest_files loads accounts, then contacts, then activities (activities given by
        # email are matched to contacts loaded in the same call)
        for r in ingest_files(con, paths, tag=args.tag):
            note = "  (already ingested: nothing changed)" if r.skipped else ""
            print(
                f"{Path(r.file).name:<40} {r.entity:<11} {r.loaded:>8} {r.updated:>8} "
                f"{r.quarantined:>11}{note}"
            )
    finally:
        con.close()
    return EXIT_OK


def _compile(ctx: Context, ws):
    from pipelines.compiled import compile_workspace
    from pipelines.compiler import ConditionSchema

    con = ctx.connect()
    try:
        schema = ConditionSchema.from_database(con)
    finally:
        con.close()
    return compile_workspace(ws, schema)


def _no_contacts_yet(ctx: Context) -> bool:
    con = ctx.connect()
    try:
        return con.execute("select count(*) from contacts").fetchone()[0] == 0
    finally:
        con.close()


def cmd_validate(ctx: Context, args: argparse.Namespace) -> int:
    from pipelines.scope import visible_sequences

    ws = ctx.workspace()
    actor = ctx.actor(ws)
    names = {s.name for s in visible_sequences(ws, actor)}
    compilation = _compile(ctx, ws)
    for err in compilation.errors:
        if err.location.sequence is None or err.location.sequence in names:
            print(f"error: {err}", file=sys.stderr)
    for name in sorted(names & set(compilation.sequences)):
        c = compilation.sequences[name]
        n_conditions = len(c.views) + len(c.where) + len(c.exit_where)
        n_conditions += sum(len(v) for v in c.steps.values())
        print(
            f"ok  {name:<24} {c.file}  ({len(c.sequence.steps)} steps, {n_conditions} conditions)"
        )
    bad = [
        e for e in compilation.errors if e.location.sequence in names or e.location.sequence is None
    ]
    if bad:
        print(f"{len(bad)} problem(s) found", file=sys.stderr)
        if _no_contacts_yet(ctx):
            print(
                "hint: no contacts ingested yet, so custom columns are unknown: run "
                "`sequencer ingest` first",
                file=sys.stderr,
            )
        return EXIT_INPUT
    return EXIT_OK


def cmd_sequences(ctx: Context, args: argparse.Namespace) -> int:
    from pipelines.scope import visible_sequences

    ws = ctx.workspace()
    actor = ctx.actor(ws)
    print(f"# sequences visible to {actor.describe()}")
    for seq in visible_sequences(ws, actor):
        when = f"{seq.schedule.time} {seq.schedule.timezone}"
        print(
            f"{seq.name:<24} owner={seq.owner:<8} {seq.type:<8} "
            f"record={seq.audience.record:<8} steps={len(seq.steps):<3} {when}"
        )
    for problem in ws.problems:
        print(f"warning: {problem}", file=sys.stderr)
    return EXIT_OK


def cmd_preview(ctx: Context, args: argparse.Namespace) -> int:
    from pipelines.preview import preview_audience
    from pipelines.scope import require_sequence

    ws = ctx.workspace()
    actor = ctx.actor(ws)
    seq = require_sequence(ws, actor, args.sequence)
    compilation = _compile(ctx, ws)
    problems = [e for e in compilation.errors if e.location.sequence == seq.name]
    if problems:
        raise ErrorList(problems)
    compiled = compilation.sequences[seq.name]
    as_of = parse_timestamp(args.as_of) if args.as_of else utc_now()
    con = ctx.connect()
    try:
        db.lock_down(con)
        p = preview_audience(con, compiled, as_of, sample_size=args.sample)
    finally:
        con.close()
    print(
        f"sequence {seq.name} (owner {seq.owner}, {seq.type}, record {seq.audience.record}) "
        f"evaluated at {p.occurrence_at:%Y-%m-%d %H:%M}Z (local date {p.occurrence_on})"
    )
    if p.audience is None:
        print("audience: none (no views or conditions: manual enrolment only)")
    else:
        print(f"audience: {p.audience} of {p.contacts} contacts")
    for label, kept in p.kept_by.items():
        print(f"  {kept:>8} kept by {label}")
    if p.sample:
        print("sample:")
        for row in p.sample:
            name = " ".join(str(x) for x in (row["first_name"], row["last_name"]) if x)
            email, account = row["email"] or "-", row["account"] or ""
            print(f"  {row['contact_id']:<12} {email:<36} {name:<24} {account}")
    print("(nothing was written)")
    return EXIT_OK


# --- parser --------------------------------------------------------------------------------

COMMANDS: dict[str, tuple[Callable[[Context, argparse.Namespace], int], str, str]] = {
    "ingest": (
        cmd_ingest,
        "Load contact, account and activity files into the database; bad rows go to quarantine.",
        "sequencer ingest --tag 'SDR march' imports/contacts_march.csv imports/activities.jsonl",
    ),
    "validate": (
        cmd_validate,
        "Check every sequence file: owners, permissions, templates, views and SQL conditions.",
        "sequencer validate --project .",
    ),
    "sequences": (
        cmd_sequences,
        "List the sequences the acting user may see (all for admins and the operator).",
        "sequencer sequences --user alice",
    ),
    "preview": (
        cmd_preview,
        "Show a sequence's audience, how many each condition keeps and a sample; writes nothing.",
        "sequencer preview outbound-q1 --user alice",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--project", default=".", help="workspace directory (default: .)")
    common.add_argument("--db", help="DuckDB file (default: PROJECT/.sequencer/sequencer.duckdb)")
    common.add_argument("--user", help="act as this user (default: $SEQUENCER_USER or operator)")
    parser = argparse.ArgumentParser(
        prog="sequencer",
        description="Sequencer: sales sequences as files, run set-based on DuckDB.",
        epilog=COMMON_EPILOG,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, summary, example) in COMMANDS.items():
        p = sub.add_parser(
            name,
            parents=[common],
            help=summary,
            description=summary,
            epilog=f"example: {example}\n\n{COMMON_EPILOG}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_arguments(name, p)
    return parser


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name == "ingest":
        p.add_argument("files", nargs="*", help="files to ingest (default: everything in imports/)")
        p.add_argument("--tag", help="stamp import_name = TAG on every contact and account row")
    elif name == "preview":
        p.add_argument("sequence", help="the sequence name")
        p.add_argument("--as-of", help="evaluate at this instant (ISO-8601; default: now)")
        p.add_argument("--sample", type=int, default=10, help="sample size (default: 10)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = COMMANDS[args.command][0]
    try:
        return handler(Context(args), args)
    except DatabaseBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except PermissionDenied as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DENIED
    except ErrorList as exc:
        for err in exc.errors:
            print(f"error: {err}", file=sys.stderr)
        return EXIT_INPUT
    except SequencerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT


if __name__ == "__main__":
    sys.exit(main())
