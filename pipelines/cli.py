"""The ``sequencer`` command line (SPEC 8).

Every command takes ``--project DIR`` (default ``.``) and ``--db PATH`` (default
``DIR/.sequencer/sequencer.duckdb``) and acts as a user given by ``--user U`` or
``SEQUENCER_USER``; with neither it acts as the operator with full access (the
scheduler's case). Exit codes: 0 ok, 1 a problem in the input (one line on stderr per
problem), 2 bad usage (a malformed or out-of-range argument), 3 the database is held by
another run, 4 permission denied, 5 an internal error (a bug: one line on stderr, the
traceback in ``PROJECT/.sequencer/errors.log``). No traceback reaches the terminal, and a
reader that closes the pipe early (``sequencer tasks | head``) ends the command quietly.

Each command parses its arguments, calls the :class:`~pipelines.project.Project` (which does
the work and checks permissions) and prints; nothing else happens here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import duckdb

from pipelines.cli_args import build_parser
from pipelines.cli_backtest import cmd_backtest
from pipelines.cli_desk import (
    cmd_actions,
    cmd_pause,
    cmd_resume,
    cmd_tasks,
    print_contact_outcomes,
)
from pipelines.cli_why import cmd_render, cmd_why, print_gap
from pipelines.errors import (
    DatabaseBusy,
    ErrorList,
    PermissionDenied,
    SequencerError,
    UsageError,
)
from pipelines.instants import parse_instant
from pipelines.progress import Progress
from pipelines.project import Project
from pipelines.variant_metrics import HEADER as VARIANTS_HEADER

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_BUSY, EXIT_DENIED, EXIT_INTERNAL = 0, 1, 2, 3, 4, 5


def project(args: argparse.Namespace) -> Project:
    """The project every command acts on, as ``--user`` / ``$SEQUENCER_USER`` or the operator."""
    user = args.user or os.environ.get("SEQUENCER_USER") or None
    if not Path(args.project).is_dir():
        raise UsageError(f"--project {args.project}: no such directory")
    if args.db and Path(args.db).is_dir():
        raise UsageError(f"--db {args.db}: is a directory, not a database file")
    return Project(args.project, db_path=args.db or None, user=user)


def _joined(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


# --- commands: parse → call the Project → print ----------------------------------------------


def cmd_ingest(p: Project, args: argparse.Namespace) -> int:
    results = p.ingest([Path(f) for f in args.files] or None, tag=args.tag, fmt=args.fmt)
    print(f"{'file':<40} {'entity':<11} {'loaded':>8} {'updated':>8} {'quarantined':>11}")
    for r in results:  # accounts, then contacts, then activities
        note = "  (already ingested: nothing changed)" if r.skipped else ""
        note = "  REJECTED (see below)" if r.error else note
        print(
            f"{Path(r.file).name:<40} {r.entity:<11} {r.loaded:>8} {r.updated:>8} "
            f"{r.quarantined:>11}{note}"
        )
    for r in results:
        for warning in r.notes:
            print(f"warning: {Path(r.file).name}: {warning}")
    rejected = [r for r in results if r.error]
    for r in rejected:
        print(f"error: {r.file}: rejected, nothing of it loaded: {r.error}", file=sys.stderr)
    return EXIT_INPUT if rejected else EXIT_OK


def cmd_validate(p: Project, args: argparse.Namespace) -> int:
    found = p.validate()
    for err in found.problems:
        print(f"error: {err}", file=sys.stderr)
    for c in found.compiled:
        n = len(c.views) + len(c.where) + len(c.exit_where) + sum(map(len, c.steps.values()))
        print(f"ok  {c.name:<24} {c.file}  ({len(c.sequence.steps)} steps, {n} conditions)")
    if not found.problems:
        return EXIT_OK
    print(f"{len(found.problems)} problem(s) found", file=sys.stderr)
    if found.no_contacts:
        print(
            "hint: no contacts ingested yet, so custom columns are unknown: run "
            "`sequencer ingest` first",
            file=sys.stderr,
        )
    return EXIT_INPUT


def cmd_sequences(p: Project, args: argparse.Namespace) -> int:
    actor, sequences, problems = p.sequences()
    print(f"# sequences visible to {actor.describe()}")
    for seq in sequences:
        print(
            f"{seq.name:<24} owner={seq.owner:<8} {seq.type:<8} record={seq.audience.record:<8} "
            f"steps={len(seq.steps):<3} {seq.schedule.time} {seq.schedule.timezone}"
        )
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return EXIT_OK


def cmd_preview(p: Project, args: argparse.Namespace) -> int:
    if args.render:
        return cmd_render(p, args)
    found = p.preview(args.sequence, args.as_of, sample_size=args.sample)
    seq, a = found.sequence, found.audience
    print(
        f"sequence {seq.name} (owner {seq.owner}, {seq.type}, record {seq.audience.record}) "
        f"evaluated at {a.occurrence_at:%Y-%m-%d %H:%M}Z (local date {a.occurrence_on})"
    )
    if a.audience is None:
        print("audience: none (no views or conditions: manual enrolment only)")
    else:
        print(f"audience: {a.audience} of {a.contacts} contacts (enrolled or not)")
    for label, kept in a.kept_by.items():
        print(f"  {kept:>8} kept by {label}")
    print_gap(a)
    if a.sample:
        print("sample:")
    for row in a.sample:
        name = " ".join(str(x) for x in (row["first_name"], row["last_name"]) if x)
        email, account = row["email"] or "-", row["account"] or ""
        print(f"  {row['contact_id']:<12} {email:<36} {name:<24} {account}")
    print_next_occurrence(found.next_occurrence)
    print("(nothing was written)")
    return EXIT_OK


def print_next_occurrence(nxt: dict) -> None:
    if nxt.get("occurrence_at") is None:
        print("next occurrence: none in the next 14 days")
        return
    print(
        f"next occurrence {nxt['occurrence_on']} ({nxt['occurrence_at']:%H:%M}Z) would: "
        f"enter {nxt['entries']}, exit {_joined(nxt['exits'])}"
    )
    for step, counts in nxt["steps"].items():
        decided = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing"
        print(f"  step {step:<16} {decided}")


def cmd_send(p: Project, args: argparse.Namespace) -> int:
    if args.mark:
        p.mark(*args.mark)
        print(f"{args.mark[0]}: marked {args.mark[1]}")
    elif args.review:
        print_unknown(p.review())
    elif args.requeue_held:
        n = p.requeue_held(args.sequence, args.step)
        scope = "".join(
            f" {label} {value}"
            for label, value in (("of sequence", args.sequence), ("step", args.step))
            if value
        )
        print(f"requeued {n} held action(s){scope}: they go first at the next send")
    else:
        print_send_report(p.send(args.as_of))
    return EXIT_OK


def print_send_report(report) -> None:
    """The summary line (with the deferred backlog), then one line per problem reason."""
    stats = report.stats()
    backlog = stats.pop("deferred_backlog")
    stats["deferred"] = f"{stats['deferred']} (backlog {backlog})"
    print(
        f"send at {report.as_of:%Y-%m-%d %H:%M}Z: "
        + ", ".join(f"{k} {v}" for k, v in stats.items())
    )
    for status, reason, count in report.grouped():
        print(f"  {status} {count}: {reason}")


def print_unknown(rows: list[dict]) -> None:
    print(f"{len(rows)} action(s) in status unknown (claimed, outcome not recorded):")
    for r in rows:
        print(
            f"  {r['idempotency_key']}  {r['action']:<6} to {r['contact_id']}  "
            f"message-id {r['message_id'] or '-'}  claimed {r['claimed_at']}"
        )
    if rows:
        print("check the mailbox's sent folder, then: sequencer send --mark KEY sent|retry")


def cmd_metrics(p: Project, args: argparse.Namespace) -> int:
    found = p.metrics(args.sequence, rebuild=args.rebuild)
    if found.table is None:
        print("(no metrics built yet: `sequencer metrics --rebuild` as the operator or an admin)")
        return EXIT_OK
    print("\n".join([found.table, *found.holdouts]))
    if found.verdicts:  # A/B steps (issue 13): one line per variant vs its control
        print("\n".join([VARIANTS_HEADER, *found.verdicts]))
    if found.snapshot is not None:
        print(f"metrics rebuilt; snapshot for notebooks and readers: {found.snapshot}")
        return EXIT_OK
    built = found.build
    when = f"{built.built_at:%Y-%m-%d %H:%M:%S}Z" if built.built_at else "an unknown time"
    print(f"metrics built at {when}", end="")
    if built.runs_since:
        print(f"; {built.runs_since} run(s) since: `metrics --rebuild` (operator or admin)")
    else:
        print()
    return EXIT_OK


def cmd_run(p: Project, args: argparse.Namespace) -> int:
    result = p.run(args.as_of, allow_future=args.allow_future, progress=_tick_progress)
    for err in result.problems:
        print(f"warning: left out of this run: {err}", file=sys.stderr)
    stats = result.report.stats()
    print(
        f"run {result.report.run_id[:8]} as of {result.as_of:%Y-%m-%d %H:%M}Z: "
        f"{stats['occurrences']} occurrence(s), {stats['entries']} entries, "
        f"exits: {_joined(stats['exits'])}; actions: {_joined(stats['actions'])} "
        f"({sum(stats['seconds'].values()):.2f}s)"
    )
    if result.problems:
        # the others ran; the broken ones miss these occurrences for good (docs/decisions.md)
        print(f"{len(result.problems)} problem(s): fix them and `validate`", file=sys.stderr)
        return EXIT_INPUT
    return EXIT_OK


def _tick_progress(occurrences: int) -> Progress:
    """A bar on a terminal; in a log one closing line, for a run of more than a few seconds."""
    return Progress("run", occurrences, min_seconds=5.0)


def cmd_enroll(p: Project, args: argparse.Namespace) -> int:
    outcomes = p.enroll(args.sequence, args.contact_ids, args.as_of)
    return print_contact_outcomes(outcomes, ENROLL_REFUSED)


def cmd_unenroll(p: Project, args: argparse.Namespace) -> int:
    outcomes = p.unenroll(args.sequence, args.contact_ids, args.as_of)
    return print_contact_outcomes(outcomes, UNENROLL_REFUSED)


# Outcomes that leave the contact other than asked (exit 1). Not refusals: the state asked
# for already holds (already_enrolled, already_pending, not_enrolled).
ENROLL_REFUSED = frozenset({"unknown_contact", "previously_enrolled"})
UNENROLL_REFUSED = frozenset({"unknown_contact"})


def cmd_serve(p: Project, args: argparse.Namespace) -> int:
    p.serve(args.host, args.port)
    return EXIT_OK


def cmd_mailbox(p: Project, args: argparse.Namespace) -> int:
    from pipelines.engagement import commands  # imap_tools only when the command runs

    return commands.run(p, args)


# --- commands by name ---------------------------------------------------------------------

COMMANDS: dict[str, Callable[[Project, argparse.Namespace], int]] = {
    "ingest": cmd_ingest,
    "validate": cmd_validate,
    "sequences": cmd_sequences,
    "preview": cmd_preview,
    "run": cmd_run,
    "enroll": cmd_enroll,
    "unenroll": cmd_unenroll,
    "pause": cmd_pause,
    "resume": cmd_resume,
    "send": cmd_send,
    "tasks": cmd_tasks,
    "actions": cmd_actions,
    "why": cmd_why,
    "backtest": cmd_backtest,
    "metrics": cmd_metrics,
    "serve": cmd_serve,
    "mailbox": cmd_mailbox,
}
"""Each command's handler; its arguments and help are in :mod:`pipelines.cli_args`."""


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage line, or --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return dispatch(args)
    except BrokenPipeError:
        _silence_stdout()  # the reader closed the pipe (`| head`): stop quietly
        return EXIT_OK
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not the user's input: one line, the details in a log
        log = _log_internal_error(args)
        print(
            f"error: internal error ({type(exc).__name__}: {_first_line(exc)}); details in {log}",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def dispatch(args: argparse.Namespace) -> int:
    """Run the command; every error a user can cause becomes one line and an exit code."""
    handler = COMMANDS[args.command]
    try:
        if getattr(args, "as_of", None):
            parse_instant(args.as_of)  # a malformed --as-of is bad usage, whatever the verb
        return handler(project(args), args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
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
    except duckdb.IOException as exc:  # not a database file, unreadable, disk full
        print(
            f"error: database {args.db or 'PROJECT/.sequencer'}: {_first_line(exc)}",
            file=sys.stderr,
        )
        return EXIT_INPUT


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # stdout is not a file descriptor (tests capture it)


def _log_internal_error(args: argparse.Namespace) -> Path:
    """Append the traceback to PROJECT/.sequencer/errors.log (else the temp dir)."""
    text = f"--- {dt.datetime.now(dt.UTC).isoformat()} sequencer {args.command}\n"
    text += traceback.format_exc()
    for folder in (Path(args.project) / ".sequencer", Path(os.environ.get("TMPDIR", "/tmp"))):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / "errors.log", "a", encoding="utf-8") as log:
                log.write(text)
            return folder / "errors.log"
        except OSError:
            continue
    return Path("(no writable log)")


if __name__ == "__main__":
    sys.exit(main())
