"""The ``sequencer`` command line's arguments and help (SPEC 8); the commands are in
:mod:`pipelines.cli`. Every command takes ``--project``, ``--db`` and ``--user``."""

from __future__ import annotations

import argparse
import datetime as dt

COMMON_EPILOG = (
    "Acts as --user U or $SEQUENCER_USER; with neither, as the operator (full access, the "
    "scheduler's case)."
)


HELP: dict[str, tuple[str, str]] = {
    # command: (summary, example)
    "ingest": (
        "Load contact, account, activity and ESP event files; bad rows go to quarantine.",
        "sequencer ingest --tag 'SDR march' imports/contacts_march.csv imports/activities.jsonl",
    ),
    "validate": (
        "Check every sequence file: owners, permissions, templates, views and SQL conditions.",
        "sequencer validate --project .",
    ),
    "sequences": (
        "List the sequences the acting user may see (all for admins and the operator).",
        "sequencer sequences --user alice",
    ),
    "preview": (
        "Show a sequence's audience, how many each condition keeps and a sample; --render C: "
        "the exact email/task/SMS contact C would get at the next occurrence. Writes nothing.",
        "sequencer preview outbound-q1 --user alice   |   sequencer preview outbound-q1 "
        "--render C000123",
    ),
    "why": (
        "Explain every decision about one contact in one sequence: kept out by which "
        "condition or rule, entry, steps due/skipped with each `when`, sends, exit. Read-only.",
        "sequencer why outbound-q1 C000123 --as-of 2026-03-09T15:00:00Z   |   ... --json",
    ),
    "backtest": (
        "Replay a sequence as written now over the recorded history of [--from, --to] on a "
        "scratch copy, every email it decides assumed sent; per day entries, exits, steps. "
        "Writes nothing to the database, sends nothing.",
        "sequencer backtest outbound-q1 --from 2026-02-02 --to 2026-02-27 --out q1.parquet",
    ),
    "run": (
        "One tick: process every occurrence due by --as-of (default now): exits, entries, steps.",
        "sequencer run --as-of 2026-03-02T15:00:00Z",
    ),
    "enroll": (
        "Add contacts to a sequence by hand: they enter at its next occurrence (no audience).",
        "sequencer enroll outbound-q1 C000123 C000456 --user alice",
    ),
    "unenroll": (
        "Take contacts out of a sequence now (exit reason manual).",
        "sequencer unenroll outbound-q1 C000123 --user alice",
    ),
    "pause": (
        "Pause contacts' enrolments (no contact: the whole sequence and its entries) until "
        "--until DATE or `resume`; exits still apply.",
        "sequencer pause outbound-q1 C000123 --until 2026-03-16 --user alice"
        "   |   sequencer pause outbound-q1 --user alice",
    ),
    "resume": (
        "End a pause: the contacts' (no contact: the whole sequence's and every contact's).",
        "sequencer resume outbound-q1 C000123 --user alice",
    ),
    "send": (
        "Carry out every due action exactly once: emails, tasks, SMS; --review lists unknowns.",
        "sequencer send --as-of 2026-03-02T15:00:00Z   |   sequencer send --requeue-held",
    ),
    "tasks": (
        "A rep's queue of reminders and tasks: list (filters, --csv), show, done, snooze.",
        "sequencer tasks --user alice --kind call_reminder   |   sequencer tasks show 3f9a0c1e"
        "   |   sequencer tasks done 3f9a0c1e 77b2d410 --user alice"
        "   |   sequencer tasks snooze 3f9a0c1e --until 2026-03-09   |   sequencer tasks"
        " --owner alice --user olga --csv alice.csv",
    ),
    "actions": (
        "Actions a send left to look at (held, failed, deferred, unknown, expired), grouped "
        "by reason; --volume: emails per user per local day against the daily limit.",
        "sequencer actions   |   sequencer actions --status failed --sequence outbound-q1 --list"
        "   |   sequencer actions --volume --days 14",
    ),
    "serve": (
        "Serve the tracking links (open pixel, clicks, one-click unsubscribe) over HTTP.",
        "sequencer serve --host 0.0.0.0 --port 8080",
    ),
    "mailbox": (
        "Read replies, auto-replies, bounces and complaints: poll users' IMAP inboxes, or "
        "import .eml/mbox/Maildir (--dry-run: classify only, write nothing).",
        "sequencer mailbox poll   |   sequencer mailbox import --dry-run bounces.mbox",
    ),
    "metrics": (
        "Print per-sequence totals; --rebuild (operator/admin) rebuilds them and the snapshot.",
        "sequencer metrics --sequence outbound-q1   |   sequencer metrics --rebuild",
    ),
}


