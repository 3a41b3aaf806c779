"""Progress of long work: a bar redrawn in place on a terminal, one closing line in a log."""

from __future__ import annotations

import io

from pipelines.progress import Progress


def test_a_terminal_sees_the_bar_redrawn_in_place_and_finished_on_its_own_line():
    out = io.StringIO()
    with Progress("catch-up", 3, stream=out, interactive=True) as p:
        for day in ("03-02", "03-03", "03-04"):
            p.step(note=day)
    text = out.getvalue()
    assert text.startswith("\r") and text.endswith("\n") and text.count("\n") == 1
    assert "3/3" in text.splitlines()[-1] and "[" + "#" * 24 + "]" in text
    assert "03-04" in text  # the latest step's note


def test_a_log_gets_one_line_at_the_end_and_none_for_quick_work():
    slow, quick = io.StringIO(), io.StringIO()
    with Progress("ingest contacts.csv", 2, stream=slow, interactive=False, min_seconds=0) as p:
        p.step()
        assert slow.getvalue() == ""  # quiet while it runs
        p.step()
    assert slow.getvalue().startswith("ingest contacts.csv: 2/2 in ")
    assert slow.getvalue().count("\n") == 1
    with Progress("tick", 5, stream=quick, interactive=False, min_seconds=60) as p:
        p.step(5)
    assert quick.getvalue() == ""


def test_a_catch_up_run_steps_the_bar_once_per_instant_to_its_total(tmp_path):
    """Two sequences at different times, three days behind: six occurrences in six instants;
    the bar ends at 6/6 with the last instant as its note."""
    from pipelines.project import Project
    from tests.tick_helpers import classic, contact, insert, open_db, ts, write_sequences

    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    steps = "- {id: f1, day: 1, action: follow_up}"
    root = write_sequences(tmp_path / "ws", {
        "a": classic("a", steps),
        "b": classic("b", steps, schedule="{time: '15:00', timezone: UTC}"),
    })  # fmt: skip
    out, bars = io.StringIO(), []

    def progress(total: int) -> Progress:
        bars.append(Progress("run", total, stream=out, interactive=True))
        return bars[-1]

    Project(root).run(ts("2026-03-02 08:00"), con=con, allow_future=True)  # they start here
    Project(root).run(ts("2026-03-04 16:00"), con=con, allow_future=True, progress=progress)
    [bar] = bars
    assert (bar.total, bar.done) == (6, 6)
    last = out.getvalue().splitlines()[-1]
    assert "6/6" in last and "2026-03-04 15:00Z" in out.getvalue()
