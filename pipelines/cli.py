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
    from pipelines.tick import preview_occurrence

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
        nxt = preview_occurrence(con, ws, compilation, seq.name, as_of)
        # the audience as the next occurrence will see it (now() = its instant)
        at = nxt.get("occurrence_at") or as_of
        p = preview_audience(con, compiled, at, sample_size=args.sample)
    finally:
        con.close()
    print(
        f"sequence {seq.name} (owner {seq.owner}, {seq.type}, record {seq.audience.record}) "
        f"evaluated at {p.occurrence_at:%Y-%m-%d %H:%M}Z (local date {p.occurrence_on})"
    )
    if p.audience is None:
        print("audience: none (no views or conditions: manual enrolment only)")
    else:
        print(f"audience: {p.audience} of {p.contacts} contacts (enrolled or not)")
    for label, kept in p.kept_by.items():
        print(f"  {kept:>8} kept by {label}")
    if p.sample:
        print("sample:")
        for row in p.sample:
            name = " ".join(str(x) for x in (row["first_name"], row["last_name"]) if x)
            email, account = row["email"] or "-", row["account"] or ""
            print(f"  {row['contact_id']:<12} {email:<36} {name:<24} {account}")
    print_next_occurrence(nxt)
    print("(nothing was written)")
    return EXIT_OK


def print_next_occurrence(nxt: dict) -> None:
    if nxt.get("occurrence_at") is None:
        print("next occurrence: none in the next 14 days")
        return
    exits = ", ".join(f"{k} {v}" for k, v in sorted(nxt["exits"].items())) or "none"
    print(
        f"next occurrence {nxt['occurrence_on']} ({nxt['occurrence_at']:%H:%M}Z) would: "
        f"enter {nxt['entries']}, exit {exits}"
    )
    for step, counts in nxt["steps"].items():
        decided = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing"
        print(f"  step {step:<16} {decided}")


def cmd_send(ctx: Context, args: argparse.Namespace) -> int:
    from pipelines.deliver import list_unknown, resolve_unknown, send_due

    ws = ctx.workspace()
    if not ctx.actor(ws).is_operator and not ws.users.can(ctx.user or "", "admin"):
        raise PermissionDenied("send and its review are for the operator or an admin")
    con = ctx.connect()
    try:
        if args.mark:
            key, outcome = args.mark
            resolve_unknown(con, key, outcome)
            print(f"{key}: marked {outcome}")
            return EXIT_OK
        if args.review:
            rows = list_unknown(con)
            print(f"{len(rows)} action(s) in status unknown (claimed, outcome not recorded):")
            for r in rows:
                print(
                    f"  {r['idempotency_key']}  {r['action']:<6} to {r['contact_id']}  "
                    f"message-id {r['message_id'] or '-'}  claimed {r['claimed_at']}"
                )
            if rows:
                print("check the mailbox's sent folder, then: sequencer send --mark KEY sent|retry")
            return EXIT_OK
        as_of = parse_timestamp(args.as_of) if args.as_of else utc_now()
        report = send_due(con, ws, as_of)
    finally:
        con.close()
    stats = ", ".join(f"{k} {v}" for k, v in report.stats().items())
    print(f"send at {as_of:%Y-%m-%d %H:%M}Z: {stats}")
    for key, status, error in report.problems[: args.show]:
        print(f"  {status:<8} {key}: {error}")
    return EXIT_OK


def cmd_tasks(ctx: Context, args: argparse.Namespace) -> int:
    from pipelines.tasks import complete_task, list_tasks

    ws = ctx.workspace()
    actor = ctx.actor(ws)
    con = ctx.connect()
    try:
        if args.verb == "done":
            if not args.task_id:
                raise SequencerError("tasks done needs a TASK_ID")
            owner = con.execute(
                "select owner_id from tasks where task_id = ?", [args.task_id]
            ).fetchone()
            if owner and not (actor.is_operator or owner[0] == actor.user_id):
                raise PermissionDenied(f"task {args.task_id!r} belongs to {owner[0]!r}")
            complete_task(con, args.task_id, utc_now())
            print(f"done: {args.task_id}")
            return EXIT_OK
        user = args.user or ctx.user
        if not user:
            raise SequencerError("tasks lists one user's queue: give --user U")
        rows = list_tasks(con, user, include_done=args.all)
    finally:
        con.close()
    print(f"{len(rows)} {'task(s)' if args.all else 'open task(s)'} for {user}")
    for t in rows:
        state = "done" if t["done"] else "open"
        print(
            f"  {t['due_on']}  {state:<4} {t['kind']:<15} {t['contact_id']:<10} {t['title'] or ''}"
        )
        print(f"      id {t['task_id']}")
    return EXIT_OK


def cmd_metrics(ctx: Context, args: argparse.Namespace) -> int:
    from pipelines.metrics import DEFAULT_SNAPSHOT, build_metrics, metrics_table, publish_snapshot
    from pipelines.scope import require_sequence, sees_all, visible_sequences

    ws = ctx.workspace()
    actor = ctx.actor(ws)
    if args.sequence and (args.sequence in ws.sequences or not sees_all(ws, actor)):
        require_sequence(ws, actor, args.sequence)
    only = None if sees_all(ws, actor) else [s.name for s in visible_sequences(ws, actor)]
    con = ctx.connect()
    try:
        build_metrics(con)
        print(metrics_table(con, args.sequence, only=only))
        snapshot = publish_snapshot(ctx.db_path, ctx.project / DEFAULT_SNAPSHOT)
    finally:
        con.close()
    print(f"metrics rebuilt; snapshot for notebooks and readers: {snapshot}")
    return EXIT_OK


