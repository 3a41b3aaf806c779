"""Derived contact properties and the compiled sequences (SPEC 5)."""

import dagster as dg

from pipelines.defs.resources import (
    RETRY,
    WRITER_POOL,
    AsOfConfig,
    SequencerResource,
    resolve_as_of,
)


@dg.asset(
    group_name="sequences",
    deps=["contacts", "accounts", "activities"],
    kinds={"duckdb", "sql"},
    pool=WRITER_POOL,
    retry_policy=RETRY,
)
def contact_properties(
    context: dg.AssetExecutionContext, config: AsOfConfig, sequencer: SequencerResource
) -> dg.MaterializeResult:
    """Table ``contact_properties``: every contact's derived properties as of the run, for
    analysts and the UI (the tick computes its own, per occurrence instant)."""
    as_of = resolve_as_of(context, config)
    rows = sequencer.project.contact_properties(as_of)
    return dg.MaterializeResult(metadata={"as_of": as_of.isoformat(), "contacts": rows})


def describe(compilation) -> dict[str, dict]:
    """Per sequence: every condition's compiled SQL and the columns it reads."""
    out = {}
    for name, c in sorted(compilation.sequences.items()):
        groups = {"views": list(c.views.values()), "where": c.where, "exit": c.exit_where}
        groups.update({f"step {step}": conds for step, conds in c.steps.items()})
        out[name] = {
            label: [
                {
                    "source": k.source,
                    "sql": k.sql,
                    "columns": sorted(".".join(col) for col in k.columns),
                }
                for k in conds
            ]
            for label, conds in groups.items()
            if conds
        }
    return out


@dg.asset(
    group_name="sequences",
    deps=["contacts", "accounts"],
    kinds={"python", "sql"},
    pool=WRITER_POOL,
    retry_policy=RETRY,
    check_specs=[dg.AssetCheckSpec("all_sequences_compile", asset="compiled_sequences")],
)
def compiled_sequences(sequencer: SequencerResource) -> dg.MaterializeResult:
    """Every sequence file compiled to SQL; a broken one is reported and left out of the tick."""
    compilation = sequencer.project.compile()
    errors = [str(e) for e in compilation.errors]
    return dg.MaterializeResult(
        metadata={
            "sequences": len(compilation.sequences),
            "compiled": dg.MetadataValue.json(describe(compilation)),
            "errors": dg.MetadataValue.json(errors),
        },
        check_results=[
            dg.AssetCheckResult(
                passed=not errors,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"errors": dg.MetadataValue.json(errors)},
            )
        ],
    )