def count(text: str) -> int:
    """An argparse type: a whole number ≥ 0 (``--sample``, ``--show``).

    >>> count("3")
    3
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def date_arg(text: str) -> dt.date:
    """A ``YYYY-MM-DD`` argument."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


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
    for name, (summary, example) in HELP.items():
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
    own = {
        "send": add_send_arguments,
        "mailbox": add_mailbox_verbs,
        "tasks": add_task_arguments,
        "actions": add_actions_arguments,
    }
    if name in own:
        own[name](p)
    elif name == "ingest":
        p.add_argument("files", nargs="*", help="files to ingest (default: everything in imports/)")
        p.add_argument("--tag", help="stamp import_name = TAG on every contact and account row")
        p.add_argument(
            "--format",
            dest="fmt",
            choices=("sendgrid", "mailgun", "ses", "postmark"),
            help="read FILES as this ESP's event files (default: recognized by content)",
        )
    elif name in ("preview", "why"):
        add_explain_arguments(name, p)
    elif name == "backtest":
        add_backtest_arguments(p)
    elif name == "run":
        p.add_argument("--as-of", help="the tick's instant (ISO-8601; default: now)")
        p.add_argument(
            "--allow-future",
            action="store_true",
            help="accept an --as-of more than a day ahead of now (simulations, tests)",
        )
    elif name in ("enroll", "unenroll"):
        p.add_argument("sequence", help="the sequence name")
        p.add_argument("contact_ids", nargs="+", metavar="CONTACT_ID")
        p.add_argument("--as-of", help="act at this instant (ISO-8601; default: now)")
    elif name in ("pause", "resume"):
        p.add_argument("sequence", help="the sequence name")
        p.add_argument("contact_ids", nargs="*", metavar="CONTACT_ID", help="none: the sequence")
        p.add_argument("--as-of", help="act at this instant (ISO-8601; default: now)")
        if name == "pause":
            p.add_argument(
                "--until", type=date_arg, help="resume at the first occurrence on or after DATE"
            )
    elif name == "metrics":
        p.add_argument("--sequence", help="only this sequence (default: all you may see)")
        p.add_argument(
            "--rebuild",
            action="store_true",
            help="rebuild the tables and republish the reader snapshot (operator or admin)",
        )
    elif name == "serve":
        p.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
        p.add_argument("--port", type=int, default=8080, help="port (default: 8080)")


def add_send_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as-of", help="send as of this instant (ISO-8601; default: now)")
    p.add_argument("--review", action="store_true", help="list actions in status unknown")
    p.add_argument(
        "--mark", nargs=2, metavar=("KEY", "OUTCOME"), help="settle an unknown: sent|retry"
    )
    p.add_argument(
        "--requeue-held",
        action="store_true",
        help="put held actions back in the queue after a fix (admin/operator)",
    )
    p.add_argument("--sequence", help="with --requeue-held: only this sequence")
    p.add_argument("--step", help="with --requeue-held: only this step id")


def add_explain_arguments(name: str, p: argparse.ArgumentParser) -> None:
    """``preview SEQUENCE [--render CONTACT]`` and ``why SEQUENCE CONTACT [--json]``."""
    if name == "preview":
        p.add_argument("sequence", help="the sequence name")
        p.add_argument("--as-of", help="evaluate at this instant (ISO-8601; default: now)")
        p.add_argument("--sample", type=count, default=10, help="sample size (default: 10)")
        p.add_argument(
            "--render",
            metavar="CONTACT",
            help="print what this contact would get at the next occurrence (nothing is sent)",
        )
    elif name == "why":
        p.add_argument("sequence", help="the sequence name")
        p.add_argument("contact_id", metavar="CONTACT", help="the contact id")
        p.add_argument("--as-of", help="the story up to this instant (ISO-8601; default: now)")
        p.add_argument("--json", action="store_true", help="print the story as one JSON object")


