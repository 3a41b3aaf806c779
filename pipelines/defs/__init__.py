"""Dagster objects only — thin glue over the engine modules (which never import dagster).

Loaded by ``dg.load_from_defs_folder``: resources.py (the ``sequencer`` resource and the
as-of rule), imports.py (one asset per entity + GX checks), sequences.py (derived properties,
compiled sequences), runs.py (tick, send and their blocking checks), insight.py (metrics and
the reader snapshot), automation.py (jobs, the 15-minute schedule, the import sensor).

Every step that opens the DuckDB file is in pool ``duckdb_writer`` (limit 1 in dagster.yaml):
DuckDB allows one process per file, readers included. The tick locks its DuckDB instance down
(no file or network access) before evaluating analyst SQL; that is safe only because the
default multiprocess executor runs every step in its own process, so the lock never reaches
an ingest. Run jobs with an in-process executor only in tests, where each step closes its
connection (which ends the locked instance) before the next one opens the file.
"""
