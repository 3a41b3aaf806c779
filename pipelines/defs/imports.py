"""One asset per entity: ingest the matching files of imports/ (accounts, then contacts, then
activities, so activities given by email find the contacts of the same batch)."""

import dagster as dg

from pipelines.defs.resources import RETRY, WRITER_POOL, SequencerResource, offending_rows_check


class ImportConfig(dg.Config):
    """``tag``: stamp ``import_name = tag`` on every contact and account row (CLI --tag)."""

    tag: str = ""


def import_files(sequencer: SequencerResource, entity: str) -> list:
    """The files in imports/ that hold ``entity``, by name; unknown names are not ours."""
    from pipelines.errors import IngestError
    from pipelines.ingest.load import detect_entity

    folder = sequencer.project.root / "imports"
    found = []
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        try:
            if path.is_file() and detect_entity(path) == entity:
                found.append(path)
        except IngestError:
            continue
    return found


def ingest_entity(context, sequencer: SequencerResource, entity: str, tag: str):
    return ingest_reported(context, sequencer, import_files(sequencer, entity), tag)


def ingest_reported(context, sequencer: SequencerResource, files: list, tag: str = ""):
    """Ingest ``files``, log what each did, and sum it up as the materialization's metadata
    (also the ESP door's, :mod:`pipelines.defs.engagement`)."""
    results = sequencer.project.ingest(files, tag=tag or None) if files else []
    for r in results:
        context.log.info(
            f"{r.file}: {r.loaded} loaded, {r.updated} updated, "
            f"{r.quarantined} quarantined{' (already ingested)' if r.skipped else ''}"
        )
        for note in r.notes:
            context.log.warning(f"{r.file}: {note}")
        if r.error:  # the other files loaded: the run goes on, the operator is told
            context.log.error(f"{r.file}: rejected, nothing of it loaded: {r.error}")
    return dg.MaterializeResult(
        metadata={
            "rejected_files": dg.MetadataValue.json({r.file: r.error for r in results if r.error}),
            "files": len(results),
            "new_files": sum(not r.skipped for r in results),
            "loaded": sum(r.loaded for r in results),
            "updated": sum(r.updated for r in results),
            "quarantined": sum(r.quarantined for r in results),
        }
    )


def _ingest_asset(entity: str, deps: list[str]):
    @dg.asset(
        name=entity,
        group_name="imports",
        deps=deps,
        kinds={"duckdb", "python"},
        pool=WRITER_POOL,
        retry_policy=RETRY,
        description=f"Ingest imports/{entity}*: bad rows go to quarantine.",
    )
    def _asset(
        context: dg.AssetExecutionContext, config: ImportConfig, sequencer: SequencerResource
    ) -> dg.MaterializeResult:
        return ingest_entity(context, sequencer, entity, config.tag)

    @dg.asset_check(
        asset=entity,
        name=f"{entity}_expectations",
        pool=WRITER_POOL,
        description="Great Expectations results of the latest batch of each file.",
    )
    def _check(sequencer: SequencerResource) -> dg.AssetCheckResult:
        with sequencer.connect() as con:
            return offending_rows_check(con, "failed_expectations", entity=entity)

    return _asset, _check


accounts, accounts_expectations = _ingest_asset("accounts", [])
contacts, contacts_expectations = _ingest_asset("contacts", ["accounts"])
activities, activities_expectations = _ingest_asset("activities", ["contacts"])