def add_backtest_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sequence", help="the sequence name")
    p.add_argument(
        "--from", dest="from_date", type=date_arg, required=True, metavar="DATE",
        help="the first occurrence date replayed (YYYY-MM-DD, the sequence's local date)",
    )  # fmt: skip
    p.add_argument(
        "--to", dest="to_date", type=date_arg, required=True, metavar="DATE",
        help="the last occurrence date replayed (YYYY-MM-DD)",
    )  # fmt: skip
    p.add_argument("--out", metavar="FILE.parquet", help="write one row per decision (Parquet)")


def add_task_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "verb",
        nargs="?",
        choices=["list", "show", "done", "snooze"],
        help="list (default) | show ID… | done ID… | snooze ID… --until DATE",
    )
    p.add_argument(
        "task_ids", nargs="*", metavar="TASK_ID", help="task ids; a unique prefix is enough"
    )
    p.add_argument("--owner", help="list this user's queue (admins and the operator: any)")
    p.add_argument("--sequence", help="only this sequence's tasks")
    p.add_argument("--kind", help="only email_reminder, follow_up or call_reminder")
    p.add_argument("--due-before", type=date_arg, help="only tasks due before this date")
    p.add_argument("--all", action="store_true", help="include done and snoozed tasks")
    p.add_argument("--csv", metavar="FILE", help="write the listed tasks as CSV (- for stdout)")
    p.add_argument("--limit", type=count, help="list at most N tasks (the oldest due first)")
    p.add_argument("--until", type=date_arg, help="with snooze: the local date it comes back")
    p.add_argument(
        "--as-of", help="done: completed at this instant; list: today is its date (default now)"
    )


def positive(text: str) -> int:
    """An argparse type: a whole number ≥ 1 (``--days``).

    >>> positive("7")
    7
    """
    value = count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not at least 1")
    return value


def add_actions_arguments(p: argparse.ArgumentParser) -> None:
    statuses = "held|failed|deferred|unknown|expired|skipped|due|sent"
    p.add_argument(
        "--status",
        action="append",
        metavar="STATUS",
        help=f"only actions in this status ({statuses}; repeat for several); default: held, "
        "failed, deferred, unknown and expired",
    )
    p.add_argument("--sequence", help="only this sequence (default: all you may see)")
    p.add_argument("--step", help="only this step id")
    p.add_argument(
        "--list",
        nargs="?",
        type=count,
        const=50,
        metavar="N",
        help="also list the first N actions of each group (default N: 50)",
    )
    p.add_argument(
        "--volume",
        action="store_true",
        help="emails sent per user per local day against the daily limit, and deferred now",
    )
    p.add_argument("--days", type=positive, help="with --volume: the last N local days (7)")
    p.add_argument("--as-of", help="with --volume: the days up to this instant (default: now)")


def add_mailbox_verbs(p: argparse.ArgumentParser) -> None:
    """``mailbox poll`` and ``mailbox import [--dry-run] FILE…`` as sub-commands, so that
    ``--dry-run`` may stand between the verb and the files. The common options are accepted
    after the verb too (suppressed defaults: the ones parsed before the verb stand)."""
    common = argparse.ArgumentParser(add_help=False)
    for option in ("--project", "--db", "--user"):
        common.add_argument(option, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    verbs.add_parser(
        "poll",
        parents=[common],
        help="read each user's inbox: (IMAP) from the last UID seen; --user U: only U's",
    )
    imp = verbs.add_parser(
        "import", parents=[common], help="read .eml files, mbox files and Maildir folders"
    )
    imp.add_argument("files", nargs="+", metavar="FILE", help=".eml, mbox or Maildir")
    imp.add_argument(
        "--dry-run",
        action="store_true",
        help="print one JSON object per message and recipient; write nothing",
    )
