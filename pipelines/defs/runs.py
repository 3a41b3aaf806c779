"""The tick (enrolments, exits, due actions, tasks) and the send, with the output checks that
must pass before anything is sent (blocking: a failed check stops ``send`` in that run)."""

import dataclasses
import os

import dagster as dg

from pipelines.defs.resources import (
    RETRY,
    WRITER_POOL,
    AsOfConfig,
    SequencerResource,
    offending_rows_check,
    resolve_as_of,
)


def _counts(report) -> dict:
    """The report's scalar fields, as metadata."""
    fields = dataclasses.asdict(report) if dataclasses.is_dataclass(report) else {}
    return {k: v for k, v in fields.items() if isinstance(v, int | float | str)}


@dg.asset(
    group_name="run",
    deps=["contact_properties", "compiled_sequences", "activities"],
    kinds={"duckdb", "sql"},
    pool=WRITER_POOL,
    retry_policy=RETRY,
)
def tick(
    context: dg.AssetExecutionContext, config: AsOfConfig, sequencer: SequencerResource
) -> dg.MaterializeResult:
    """Process every occurrence due at ``as_of``: exits, entries, step actions, tasks."""
    # compile → lock → tick, as the CLI does; this process ingests nothing afterwards
    result = sequencer.project.run(resolve_as_of(context, config))
    for error in result.problems:
        context.log.warning(f"left out of this tick: {error}")
    return dg.MaterializeResult(
        metadata={
            "as_of": result.as_of.isoformat(),
            "run_id": result.report.run_id,
            "stats": dg.MetadataValue.json(result.report.stats()),
        }
    )


@dg.asset(
    group_name="run", deps=["tick"], kinds={"python", "email"}, pool=WRITER_POOL, retry_policy=RETRY
)
def send(
    context: dg.AssetExecutionContext, config: AsOfConfig, sequencer: SequencerResource
) -> dg.MaterializeResult:
    """Send every due action once (idempotency keys), defer over-limit emails, create tasks."""
    report = sequencer.project.send(resolve_as_of(context, config))
    for status, reason, count in report.grouped():  # one line per reason, not per action
        context.log.warning(f"{status} {count}: {reason}")
    return dg.MaterializeResult(
        metadata={
            **_counts(report),
            "problems": len(report.problems),
            "stats": dg.MetadataValue.json(report.stats()),
        }
    )


def _output_check(name: str, description: str):
    @dg.asset_check(
        asset="tick", name=name, blocking=True, pool=WRITER_POOL, description=description
    )
    def _check(sequencer: SequencerResource) -> dg.AssetCheckResult:
        with sequencer.connect() as con:
            return offending_rows_check(con, name)

    return _check


duplicate_actions = _output_check("duplicate_actions", "At most one action per enrolment and step.")
actions_after_exit = _output_check(
    "actions_after_exit", "No action decided after its enrolment exited."
)
duplicate_idempotency_keys = _output_check(
    "duplicate_idempotency_keys", "Every action has its own idempotency key."
)


@dg.asset_check(
    asset="tick",
    name="send_secrets_set",
    blocking=True,
    pool=WRITER_POOL,
    description="Every secret the sequences need to send (tracking, mailbox passwords, SMS "
    "token) is set: a missing one would hold every email it signs.",
)
def send_secrets_set(sequencer: SequencerResource) -> dg.AssetCheckResult:
    from pipelines.workspace import missing_secrets

    missing = [str(e) for e in missing_secrets(sequencer.project.workspace(), os.environ)]
    return dg.AssetCheckResult(
        passed=not missing,
        metadata={"missing": len(missing), "secrets": dg.MetadataValue.json(missing)},
    )
