"""The batched tick (pipelines/tick/batch.py) decides exactly what the tick one sequence at a
time decides: random small workspaces whose sequences share instants (some independent, so
they form a batched layer, some reading ``sequences`` or naming ``exclusive_with``, some
holding contacts out), ticked daily both ways; plus the layering itself and the fallback when
a batched statement fails."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import db
from pipelines.tick import batch
from pipelines.tick.occurrences import Occurrence
from pipelines.tick.run import run_tick
from tests.tick.test_tick_property import (
    AUDIENCES,
    DAYS,
    START,
    _decisions,
    _load,
    activities_st,
    contacts_st,
    sequence_st,
)
from tests.tick_helpers import compile_root
from tests.workspace_helpers import write_workspace

NAMES = ["sa", "sb", "sc", "sd"]
INDEPENDENT_AUDIENCES = [a for a in AUDIENCES if "sequences" not in a]


@st.composite
def shared_instant_workspace_st(draw):
    sequences = [draw(sequence_st(name, NAMES)) for name in NAMES]
    for seq in sequences:  # one instant for all: every group has every sequence
        seq["schedule"] = {"time": "09:00", "timezone": "UTC", "exclude_weekends": False}
        seq["holdout_percent"] = draw(st.sampled_from([0, 0, 30, 50]))  # SPEC 11
    for seq in sequences[:2]:  # sa, sb independent: a batched layer in every example
        seq["exclusive_with"] = []
        if "sequences" in seq["audience"]["where"][0]:
            seq["audience"]["where"] = [draw(st.sampled_from(INDEPENDENT_AUDIENCES))]
        seq["exit"]["where"] = [w for w in seq["exit"]["where"] if "sequences" not in w]
    # branches per UNION ALL statement: 1 and 2 write the phase tables in several statements
    size = draw(st.sampled_from([1, 2, batch.BATCH_SIZE]))
    return sequences, draw(contacts_st), draw(activities_st), size


def _tick_days(con, root: Path, *, batched: bool) -> list:
    layered = []
    for day in range(DAYS + 1):
        ws, compilation = compile_root(con, root)
        db.lock_down(con)  # as Project.run: analyst SQL runs next
        as_of = START + dt.timedelta(days=day, hours=10)
        report = run_tick(con, ws, compilation, as_of, batched=batched)
        assert not report.failed, [str(f) for f in report.failed]
        assert not report.batch_fallbacks  # a batching bug would be hidden by the fallback
        layered.append(batch.layers([o.occurrence for o in report.occurrences], compilation))
    return layered


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(shared_instant_workspace_st())
def test_batched_tick_decides_what_the_one_by_one_tick_decides(case):
    sequences, contacts, acts, size = case
    kept, batch.BATCH_SIZE = batch.BATCH_SIZE, size
    with tempfile.TemporaryDirectory() as tmp:
        root = write_workspace(
            Path(tmp) / "ws", {s["name"]: yaml.safe_dump(s, sort_keys=False) for s in sequences}
        )
        batched = _load(Path(tmp) / "batched", sequences, contacts, acts)
        alone = _load(Path(tmp) / "alone", sequences, contacts, acts)
        try:
            layered = _tick_days(batched, root, batched=True)
        finally:
            batch.BATCH_SIZE = kept
        _tick_days(alone, root, batched=False)
        assert _decisions(batched) == _decisions(alone)
        assert any(len(layer) > 1 for day in layered for layer in day)  # not vacuous
        batched.close()
        alone.close()


GOOD = """
    name: {name}
    owner: alice
    audience: {{where: ["{audience}"]}}
    schedule: {{time: "09:00", timezone: UTC}}
    {extra}
    steps:
      - {{id: intro, day: 1, action: email, template: intro.md.j2, subject: "Hi"}}
      - {{id: call, day: 2, action: call_reminder, note: "Call"}}
"""


def _seq(name: str, audience: str = "true", extra: str = "") -> str:
    return GOOD.format(name=name, audience=audience, extra=extra)


def test_layers_keep_the_order_of_every_pair_where_one_sees_the_other(tmp_path):
    """c reads `sequences` (sees everyone), e sees a, f sees g: each of those pairs keeps its
    name order across layers; the rest share layers."""
    root = write_workspace(
        tmp_path / "ws",
        {
            "a": _seq("a"),
            "b": _seq("b"),
            "c": _seq("c", "len(sequences) = 0"),
            "d": _seq("d"),
            "e": _seq("e", extra="exclusive_with: [a]"),
            "f": _seq("f", extra="exclusive_with: [g]"),
            "g": _seq("g"),
        },
    )
    con = _load(tmp_path / "db", [], [("a@x.example", 0, False)], [])
    _, compilation = compile_root(con, root)
    group = [Occurrence(n, dt.date(2026, 3, 5), START) for n in "abcdefg"]
    shape = [[o.sequence for o in layer] for layer in batch.layers(group, compilation)]
    assert shape == [["a", "b"], ["c"], ["d", "e", "f"], ["g"]]


def test_a_batch_that_fails_is_redone_one_by_one_and_names_the_culprit(tmp_path):
    """A condition that fails only on data, in a layer with two good sequences: the batched
    statement fails, the group is redone one sequence at a time, the culprit is left out and
    the good ones decide what they decide alone."""
    broken = _seq("b", "date_add(created_at, INTERVAL 100000000 YEAR) > now()")
    contacts = [("a@x.example", 0, False), ("b@x.example", 0, False)]
    as_of = START + dt.timedelta(hours=10)
    results = {}
    for label, files in {
        "with": {"a": _seq("a"), "b": broken, "c": _seq("c")},
        "without": {"a": _seq("a"), "c": _seq("c")},
    }.items():
        root = write_workspace(tmp_path / label / "ws", files)
        con = _load(tmp_path / label / "db", [], contacts, [])
        ws, compilation = compile_root(con, root)
        report = run_tick(con, ws, compilation, as_of)
        if label == "with":  # the three share one layer: its batched entries fail
            group = [Occurrence(n, as_of.date(), START + dt.timedelta(hours=9)) for n in "abc"]
            assert len(batch.layers(group, compilation)) == 1
        assert bool(report.batch_fallbacks) == (label == "with")
        results[label] = (sorted(report.failed_sequences), _decisions(con))
        con.close()
    assert results["with"][0] == ["b"]
    assert results["without"][0] == []
    assert results["with"][1] == results["without"][1]
    assert results["with"][1]["enrollments"]  # the good sequences did enrol
