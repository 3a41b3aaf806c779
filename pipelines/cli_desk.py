"""The desk's commands (``tasks``, ``actions``, ``pause``, ``resume``): parse → call the
:class:`~pipelines.project.Project` (:mod:`pipelines.desk`) → print. Registered in
:data:`pipelines.cli.COMMANDS`; their arguments are in :mod:`pipelines.cli_args`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.errors import SequencerError, UsageError
from pipelines.outbox import reports
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
    shown = rows if args.limit is None else rows[: args.limit]
    for t in shown:
        print("  " + task_line(t))
    if len(shown) < len(rows):
        print(f"  … and {len(rows) - len(shown)} more (--limit, or --csv FILE for all)")
    if rows:
        print("read one: sequencer tasks show ID   |   close: sequencer tasks done ID [ID…]")
    return EXIT_OK


def cmd_pause(p: Project, args: argparse.Namespace) -> int:
    outcomes = p.pause(args.sequence, args.contact_ids, args.until, args.as_of)
    return print_contact_outcomes(outcomes, frozenset({"not_enrolled", "unknown_contact"}))


def cmd_resume(p: Project, args: argparse.Namespace) -> int:
    outcomes = p.resume(args.sequence, args.contact_ids, args.as_of)
    return print_contact_outcomes(outcomes, frozenset({"unknown_contact"}))


def print_contact_outcomes(outcomes: dict[str, str], refused: frozenset[str]) -> int:
    """One line per contact (or the whole sequence) of enroll, unenroll, pause, resume; exit 1
    when any was refused."""
    for contact_id, outcome in outcomes.items():
        print(f"{contact_id:<16} {outcome}")
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


# --- actions: what the send left to look at, and each user's daily volume ----------------

VOLUME_ONLY = ("--days", "--as-of")


def cmd_actions(p: Project, args: argparse.Namespace) -> int:
    if args.volume:
        given = [
            flag
            for flag, value in (
                ("--status", args.status),
                ("--sequence", args.sequence),
                ("--step", args.step),
                ("--list", args.list),
            )
            if value is not None
        ]
        if given:
            raise UsageError(f"actions --volume is per user: {', '.join(given)} do not apply")
        days = args.days or 7
        return print_volume(p.volume_report(days, args.as_of), days)
    if args.days is not None or args.as_of:
        raise UsageError(f"{' and '.join(VOLUME_ONLY)} apply to actions --volume only")
    groups = p.actions_report(args.status, args.sequence, args.step, list_limit=args.list or 0)
    return print_action_groups(groups, args)


def _when(at) -> str:
    return f"{at:%Y-%m-%d %H:%M}Z"


def print_action_groups(groups: list[reports.ActionGroup], args: argparse.Namespace) -> int:
    """One line per (sequence, step, status, reason), most frequent first; with --list the
    group's first actions under it (key prefix, kind, contact, occurrence), and how many
    more there are. Every listed action's error is its group's reason."""
    statuses = ", ".join(reports.parse_statuses(args.status))
    scope = "".join(
        f" {label} {value}"
        for label, value in (("of sequence", args.sequence), ("step", args.step))
        if value
    )
    print(f"{sum(g.actions for g in groups)} action(s) {statuses}{scope}: {len(groups)} group(s)")
    if groups:
        head = ("count", "status", "sequence/step", "oldest", "newest")
        print("  {:>6}  {:<8}  {:<28}  {:<17}  {:<17}  reason".format(*head))
    for g in groups:
        where, reason = f"{g.sequence}/{g.step}", g.reason or "(no reason recorded)"
        print(
            f"  {g.actions:>6}  {g.status:<8}  {where:<28}  {_when(g.oldest)}  "
            f"{_when(g.newest)}  {reason}"
        )
        for a in g.listed:
            print(
                f"{'':10}{a.short_key}  {a.action:<14} {a.contact_id:<16} {_when(a.occurrence_at)}"
            )
        if g.listed and g.more:
            print(f"{'':10}… and {g.more} more")
    return EXIT_OK


def print_volume(days: list[reports.VolumeDay], window: int) -> int:
    """Per sender: the limit and what is deferred now, then one line per local day."""
    print(f"emails per local day, last {window} day(s) (sent and unknown, as the limit counts)")
    if not days:
        print("  (nothing sent or deferred in that time)")
    sender = None
    for d in days:
        if d.sender_id != sender:
            sender = d.sender_id
            print(
                f"{sender} ({d.timezone}): limit {d.daily_limit}/day, deferred now {d.deferred_now}"
            )
        full = "  (limit reached)" if d.sent >= d.daily_limit else ""
        print(f"  {d.local_day}  sent {d.sent:>5} of {d.daily_limit}{full}")
    return EXIT_OK
