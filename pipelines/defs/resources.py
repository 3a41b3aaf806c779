"""The ``sequencer`` resource (project directory, database) and the as-of rule of a run."""

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from pipelines import db, sqlrun
from pipelines.metrics import DEFAULT_SNAPSHOT

AS_OF_TAG = "sequencer/as_of"
WRITER_POOL = "duckdb_writer"
# DatabaseBusy (a CLI command holds the file) is the usual transient failure; every writing
# step is idempotent (ingest by file hash, tick by occurrence ledger, send by idempotency key).
RETRY = dg.RetryPolicy(max_retries=3, delay=20, backoff=dg.Backoff.EXPONENTIAL)


class SequencerResource(dg.ConfigurableResource):
    """Where the workspace and the database are; empty paths mean the CLI's defaults."""

    project_dir: str = "."
    db_path: str = ""
    snapshot_path: str = ""

    @property
    def project(self) -> Path:
        return Path(self.project_dir).resolve()

    @property
    def database(self) -> Path:
        return Path(self.db_path) if self.db_path else db.default_db_path(self.project)

    @property
    def snapshot(self) -> Path:
        return Path(self.snapshot_path) if self.snapshot_path else self.project / DEFAULT_SNAPSHOT

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = db.connect(self.database)
        try:
            yield con
        finally:
            con.close()

    def workspace(self):
        from pipelines.workspace import load_workspace

        return load_workspace(self.project, strict=False)  # a broken file skips only itself


class AsOfConfig(dg.Config):
    """``as_of``: the run's instant (ISO-8601, no offset = UTC); empty = the schedule's tag,
    else now."""

    as_of: str = ""


def resolve_as_of(context: dg.AssetExecutionContext, config: AsOfConfig) -> dt.datetime:
    """Run config first, then the schedule's tag, then now — as naive UTC."""
    text = config.as_of or context.run.tags.get(AS_OF_TAG, "")
    if not text:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None)
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def as_of_run_config(as_of: str) -> dict:
    """Run config giving every as-of step the same instant (a replay decides identically)."""
    return {
        "ops": {op: {"config": {"as_of": as_of}} for op in ("contact_properties", "tick", "send")}
    }


def _env_or(name: str, default: str):
    """``EnvVar(name)`` when set (resolved at launch, shown as a variable in the UI), else
    the default: SEQUENCER_PROJECT / SEQUENCER_DB override the project and the database."""
    return dg.EnvVar(name) if os.environ.get(name) else default


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "sequencer": SequencerResource(
                project_dir=_env_or("SEQUENCER_PROJECT", "."),
                db_path=_env_or("SEQUENCER_DB", ""),
                snapshot_path=_env_or("SEQUENCER_SNAPSHOT", ""),
            )
        }
    )


def offending_rows_check(
    con: duckdb.DuckDBPyConnection, name: str, **params
) -> dg.AssetCheckResult:
    """Run ``sql/checks/assert_<name>.sql``: zero rows pass; otherwise report the count and a
    sample."""
    found = sqlrun.rows(con, f"checks/assert_{name}.sql", params)
    sample = [{k: str(v) for k, v in row.items()} for row in found[:20]]
    return dg.AssetCheckResult(
        passed=not found,
        metadata={"offending_rows": len(found), "sample": dg.MetadataValue.json(sample)},
    )
