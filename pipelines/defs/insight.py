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
    """Tables ``sequence_metrics``, ``step_metrics``, ``email_outcomes`` and the experiments'
    ``variant_metrics`` and ``holdout_metrics`` (their row counts in the metadata); then
    publish the reader snapshot
    (docs/readers.md) so notebooks and ad-hoc readers never wait for a run."""
    found = sequencer.project.metrics(rebuild=True)  # the operator: rebuilds, publishes
    return dg.MaterializeResult(
        metadata={
            **found.rows,
            "snapshot": dg.MetadataValue.path(str(found.snapshot)),
            "totals": dg.MetadataValue.md(f"```\n{found.table}\n```"),
        }
    )
