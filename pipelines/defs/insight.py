"""Effectiveness metrics, and the snapshot every reader opens instead of the busy database."""

import dagster as dg

from pipelines.defs.resources import RETRY, WRITER_POOL, SequencerResource


@dg.asset(
    group_name="insight",
    deps=["send"],
    kinds={"duckdb", "sql"},
    pool=WRITER_POOL,
    retry_policy=RETRY,
)
def metrics(sequencer: SequencerResource) -> dg.MaterializeResult:
    """Tables ``sequence_metrics`` and ``step_metrics``; then publish the reader snapshot
    (docs/readers.md) so notebooks and ad-hoc readers never wait for a run."""
    from pipelines.metrics import build_metrics, metrics_table, publish_snapshot

    with sequencer.connect() as con:
        rows = build_metrics(con)
        table = metrics_table(con)
        snapshot = publish_snapshot(sequencer.database, sequencer.snapshot)
    return dg.MaterializeResult(
        metadata={
            **rows,
            "snapshot": dg.MetadataValue.path(str(snapshot)),
            "totals": dg.MetadataValue.md(f"```\n{table}\n```"),
        }
    )
