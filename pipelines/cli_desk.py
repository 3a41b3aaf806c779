"""The desk's commands (``tasks``, ``actions``, ``pause``, ``resume``): parse → call the
:class:`~pipelines.project.Project` (:mod:`pipelines.desk`) → print. Registered in
:data:`pipelines.cli.COMMANDS`; their arguments are in :mod:`pipelines.cli_args`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.errors import SequencerError, UsageError
from pipelines.outbox.tasks import TaskFilter, export_csv
from pipelines.project import Project

EXIT_OK, EXIT_INPUT, EXIT_DENIED = 0, 1, 4


def cmd_tasks(p: Project, args: argparse.Namespace) -> int:
    verb = args.verb or "list"
    if verb != "list" and not args.task_ids:
        raise UsageError(f"tasks {verb} needs at least one TASK_ID (a short id is enough)")
    if verb == "list" and args.task_ids:
        raise UsageError("tasks lists a queue: name ids only after show, done or snooze")
    if verb == "show":
        for ref in args.task_ids:
            print_task(p.task(ref))
        return EXIT_OK
    if verb == "done":
        return print_outcomes(p.complete_tasks(args.task_ids, args.as_of))
    if verb == "snooze":
        if not args.until:
            raise UsageError("tasks snooze needs --until DATE (the local date it comes back)")
        return print_outcomes(p.snooze_tasks(args.task_ids, args.until))
    where = TaskFilter(
        sequence=args.sequence, due_before=args.due_before, kind=args.kind, include_done=args.all
    )
    rows = p.tasks(args.owner, where=where, as_of=args.as_of)
    if args.csv:
        return _export(rows, args.csv)
    print(f"{len(rows)} {'task(s)' if args.all else 'open task(s)'} for {args.owner or p.user}")
    for t in rows:
        print("  " + task_line(t))
    if rows:
        print("read one: sequencer tasks show ID   |   close: sequencer tasks done ID [ID…]")
    return EXIT_OK


def cmd_pause(p: Project, args: argparse.Namespace) -> int:
    outcomes = p.pause(args.sequence, args.contact_ids, args.until, args.as_of)
    return _enrolment_outcomes(outcomes, {"not_enrolled", "unknown_contact"})


def cmd_resume(p: Project, args: argparse.Namespace) -> int:
    outcomes = p.resume(args.sequence, args.contact_ids, args.as_of)
    return _enrolment_outcomes(outcomes, {"unknown_contact"})


def _enrolment_outcomes(outcomes: dict[str, str], refused: set[str]) -> int:
    """One line per contact (or the whole sequence); exit 1 when any was refused."""
    for contact_id, outcome in outcomes.items():
        print(f"{contact_id:<18} {outcome}")
    n = sum(outcome in refused for outcome in outcomes.values())
    if n:
        print(f"{n} contact(s) refused (see the outcome of each above)", file=sys.stderr)
        return EXIT_INPUT
    return EXIT_OK


def task_line(t: dict) -> str:
    """One task on one line: short id, due date, state, kind, contact, title."""
    state = "done" if t["done"] else "open"
    if not t["done"] and t["snoozed_until"] and t["snoozed_until"] > t["due_on"]:
        state = f"snoozed to {t['snoozed_until']}"
    who = t["contact_name"] or t["contact_id"]
    return (
        f"{t['short_id']}  {t['due_on']}  {state:<4} {t['kind']:<14} {t['sequence']}/{t['step']}"
        f"  {who}: {t['title'] or ''}"
    )


def print_task(t: dict) -> None:
    """The whole task: what it is, for whom, and its body (the draft of an email reminder)."""
    print(task_line(t))
    print(f"  id       {t['task_id']}")
    print(f"  owner    {t['owner_id']}")
    email = f" <{t['contact_email']}>" if t["contact_email"] else ""
    print(f"  contact  {t['contact_id']} {t['contact_name'] or ''}{email}".rstrip())
    if t["done"]:
        print(f"  done at  {t['done_at']}")
    body = (t["body"] or "").rstrip()
    if body:
        print("  body:")
        for line in body.splitlines():
            print(f"    {line}")


def print_outcomes(outcomes: dict[str, tuple[str, str]]) -> int:
    """Each id's outcome: done ones on stdout, refused ones as errors on stderr (each its own
    line); exit 4 when any was another user's task, else 1 when any was refused."""
    failed = []
    for ref, (status, text) in outcomes.items():
        if status == "ok":
            print(f"{ref:<16} {text}")
        else:
            failed.append(status)
            print(f"error: {text}", file=sys.stderr)
    if not failed:
        return EXIT_OK
    return EXIT_DENIED if "denied" in failed else EXIT_INPUT


def _export(rows: list[dict], target: str) -> int:
    if target == "-":
        export_csv(rows, sys.stdout)
        return EXIT_OK
    path = Path(target)
    if path.is_dir():
        raise UsageError(f"--csv {target}: is a directory")
    try:
        with open(path, "w", encoding="utf-8", newline="") as out:
            export_csv(rows, out)
    except OSError as exc:
        raise SequencerError(f"--csv {target}: {exc.strerror or exc}") from exc
    print(f"{len(rows)} task(s) written to {path}", file=sys.stderr)
    return EXIT_OK
