"""Jobs, the 15-minute tick schedule and the sensor for new import files."""

import hashlib
import json

import dagster as dg

from pipelines.defs.resources import AS_OF_TAG, SequencerResource, as_of_run_config
from pipelines.instants import as_of_or_now

IMPORT_ASSETS = dg.AssetSelection.assets("accounts", "contacts", "activities", "esp_events")
ENGAGEMENT = dg.AssetSelection.groups("engagement")  # their own job: defs/engagement.py
# A failed run is retried from the failed step with the same config and tags, hence the same
# as_of: safe because ingest skips files already loaded, the tick never reprocesses an
# occurrence and the send never sends an idempotency key twice (`unknown` is left for review).
RETRY_TAGS = {"dagster/max_retries": "3", "dagster/retry_strategy": "FROM_FAILURE"}

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=IMPORT_ASSETS,
    run_tags=RETRY_TAGS,
    description="Ingest new files of imports/ (the sensor's job).",
)
tick_job = dg.define_asset_job(
    "tick_job",
    selection=dg.AssetSelection.all() - IMPORT_ASSETS - ENGAGEMENT,
    run_tags=RETRY_TAGS,
    description="Properties, compile, tick, send, metrics at one as_of (the schedule's job).",
)


@dg.schedule(
    cron_schedule="*/15 * * * *",
    job=tick_job,
    execution_timezone="UTC",
    name="tick_every_15_minutes",
)
def tick_every_15_minutes(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """One tick per quarter hour; as_of is the scheduled instant, so a late or retried run
    decides exactly as an on-time one (SPEC 6)."""
    as_of = as_of_or_now(context.scheduled_execution_time).isoformat()
    return dg.RunRequest(run_key=as_of, run_config=as_of_run_config(as_of), tags={AS_OF_TAG: as_of})


def import_listing(sequencer: SequencerResource) -> dict[str, int]:
    """``{file name: mtime_ns}`` of imports/; dot-files and *.tmp/*.part (copies in flight)
    are not listed: drop a file by writing it elsewhere and renaming it in."""
    folder = sequencer.project.root / "imports"
    if not folder.is_dir():
        return {}
    return {
        p.name: p.stat().st_mtime_ns
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".") and p.suffix not in (".tmp", ".part")
    }


@dg.sensor(job=ingest_job, minimum_interval_seconds=30, name="new_import_files")
def new_import_files(context: dg.SensorEvaluationContext, sequencer: SequencerResource):
    """Request an ingest run when a file appears in imports/ or changes (cursor: names and
    mtimes). Ingest itself skips content it has already loaded."""
    seen = json.loads(context.cursor) if context.cursor else {}
    listing = import_listing(sequencer)
    new = sorted(name for name, mtime in listing.items() if seen.get(name) != mtime)
    context.update_cursor(json.dumps(listing, sort_keys=True))
    if not new:
        return dg.SkipReason("no new or changed files in imports/")
    key = hashlib.sha256(json.dumps({n: listing[n] for n in new}).encode()).hexdigest()[:16]
    return dg.RunRequest(run_key=key, tags={"sequencer/new_files": ", ".join(new)[:200]})
