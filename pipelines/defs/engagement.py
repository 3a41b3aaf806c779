"""The engagement doors (SPEC 10) as assets of their own job and schedule: the tracking
server's event spool, ESP event files and the users' IMAP inboxes. They run in the writer
pool (the server itself never opens the database) and are not part of ``tick_job``:
engagement arrives on its own clock (the ESP files also with the imports sensor's
``ingest_job``)."""

import dagster as dg

from pipelines.defs.automation import RETRY_TAGS
from pipelines.defs.imports import ingest_reported
from pipelines.defs.resources import RETRY, WRITER_POOL, SequencerResource, offending_rows_check


@dg.asset(
    group_name="engagement",
    kinds={"duckdb", "python"},
    pool=WRITER_POOL,
    retry_policy=RETRY,
    description="Load what `sequencer serve` spooled to imports/events/ (opens, clicks, "
    "unsubscribes) since the last load, exactly once.",
)
def tracking_events(context: dg.AssetExecutionContext, sequencer: SequencerResource):
    from pipelines.engagement.spool import load_spool

    with sequencer.connect() as con:
        results = load_spool(con, sequencer.project.root)
    for r in results:
        context.log.info(f"{r.file}: {r.loaded} loaded, {r.quarantined} quarantined")
    return dg.MaterializeResult(
        metadata={
            "files": len(results),
            "loaded": sum(r.loaded for r in results),
            "quarantined": sum(r.quarantined for r in results),
        }
    )


@dg.asset_check(
    asset=tracking_events,
    name="events_loaded_once",
    pool=WRITER_POOL,
    description="No tracking event stored twice; no spool offset past its file's end.",
)
def events_loaded_once(sequencer: SequencerResource) -> dg.AssetCheckResult:
    from pipelines.engagement.spool import spool_files

    root = sequencer.project.root
    files = spool_files(root)
    names = [str(p.relative_to(root)) for p in files]
    sizes = [p.stat().st_size for p in files]
    with sequencer.connect() as con:
        return offending_rows_check(con, "events_loaded_once", files=names, sizes=sizes)


# activity id prefixes of the doors (spool.event_row, sql/engagement/int_mailbox_matches.sql,
# sql/engagement/stg_esp_<provider>.sql)
DOOR_PREFIXES = ["srv:", "mail:", "sendgrid:", "mailgun:", "ses:", "postmark:"]


@dg.asset(
    group_name="engagement",
    deps=["contacts"],
    kinds={"duckdb", "python"},
    pool=WRITER_POOL,
    retry_policy=RETRY,
    description="Ingest ESP event files in imports/ (SendGrid, Mailgun, SES via SNS, Postmark; "
    "recognized by content): each event once, matched to our sends.",
)
def esp_events(context: dg.AssetExecutionContext, sequencer: SequencerResource):
    from pipelines.engagement.esp import detect_provider

    folder = sequencer.project.root / "imports"
    files = [p for p in sorted(folder.glob("*")) if folder.is_dir() and detect_provider(p)]
    return ingest_reported(context, sequencer, files)


@dg.asset(
    group_name="engagement",
    kinds={"duckdb", "python"},
    pool=WRITER_POOL,
    retry_policy=RETRY,
    description="Poll every user's IMAP inbox (users.yaml `inbox:`) from its last UID: "
    "replies, auto-replies, bounces and complaints matched to our sends.",
)
def mailbox_messages(context: dg.AssetExecutionContext, sequencer: SequencerResource):
    from pipelines.engagement.commands import poll_inboxes

    results = poll_inboxes(sequencer.project)
    for r in results:
        if r.error:  # the other inboxes loaded: the run goes on, the operator is told
            context.log.error(f"{r.source}: {r.error}")
        else:
            context.log.info(f"{r.source}: {r.messages} message(s), {r.loaded} loaded")
    return dg.MaterializeResult(
        metadata={
            "inboxes": len(results),
            "unreadable": dg.MetadataValue.json({r.source: r.error for r in results if r.error}),
            "messages": sum(r.messages for r in results),
            "loaded": sum(r.loaded for r in results),
            "quarantined": sum(r.quarantined for r in results),
        }
    )


@dg.asset_check(
    asset=mailbox_messages,
    name="replies_match_our_sends",
    pool=WRITER_POOL,
    description="No reply, bounce or event a door matched to a Message-ID we never sent.",
)
def replies_match_our_sends(sequencer: SequencerResource) -> dg.AssetCheckResult:
    with sequencer.connect() as con:
        return offending_rows_check(con, "replies_match_our_sends", prefixes=DOOR_PREFIXES)


engagement_job = dg.define_asset_job(
    "engagement_job",
    selection=dg.AssetSelection.groups("engagement"),
    run_tags=RETRY_TAGS,
    description="Load engagement: the tracking server's events, ESP files, the mailboxes.",
)
engagement_every_5_minutes = dg.ScheduleDefinition(
    name="engagement_every_5_minutes",
    job=engagement_job,
    cron_schedule="*/5 * * * *",
    execution_timezone="UTC",
)
