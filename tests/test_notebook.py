"""The effectiveness notebook runs headless on a published snapshot, with data and without."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pipelines import db
from pipelines.metrics import build_metrics, publish_snapshot
from pipelines.models import Sequence
from tests.test_metrics import load_rows

STEPS = [
    {"id": "intro", "day": 1, "action": "follow_up"},
    {"id": "bump", "day": 3, "action": "follow_up"},
]
NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "sequence_effectiveness.ipynb"


def snapshot_of(tmp_path: Path, *, with_rows: bool) -> Path:
    con = db.connect(tmp_path / "sequencer.duckdb")
    sequences = []
    if with_rows:
        load_rows(con)  # and an A/B intro step: c1, c2 sent variant a, c3 sent b
        con.execute(
            "update actions set variant = if(contact_id = 'c3', 'b', 'a') where step = 'intro'"
        )
        held_out(con)
        sequences = [Sequence(name="s1", owner="alice", steps=STEPS, holdout_percent=10)]
    build_metrics(con, sequences)
    snapshot = publish_snapshot(tmp_path / "sequencer.duckdb", tmp_path / "snapshot.duckdb")
    con.close()
    return snapshot


def held_out(con) -> None:
    """Holdout enrolments of s1 beside load_rows' treated ones (c1…c5, enrolled 03-02 and
    03-03): h1 on 03-02 and h2 on 03-03, h1 replying on 03-04."""
    for cid, day in (("h1", 2), ("h2", 3)):
        at = dt.datetime(2026, 3, day, 14, 30)
        con.execute(
            "insert into enrollments (sequence, contact_id, enrollment_id, enrolled_on,"
            " enrolled_at, status) values ('s1', ?, ?, ?, ?, 'holdout')",
            [cid, f"s1:{cid}", at.date(), at],
        )
    con.execute(
        "insert into activities (activity_id, contact_id, type, occurred_at)"
        " values ('hr1', 'h1', 'email_replied', '2026-03-04 10:00')"
    )


def execute(tmp_path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on any cell error
    return nb


def outputs(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


def images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.parametrize("with_rows", [True, False], ids=["metrics", "empty"])
def test_notebook_runs_headless_on_the_snapshot(tmp_path, monkeypatch, with_rows):
    monkeypatch.setenv("SEQUENCER_SNAPSHOT", str(snapshot_of(tmp_path, with_rows=with_rows)))
    nb = execute(tmp_path)
    text = outputs(nb)
    if with_rows:
        assert "1 sequences, 2 steps, 4 sent emails" in text
        assert "1 sequences with a holdout" in text
        assert images(nb) == 6  # funnel, step rates, rates over time, exits, reply time, lift
        assert "s1 intro: b vs a: reply too few (2 and 1 of 200 each)" in text
    else:
        assert "0 sequences" in text and "no step with variants yet" in text
        assert "no holdout yet" in text


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
