"""``variant_metrics`` (issue 13 item 2) from a hand-built table: counts per variant as
step_metrics counts them (machine opens out), the comparisons with the control exactly as
pipelines.stats gives them (Bonferroni over the step's comparisons), "too few" below MIN_N;
``sequencer metrics`` prints one line per comparison."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines import db
from pipelines.cli import main
from pipelines.metrics import build_metrics
from pipelines.models import Sequence
from pipelines.stats import MIN_N, compare
from pipelines.variant_metrics import HEADER, verdict_lines
from tests.workspace_helpers import write_workspace

D1 = dt.date(2026, 3, 2)
SENT_AT = dt.datetime(2026, 3, 2, 14, 30)
# variant: (sent, human opens, machine-only opens, clicks without an open event, replies)
ARMS = {"a": (400, 100, 50, 0, 20), "b": (400, 110, 60, 10, 45), "c": (30, 3, 0, 0, 9)}
SEQUENCE = {
    "name": "s",
    "owner": "alice",
    "steps": [
        {
            "id": "intro",
            "day": 1,
            "action": "email",
            "template": "intro.md.j2",
            "subject": "Hi",
            "variants": [{"id": v} for v in ("a", "b", "c", "unsent")],
        },
        {"id": "bump", "day": 3, "action": "email", "template": "intro.md.j2", "subject": "x"},
    ],
}


def _arm(con, variant: str, sent: int, opens: int, machine: int, clicks: int, replies: int):
    """``sent`` contacts sent ``intro`` in ``variant``: the first ``opens`` open it (human),
    the next ``machine`` only have a machine open, the next ``clicks`` click without an
    open event (a click counts as an open); the first ``replies`` reply."""
    con.execute(
        "insert into actions (idempotency_key, sequence, contact_id, enrollment_id, step,"
        " step_index, day, action, occurrence_on, occurrence_at, status, message_id,"
        " finished_at, variant)"
        " select 'k-' || $v || i, 's', $v || i, 's:' || $v || i, 'intro', 0, 1, 'email',"
        " $d, $t, 'sent', 'm-' || $v || i, $t, $v from range($n) as r(i)",
        {"v": variant, "n": sent, "d": D1, "t": SENT_AT},
    )
    events = [
        ("email_opened", 0, opens, None),
        ("email_opened", opens, opens + machine, '{"machine": true}'),
        ("email_clicked", opens + machine, opens + machine + clicks, None),
        ("email_replied", 0, replies, None),
    ]
    for kind, low, high, detail in events:
        con.execute(
            "insert into activities (activity_id, contact_id, type, occurred_at, message_id,"
            " detail) select $kind || '-' || $v || i, $v || i, $kind, $t + interval 1 hour,"
            " 'm-' || $v || i, $detail from range($low, $high) as r(i)",
            {"kind": kind, "v": variant, "low": low, "high": high, "t": SENT_AT,
             "detail": detail},
        )  # fmt: skip


@pytest.fixture
def con(tmp_path):
    con = db.connect(tmp_path / "m.duckdb")
    for variant, counts in ARMS.items():
        _arm(con, variant, *counts)
    con.execute(  # an email step without variants: not in variant_metrics
        "insert into actions (idempotency_key, sequence, contact_id, enrollment_id, step,"
        " day, action, occurrence_on, occurrence_at, status, message_id)"
        " values ('k-bump', 's', 'a0', 's:a0', 'bump', 3, 'email', ?, ?, 'sent', 'm-bump')",
        [D1, SENT_AT],
    )
    yield con
    con.close()


def _rows(con) -> dict[str, dict]:
    cur = con.execute("select * from variant_metrics")
    names = [d[0] for d in cur.description]
    return {r[2]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def test_counts_per_variant_as_step_metrics_counts_them(con):
    rows = build_metrics(con, [Sequence.model_validate(SEQUENCE)])
    assert rows["variant_metrics"] == 4
    got = _rows(con)
    assert {(r["sequence"], r["step"]) for r in got.values()} == {("s", "intro")}
    counts = {v: (r["sent"], r["opened"], r["clicked"], r["replied"]) for v, r in got.items()}
    assert counts == {
        "a": (400, 100, 0, 20),
        "b": (400, 120, 10, 45),  # 110 opens + 10 clicks without an open event
        "c": (30, 3, 0, 9),
        "unsent": (0, 0, 0, 0),  # in the file, never sent: zeros
    }
    assert [got[v]["position"] for v in ("a", "b", "c", "unsent")] == [0, 1, 2, 3]
    assert got["b"]["reply_rate"] == 45 / 400 and got["b"]["open_rate"] == 120 / 400
    intro = con.execute(
        "select sent, opened, replied from step_metrics where step = 'intro' and period = 'all'"
    ).fetchone()
    assert intro == (830, 223, 74)  # step_metrics unchanged: the arms add up to it


def test_each_variant_is_compared_with_the_first_as_pipelines_stats_says(con):
    build_metrics(con, [Sequence.model_validate(SEQUENCE)])
    got = _rows(con)
    control = got["a"]
    assert control["is_control"] and control["reply_verdict"] is None
    assert all(r["control"] == "a" and r["comparisons"] == 3 for r in got.values())
    cases = [("b", "reply", "replied"), ("b", "open", "opened"), ("c", "reply", "replied"),
             ("unsent", "open", "opened")]  # fmt: skip
    for variant, prefix, count in cases:
        row = got[variant]
        expected = compare(control[count], 400, row[count], row["sent"], comparisons=3,
                           names=("a", variant))  # fmt: skip
        for column in ("diff", "ci_low", "ci_high", "p_value", "test", "significant", "verdict"):
            assert row[f"{prefix}_{column}"] == getattr(expected, column), (variant, column)
    # the numbers themselves: 20/400 vs 45/400, z-test p = 0.0012 < 0.05 / 3
    b = got["b"]
    assert (b["reply_test"], round(b["reply_p_value"], 4)) == ("z", 0.0012)
    assert (round(b["reply_ci_low"], 4), round(b["reply_ci_high"], 4)) == (0.0248, 0.1013)
    assert b["reply_significant"] and b["reply_verdict"] == "b better"
    assert round(b["reply_diff"], 4) == 0.0625
    assert b["open_verdict"] == "no difference"  # 100/400 vs 120/400
    assert got["c"]["reply_verdict"] == f"too few (400 and 30 of {MIN_N} each)"
    assert not got["c"]["reply_significant"]
    assert got["unsent"]["open_verdict"] == f"too few (400 and 0 of {MIN_N} each)"
    assert got["unsent"]["open_p_value"] is None and got["unsent"]["open_rate"] is None


def test_bonferroni_over_the_steps_comparisons(tmp_path):
    """36/400 vs 20/400 replies (p = 0.027): "b better" when b is the step's only
    comparison, "no difference" when the step compares three variants with the control
    (0.027 > 0.05 / 3); a variant recorded but no longer in the file still counts, last."""
    con = db.connect(tmp_path / "b.duckdb")
    for variant in "abcd":
        _arm(con, variant, 400, 0, 0, 0, 36 if variant == "b" else 20)
    step = SEQUENCE["steps"][0]
    for listed, comparisons, verdict in [("ab", 3, "no difference"), ("abcd", 3, "no difference")]:
        one = {**SEQUENCE, "steps": [{**step, "variants": [{"id": v} for v in listed]}]}
        build_metrics(con, [Sequence.model_validate(one)])
        got = _rows(con)
        assert got["b"]["comparisons"] == comparisons
        assert got["b"]["reply_verdict"] == verdict
        assert round(got["b"]["reply_p_value"], 3) == 0.027
    assert got["c"]["position"] == 2
    con.execute("delete from actions where variant in ('c', 'd')")
    build_metrics(con, [Sequence.model_validate({**SEQUENCE, "steps": [{**step, "variants": [
        {"id": "a"}, {"id": "b"}]}]})])  # fmt: skip
    got = _rows(con)
    assert set(got) == {"a", "b"} and got["b"]["comparisons"] == 1
    assert got["b"]["reply_verdict"] == "b better"
    con.close()


def test_verdict_lines_and_the_cli(tmp_path, capsys):
    write_workspace(tmp_path, {"s": _yaml()})
    con = db.connect(tmp_path / ".sequencer" / "sequencer.duckdb")
    for variant, counts in ARMS.items():
        _arm(con, variant, *counts)
    con.close()
    assert main(["metrics", "--rebuild", "--project", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    at = out.index(HEADER)
    lines = out[at + 1 : at + 4]
    assert lines[0].startswith("s intro: b (400 sent) vs control a (400 sent) — reply 11.2% vs")
    assert "+6.2 pts" in lines[0] and "p=0.001 z): b better" in lines[0]
    assert "human open 30.0% vs 25.0%" in lines[0] and lines[0].endswith("no difference")
    assert lines[1].startswith("s intro: c (30 sent)") and "too few (400 and 30" in lines[1]
    assert lines[2].startswith("s intro: unsent (0 sent)")
    con = db.connect(tmp_path / ".sequencer" / "sequencer.duckdb")
    assert len(verdict_lines(con)) == 3 and verdict_lines(con, "other") == []
    assert verdict_lines(con, only=[]) == []
    con.close()


def test_no_variants_no_verdict_lines(tmp_path, capsys):
    root = write_workspace(tmp_path, {"s": _yaml(variants=False)})
    assert main(["metrics", "--rebuild", "--project", str(root)]) == 0
    assert HEADER not in capsys.readouterr().out


def _yaml(variants: bool = True) -> str:
    arms = ", variants: [{id: a}, {id: b}, {id: c}, {id: unsent}]" if variants else ""
    return (
        "name: s\nowner: alice\nsteps:\n"
        f'  - {{id: intro, day: 1, action: email, template: intro.md.j2, subject: "Hi"{arms}}}\n'
    )