def _compile_valid(ctx: Context, ws):
    """Compile the workspace; report (not raise) sequences left out because they are broken."""
    compilation = _compile(ctx, ws)
    for err in compilation.errors:
        print(f"warning: left out of this run: {err}", file=sys.stderr)
    return compilation


def cmd_run(ctx: Context, args: argparse.Namespace) -> int:
    from pipelines.tick import run_tick

    ws = ctx.workspace()
    if not ctx.actor(ws).is_operator and not ws.users.can(ctx.user or "", "admin"):
        raise PermissionDenied("run ticks every sequence: it is for the operator or an admin")
    compilation = _compile_valid(ctx, ws)
    as_of = parse_timestamp(args.as_of) if args.as_of else utc_now()
    con = ctx.connect()
    try:
        db.lock_down(con)
        report = run_tick(con, ws, compilation, as_of)
    finally:
        con.close()
    stats = report.stats()
    exits = ", ".join(f"{k} {v}" for k, v in sorted(stats["exits"].items())) or "none"
    actions = ", ".join(f"{k} {v}" for k, v in sorted(stats["actions"].items())) or "none"
    seconds = sum(stats["seconds"].values())
    print(
        f"run {report.run_id[:8]} as of {as_of:%Y-%m-%d %H:%M}Z: "
        f"{stats['occurrences']} occurrence(s), {stats['entries']} entries, exits: {exits}; "
        f"actions: {actions} ({seconds:.2f}s)"
    )
    if compilation.errors:
        # the others ran; the broken ones miss these occurrences for good (docs/decisions.md)
        print(f"{len(compilation.errors)} problem(s): fix them and `validate`", file=sys.stderr)
        return EXIT_INPUT
    return EXIT_OK


def _enrolment_command(ctx: Context, args: argparse.Namespace, fn) -> int:
    from pipelines.scope import require_sequence

    ws = ctx.workspace()
    require_sequence(ws, ctx.actor(ws), args.sequence)
    con = ctx.connect()
    try:
        outcomes = fn(con, ws, args.sequence, args.contact_ids, utc_now())
    finally:
        con.close()
    for contact_id, outcome in outcomes.items():
        print(f"{contact_id:<16} {outcome}")
    return EXIT_OK


def cmd_enroll(ctx: Context, args: argparse.Namespace) -> int:
    from pipelines.enrollment import enroll

    return _enrolment_command(ctx, args, enroll)


def cmd_unenroll(ctx: Context, args: argparse.Namespace) -> int:
    from pipelines.enrollment import unenroll

    return _enrolment_command(ctx, args, unenroll)


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
    "run": (
        cmd_run,
        "One tick: process every occurrence due by --as-of (default now): exits, entries, steps.",
        "sequencer run --as-of 2026-03-02T15:00:00Z",
    ),
    "enroll": (
        cmd_enroll,
        "Add contacts to a sequence by hand: they enter at its next occurrence (no audience).",
        "sequencer enroll outbound-q1 C000123 C000456 --user alice",
    ),
    "unenroll": (
        cmd_unenroll,
        "Take contacts out of a sequence now (exit reason manual).",
        "sequencer unenroll outbound-q1 C000123 --user alice",
    ),
    "send": (
        cmd_send,
        "Carry out every due action exactly once: emails, tasks, SMS; --review lists unknowns.",
        "sequencer send --as-of 2026-03-02T15:00:00Z",
    ),
    "tasks": (
        cmd_tasks,
        "List a rep's open reminders and tasks, or mark one done.",
        "sequencer tasks --user alice   |   sequencer tasks done TASK_ID --user alice",
    ),
    "metrics": (
        cmd_metrics,
        "Rebuild the metrics, print per-sequence totals, publish the reader snapshot.",
        "sequencer metrics --sequence outbound-q1",
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
    elif name == "send":
        p.add_argument("--as-of", help="send as of this instant (ISO-8601; default: now)")
        p.add_argument("--review", action="store_true", help="list actions in status unknown")
        p.add_argument(
            "--mark", nargs=2, metavar=("KEY", "OUTCOME"), help="settle an unknown: sent|retry"
        )
        p.add_argument("--show", type=int, default=20, help="problems to print (default: 20)")
    elif name == "run":
        p.add_argument("--as-of", help="the tick's instant (ISO-8601; default: now)")
    elif name in ("enroll", "unenroll"):
        p.add_argument("sequence", help="the sequence name")
        p.add_argument("contact_ids", nargs="+", metavar="CONTACT_ID")
    elif name == "metrics":
        p.add_argument("--sequence", help="only this sequence (default: all you may see)")
    elif name == "tasks":
        p.add_argument("verb", nargs="?", choices=["done"], help="`done TASK_ID` marks it done")
        p.add_argument("task_id", nargs="?", help="the task to mark done")
        p.add_argument("--all", action="store_true", help="include done tasks")


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
