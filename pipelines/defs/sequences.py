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
    from pipelines.properties import materialize_contact_state

    as_of = resolve_as_of(context, config)
    with sequencer.connect() as con:
        materialize_contact_state(con, as_of, table="contact_state_now")
        con.execute("create or replace table contact_properties as select * from contact_state_now")
        rows = con.execute("select count(*) from contact_properties").fetchone()[0]
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
    from pipelines.compiled import compile_workspace
    from pipelines.compiler import ConditionSchema

    with sequencer.connect() as con:
        schema = ConditionSchema.from_database(con)
    compilation = compile_workspace(sequencer.workspace(), schema)
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
