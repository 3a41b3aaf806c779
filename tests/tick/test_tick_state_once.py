"""The activity state is written once per run (issue 11): a run stopped between two instants
leaves the stored state and its watermark at the run's start, and the next run decides
exactly what one uninterrupted run decides, ending with the same stored state."""

from __future__ import annotations

import pytest

from pipelines import db
from pipelines.progress import Progress
from pipelines.tick.run import run_tick
from pipelines.tick.state import watermark
from tests.tick_helpers import (
    actions,
    activity,
    classic,
    compile_root,
    contact,
    enrollments,
    insert,
    open_db,
    ts,
    write_sequences,
)

STEPS = """
- {id: call, day: 1, action: call_reminder}
- {id: fu, day: 2, action: follow_up, when: ["last_activity_type <> 'meeting'"]}
- {id: last, day: 3, action: call_reminder}
"""
SEQUENCES = {
    "early": classic(
        "early",
        STEPS,
        audience="where: [\"last_contacted_mode <> 'Replied'\"]",
        schedule="{time: '08:00', timezone: UTC}",
    ),
    "late": classic(
        "late", STEPS, extra="exit: {replied: true}", schedule="{time: '16:00', timezone: UTC}"
    ),
}
ACTIVITIES = [
    ("c1", "email_replied", "2026-03-02 12:00"),  # between the two instants of day 1
    ("c2", "meeting", "2026-03-03 09:00"),
    ("c3", "email_replied", "2026-03-04 07:00"),
    ("c4", "call_outgoing", "2026-03-04 17:00"),
    ("c5", "email_replied", "2026-03-05 10:00"),
]
AS_OF = "2026-03-06 20:00"


class _Stop(Exception):
    pass


class _StopAfter(Progress):
    """A progress bar that stops the run after ``n`` instants (as a crash between two group
    commits would: the committed groups stay, the rest of the run never happens)."""

    def __init__(self, n: int) -> None:
        self.left = n

    def step(self, n: int = 1, note: str = "") -> None:
        self.left -= 1
        if self.left == 0:
            raise _Stop

    def close(self) -> None:
        pass


def _load(tmp_path):
    con = open_db(tmp_path)
    insert(con, "contacts", [contact(f"c{i}") for i in range(1, 7)])
    insert(con, "activities", [activity(*a) for a in ACTIVITIES])
    return con


def _run(con, root, as_of: str = AS_OF, stop_after: int | None = None):
    ws, compilation = compile_root(con, root)
    db.lock_down(con)
    progress = None if stop_after is None else (lambda total: _StopAfter(stop_after))
    return run_tick(con, ws, compilation, ts(as_of), progress)


def _state(con):
    return {
        "enrollments": enrollments(con),
        "actions": actions(con),
        "state": con.execute("select * from contact_activity_state order by all").fetchall(),
        "watermark": watermark(con),
    }


@pytest.mark.parametrize("stop_after", [1, 3, 6])
def test_a_run_stopped_between_instants_then_rerun_equals_one_run(tmp_path, stop_after):
    """A first run to day 1 09:00 (the state stored at 08:00), then a catch-up to day 5:
    whole, or stopped after ``stop_after`` instants and run again."""
    root = write_sequences(tmp_path / "ws", SEQUENCES)
    whole = _load(tmp_path / "whole")
    _run(whole, root, "2026-03-02 09:00")
    assert watermark(whole)[0] == ts("2026-03-02 08:00")
    _run(whole, root)
    expected = _state(whole)
    assert expected["watermark"] == (ts("2026-03-06 16:00"), len(ACTIVITIES))
    assert len(expected["state"]) == len(ACTIVITIES)

    con = _load(tmp_path / "stopped")
    _run(con, root, "2026-03-02 09:00")
    before = _state(con)
    with pytest.raises(_Stop):
        _run(con, root, stop_after=stop_after)
    stopped = _state(con)
    assert len(stopped["actions"]) > len(before["actions"])  # some instants committed
    assert (stopped["state"], stopped["watermark"]) == (before["state"], before["watermark"])
    _run(con, root)
    assert _state(con) == expected
