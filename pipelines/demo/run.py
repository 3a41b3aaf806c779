"""``make demo``: the whole product on the demo workspace, start to finish.

Generate seeded demo data, ingest it (bad rows to quarantine), validate and preview every
sequence, then play 30 simulated days through Dagster with a local SMTP sink, the tracking
server and IMAP inboxes that seeded simulated recipients use, and end with the metrics table
and a chart. Each phase calls the same
``sequencer`` commands or Dagster jobs a user would, so the demo shows the real path.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

from pipelines import cli, db
from pipelines.demo.data import generate
from pipelines.outbox.tasks import TaskFilter
from pipelines.project import Project
from pipelines.workspace import load_users, load_workspace

FIRST_DAY = dt.date(2026, 1, 5)  # the demo data is generated as of this Monday


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


def play_days(project: Path, db_path: Path, days: int) -> None:
    from pipelines.demo.doors import EngagementDoors
    from pipelines.demo.play import play
    from pipelines.demo.smtp_sink import SmtpSink, free_port

    ws = load_workspace(project)
    port = next(u.mailbox.port for u in ws.users.users if u.mailbox)
    imap = sorted({u.inbox.port for u in ws.users.users if u.inbox})
    http = free_port()  # the recipients reach the tracking server by path, as DNS would
    step(f"6. play {days} simulated days through Dagster")
    print(
        f"SMTP sink on 127.0.0.1:{port}; `sequencer serve` (the tracking app) on "
        f"127.0.0.1:{http}; IMAP inboxes (pymap) on 127.0.0.1:{', '.join(map(str, imap))}"
    )
    maildir = (project / ".sequencer" / "demo_mail").resolve()
    maildir.mkdir(parents=True, exist_ok=True)
    with SmtpSink(maildir, port) as sink, EngagementDoors(project, ws, http) as doors:
        for line in play(project, db_path, FIRST_DAY, days, ws, sink, doors):
            print(line, flush=True)
        print(f"the SMTP sink received {len(sink.messages)} emails (copies in {maildir})")
    show_engagement(db_path)


def show_engagement(db_path: Path) -> None:
    """What came back through the doors during the play, by door and type."""
    con = db.connect(db_path, read_only=True)
    try:
        rows = con.execute(
            "select case split_part(activity_id, ':', 1) when 'srv' then 'tracking server'"
            " when 'mail' then 'mailbox' else 'ESP file' end as door, type,"
            " count(*) filter (where try_cast(detail as json) ->> 'machine' = 'true'),"
            " count(*) from activities"
            " where regexp_matches(activity_id, '^(srv|mail|sendgrid|mailgun|ses|postmark):')"
            " group by all order by door, type"
        ).fetchall()
    finally:
        con.close()
    print("engagement loaded through the doors during the play (activities):")
    for door, type_, machine, n in rows:
        note = f" ({machine} machine opens)" if machine else ""
        print(f"  {door:<16} {type_:<20} {n:>5}{note}")


def show_workday(project: Path, db_path: Path, common: list[str], end: dt.date) -> None:
    """Send windows and a pause as they played out; the operator's report of what a send
    left to look at; a rep's queue (issue 12)."""
    from pipelines.demo import workday

    step("7. a rep's and an operator's day: send windows, a pause, what a send left, a queue")
    workday.show_send_windows(db_path)
    paused = workday.paused_contact(db_path)
    if paused:
        workday.show_pause(db_path, paused)
        run(["why", "outbound-q1", paused, *common, "--as-of", f"{end}T00:00:00Z"])
    candidate = workday.render_candidate(db_path)
    if candidate:  # the exact email it gets at the next occurrence; nothing written or sent
        run(["preview", "outbound-q1", "--render", candidate, *common, "--as-of",
             f"{end}T00:00:00Z"])  # fmt: skip
    run(["actions", *common])
    rep = ["--user", "chitra"]
    due = str(FIRST_DAY + dt.timedelta(days=2))
    run(["tasks", *common, *rep, "--kind", "email_reminder", "--due-before", due, "--limit", "5"])
    first = Project(project, db_path=db_path, user="chitra").tasks(
        where=TaskFilter(kind="email_reminder", due_before=dt.date.fromisoformat(due))
    )
    if first:
        short = first[0]["short_id"]
        run(["tasks", "show", short, *common, *rep])
        run(["tasks", "done", short, *common, *rep, "--as-of", f"{end}T09:00:00Z"])


def write_chart(snapshot: Path, path: Path) -> None:
    """Sent / opened / replied per day for each sequence, from the reader snapshot."""
    import duckdb
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        rows = con.execute(
            "select sequence, metric_date, sent, opened, replied from sequence_metrics"
            " where period = 'day' order by sequence, metric_date"
        ).fetchall()
    finally:
        con.close()
    names = sorted({r[0] for r in rows})
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 2.6 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        mine = [r for r in rows if r[0] == name]
        for i, label in ((2, "sent"), (3, "opened"), (4, "replied")):
            ax.plot([r[1] for r in mine], [r[i] or 0 for r in mine], marker=".", label=label)
        ax.set_title(name)
        ax.legend(loc="upper right")
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", default=".")
    parser.add_argument("--db", default=".sequencer/demo.duckdb")
    parser.add_argument("--days", type=int, default=30, help="simulated days (default: 30)")
    args = parser.parse_args()
    project = Path(args.project)
    db_path = Path(args.db)
    started = time.monotonic()
    # the demo's users.yaml names TRACKING_SECRET; validate checks it is set (a real
    # deployment sets it in the scheduler's environment)
    os.environ.setdefault("TRACKING_SECRET", "demo-tracking-secret")
    for user in load_users(project).users:  # the demo's IMAP inboxes (pymap) use these
        if user.inbox and user.inbox.password_env:
            os.environ.setdefault(user.inbox.password_env, f"demo-imap-{user.id}")
    common = ["--project", str(project), "--db", str(db_path)]
    if db_path.exists():
        db_path.unlink()  # a fresh demo every time
    # nor the last demo's tracking events (a new database would load them again)
    shutil.rmtree(project / "imports" / "events", ignore_errors=True)
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
        run(["preview", name, *common, "--as-of", f"{FIRST_DAY}T00:00:00Z", "--sample", "3"])
    play_days(project, db_path, args.days)
    show_workday(project, db_path, common, FIRST_DAY + dt.timedelta(days=args.days))
    step(f"8. metrics per sequence (all {args.days} days)")
    run(["metrics", "--rebuild", *common])
    chart = project / ".sequencer" / "demo_metrics.png"
    write_chart(project / ".sequencer" / "snapshot.duckdb", chart)
    print(f"chart written to {chart}")
    step("next")
    print(
        f"demo finished in {time.monotonic() - started:.0f}s; database: {db_path}\n"
        "  - Dagster UI on the demo workspace: make dev   (then open http://127.0.0.1:3000)\n"
        "  - notebook, headless: .venv/bin/jupyter execute notebooks/sequence_effectiveness.ipynb\n"
        "    (it reads .sequencer/snapshot.duckdb, which every run republishes)\n"
        f"  - a rep's queue: .venv/bin/sequencer tasks --user alice --db {db_path}"
    )


if __name__ == "__main__":
    main()
