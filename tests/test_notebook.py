"""The effectiveness notebook runs headless on a published snapshot, with data and without."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pipelines import db
from pipelines.metrics import build_metrics, publish_snapshot
from tests.test_metrics import load_rows

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "sequence_effectiveness.ipynb"


def snapshot_of(tmp_path: Path, *, with_rows: bool) -> Path:
    con = db.connect(tmp_path / "sequencer.duckdb")
    if with_rows:
        load_rows(con)  # and an A/B intro step: c1, c2 sent variant a, c3 sent b
        con.execute(
            "update actions set variant = if(contact_id = 'c3', 'b', 'a') where step = 'intro'"
        )
    build_metrics(con)
    snapshot = publish_snapshot(tmp_path / "sequencer.duckdb", tmp_path / "snapshot.duckdb")
    con.close()
    return snapshot


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
        assert images(nb) == 5  # funnel, step rates, rates over time, exits, reply time
        assert "s1 intro: b vs a: reply too few (2 and 1 of 200 each)" in text
    else:
        assert "0 sequences" in text and "no step with variants yet" in text


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
