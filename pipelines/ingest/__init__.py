"""Ingest (SPEC 3): contact, account and activity files into DuckDB, set-based.

- :mod:`.load` — ``ingest_file`` / ``ingest_files``: one file, one transaction, one unit;
- :mod:`.source` — the file's bytes as DuckDB reads them (UTF-8, one line ending);
- :mod:`.read` — the file as text columns (``ingest_raw``), its entity and columns;
- :mod:`.check` — typing, duplicates and the CSV grammar checks (``ingest_stg``);
- :mod:`.write` — quarantine and the bulk merge;
- :mod:`.quality` — the Great Expectations suite over a seeded sample of what was loaded.
"""
