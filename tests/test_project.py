"""The one entry point (``Project``): the tests' tick is the production path, lock included."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.db import connect
from pipelines.project import Project
from tests.tick_helpers import classic, contact, insert, open_db, tick, write_sequences

CALL = "- {id: call, day: 1, action: call_reminder}"


def test_run_on_a_given_connection_locks_it_down(tmp_path):
    """``Project.run(con=...)`` compiles, locks the connection and ticks on it, as the CLI
    and Dagster do: afterwards the instance reads no file and its settings are frozen; a
    second tick on the same connection is fine (locking twice is a no-op)."""
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    root = write_sequences(tmp_path / "ws", {"s": classic("s", CALL)})
    csv = tmp_path / "x.csv"
    csv.write_text("a\n1\n", encoding="utf-8")
    assert con.execute(f"select count(*) from read_csv('{csv}')").fetchone() == (1,)
    assert tick(con, root, "2026-03-02 10:00").entries == 1
    with pytest.raises(duckdb.Error, match="disabled|external"):
        con.execute(f"select count(*) from read_csv('{csv}')")
    with pytest.raises(duckdb.Error, match="locked"):
        con.execute("set enable_external_access = true")
    assert len(tick(con, root, "2026-03-03 10:00").occurrences) == 1
    con.close()
    fresh = open_db(tmp_path)  # the lock ended with the instance's last connection
    assert fresh.execute(f"select count(*) from read_csv('{csv}')").fetchone() == (1,)
    fresh.close()


def test_run_opens_and_closes_its_own_connection(workspace, db_path):
    root = workspace({"s": classic("s", CALL)})
    db = db_path
    con = connect(db)
    insert(con, "contacts", [contact("c1")])
    con.close()
    result = Project(root, db_path=db).run("2026-03-02T10:00:00Z")
    assert (result.report.entries, result.problems) == (1, [])
    con = connect(db)  # the file is free again, and this instance is not locked
    assert con.execute("select current_setting('lock_configuration')").fetchone() == (False,)
    con.close()
