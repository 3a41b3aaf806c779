"""Ingest (SPEC 3): contact, account and activity files into DuckDB, set-based.

- :mod:`.load` — ``ingest_file`` / ``ingest_files``: one file, one transaction;
- :mod:`.read` — the file as text columns (``ingest_raw``), its entity and columns;
- :mod:`.check` — typing, duplicates and the CSV grammar checks (``ingest_stg``);
- :mod:`.write` — quarantine and the bulk merge;
- :mod:`.quality` — the Great Expectations suite over what was loaded.
"""
