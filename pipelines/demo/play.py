"""Play simulated days of the demo through Dagster, as production would run them.

Each simulated day: the night's new leads land in ``imports/`` and the ``new_import_files``
sensor's run request executes the ``ingest_job``; the schedule's ticks that follow each
sequence's occurrence run the ``tick_job`` (properties → compile → tick → checks → send →
metrics); emails go to a local SMTP sink. Then the recipients act on the day's emails through
the real doors (:mod:`pipelines.demo.recipients`: HTTP against the tracking server, messages
into IMAP inboxes) and the ``engagement_job`` loads what came back (the server's event spool,
the mailboxes), as its schedule would.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from pipelines import db
from pipelines.demo.data import new_contacts
from pipelines.demo.recipients import Mail, act
from pipelines.instants import as_aware_utc
from pipelines.tick.occurrences import instant_on, occurs_on
from pipelines.workspace import Workspace

NEW_LEADS_PER_DAY = 40
# The 15-minute schedule runs all day; the demo plays the ticks after each occurrence, plus
# this one (09:00 in Los Angeles), where send windows let the west coast's emails go out.
WINDOW_TICK = dt.time(17, 0)
PAUSED_DAYS = 4  # the demo pauses one contact on its second day, for this many days
# The demo prints one line per day; Dagster's own event log stays in the instance.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def tick_instants(ws: Workspace, day: dt.date) -> list[dt.datetime]:
    """The 15-minute schedule ticks (naive UTC) that first follow each occurrence on ``day``."""
    instants = set()
    for seq in ws.sequences.values():
        if occurs_on(day, seq.schedule):
            at = instant_on(day, seq.schedule)
            minutes = (at.minute // 15 + 1) * 15
            instants.add(at.replace(minute=0, second=0) + dt.timedelta(minutes=minutes))
    if instants:
        instants.add(dt.datetime.combine(day, WINDOW_TICK))
    return sorted(instants)


class DemoPlayer:
    """Runs the Dagster jobs in-process against one instance, keeping the sensor's cursor."""

    def __init__(self, project: Path, db_path: Path, instance: dg.DagsterInstance) -> None:
        os.environ["SEQUENCER_PROJECT"] = str(project.resolve())
        os.environ["SEQUENCER_DB"] = str(db_path.resolve())
        from pipelines.definitions import defs

        self.project, self.db_path, self.instance = project, db_path, instance
        self.defs = defs()
        self.repo = self.defs.get_repository_def()
        self.cursor: str | None = None

    def tick(self, at: dt.datetime) -> None:
        """Evaluate the schedule at ``at`` and execute its run request."""
        schedule = self.repo.get_schedule_def("tick_every_15_minutes")
        context = dg.build_schedule_context(scheduled_execution_time=as_aware_utc(at))
        for request in schedule.evaluate_tick(context).run_requests or []:
            result = self.defs.resolve_job_def("tick_job").execute_in_process(
                run_config={**request.run_config, **QUIET},
                tags=request.tags,
                instance=self.instance,
            )
            if not result.success:
                raise SystemExit(f"tick at {at:%Y-%m-%d %H:%M}Z failed")

    def sense_and_ingest(self) -> int:
        """Evaluate the imports sensor; run the ingest job for each request it makes."""
        from pipelines.defs.resources import SequencerResource

        sensor = self.repo.get_sensor_def("new_import_files")
        resources = {"sequencer": SequencerResource(project_dir=str(self.project))}
        context = dg.build_sensor_context(
            cursor=self.cursor, resources=resources, instance=self.instance
        )
        result = sensor.evaluate_tick(context)
        self.cursor = result.cursor
        for request in result.run_requests or []:
            job = self.defs.resolve_job_def("ingest_job")
            job.execute_in_process(run_config=QUIET, tags=request.tags, instance=self.instance)
        return len(result.run_requests or [])

    def engagement(self) -> None:
        """Run the engagement job (tracking events, mailboxes) as its schedule would."""
        job = self.defs.resolve_job_def("engagement_job")
        result = job.execute_in_process(run_config=QUIET, instance=self.instance)
        if not result.success:
            raise SystemExit("the engagement job failed")

    def day_summary(self, day: dt.date) -> str:
        con = db.connect(self.db_path, read_only=True)
        try:
            entries = con.execute(
                "select count(*) from enrollments where enrolled_on = ?", [day]
            ).fetchone()[0]
            statuses = dict(
                con.execute(
                    "select status, count(*) from actions where occurrence_on = ? group by 1",
                    [day],
                ).fetchall()
            )
            exits = con.execute(
                "select count(*) from enrollments where exited_on = ?", [day]
            ).fetchone()[0]
        finally:
            con.close()
        done = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())) or "no actions"
        return f"entered {entries:>4}, exited {exits:>4}; actions: {done}"


