"""The ``sequencer`` resource (a :class:`Project`: workspace and database) and the as-of rule
of a run."""

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from pipelines import sqlrun
from pipelines.instants import as_of_or_now
from pipelines.project import Project

AS_OF_TAG = "sequencer/as_of"
WRITER_POOL = "duckdb_writer"
# DatabaseBusy (a CLI command holds the file) is the usual transient failure; every writing
# step is idempotent (ingest by file hash, tick by occurrence ledger, send by idempotency key).
RETRY = dg.RetryPolicy(max_retries=3, delay=20, backoff=dg.Backoff.EXPONENTIAL)


class SequencerResource(dg.ConfigurableResource):
    """Where the workspace and the database are; empty paths mean the CLI's defaults.
    Assets call the engine through :attr:`project` (the CLI's :class:`Project`)."""

    project_dir: str = "."
    db_path: str = ""
    snapshot_path: str = ""

    @property
    def project(self) -> Project:
        """The engine's entry point, acting as the operator (the scheduler's case)."""
        return Project(
            self.project_dir,
            db_path=self.db_path or None,
            snapshot_path=self.snapshot_path or None,
        )

    @property
    def database(self) -> Path:
        return self.project.db_path

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.project.connection() as con:
            yield con


class AsOfConfig(dg.Config):
    """``as_of``: the run's instant (ISO-8601, no offset = UTC); empty = the schedule's tag,
    else now."""

    as_of: str = ""


def resolve_as_of(context: dg.AssetExecutionContext, config: AsOfConfig) -> dt.datetime:
    """Run config first, then the schedule's tag, then now — as naive UTC."""
    return as_of_or_now(config.as_of or context.run.tags.get(AS_OF_TAG, ""))


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