def pause_one(project: Path, db_path: Path, day: dt.date) -> str:
    """Pause the first contact active in outbound-q1 (a rep's "call me next week"), from the
    evening of ``day`` for PAUSED_DAYS days, as ``sequencer pause`` would."""
    from pipelines.project import Project

    con = db.connect(db_path, read_only=True)
    try:
        row = con.execute(
            "select contact_id from enrollments where sequence = 'outbound-q1'"
            " and status = 'active' order by contact_id limit 1"
        ).fetchone()
    finally:
        con.close()
    if row is None:
        return "        (nobody active in outbound-q1 to pause)"
    until = day + dt.timedelta(days=PAUSED_DAYS)
    at = dt.datetime.combine(day, dt.time(22, 0))
    Project(project, db_path=db_path, user="alice").pause("outbound-q1", [row[0]], until, at)
    return (
        f"        $ sequencer pause outbound-q1 {row[0]} --until {until} --user alice"
        f"   (paused {row[0]}: it resumes at the step where it stopped)"
    )


def play(
    project: Path, db_path: Path, first_day: dt.date, days: int, ws: Workspace, sink, doors
) -> Iterator[str]:
    """Yield one progress line per simulated day. ``sink``: the SMTP sink the emails reach;
    ``doors``: the recipients' ways back (:class:`pipelines.demo.doors.EngagementDoors`)."""
    home = Path(os.environ.get("DAGSTER_HOME", project / ".dagster_home"))
    home.mkdir(parents=True, exist_ok=True)
    instance = dg.DagsterInstance.ephemeral(tempdir=str(home / "demo"))
    player = DemoPlayer(project, db_path, instance)
    seen = 0  # the sink's messages the recipients have already acted on
    try:
        for i in range(days):
            started = time.monotonic()
            day = first_day + dt.timedelta(days=i)
            arrived = 0
            if i > 0 and day.weekday() < 5:  # the night's new leads, dropped into imports/
                new_contacts(project / "imports", day, per_day=NEW_LEADS_PER_DAY)
                player.sense_and_ingest()
                arrived = NEW_LEADS_PER_DAY
            ticks = tick_instants(ws, day)
            for at in ticks:
                player.tick(at)
            received = sink.messages[seen:]
            seen += len(received)
            day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
            done = act([Mail.parse(m.message) for m in received], doors.doors(), day_end)
            player.engagement()
            back = ", ".join(f"{k} {v}" for k, v in sorted(done.items())) or "nothing"
            yield (
                f"day {i + 1:>2} {day:%a %Y-%m-%d}: +{arrived} leads, {len(ticks)} tick(s); "
                f"{player.day_summary(day)}\n"
                f"        back through the doors: {back} ({time.monotonic() - started:.1f}s)"
            )
            if i == 1:  # in the evening of day 2, after that day's ticks
                yield pause_one(project, db_path, day)
    finally:
        instance.dispose()  # before the interpreter's teardown closes its storage
