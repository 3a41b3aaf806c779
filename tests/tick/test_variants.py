"""Variants of an email step (issue 13 item 2): the tick records ``actions.variant`` from the
stored bucket (the same in daily, catch-up, replayed, batched and one-by-one runs), the
weights hold over many enrolments, and bad ``variants:`` fail validate naming file and step."""

from __future__ import annotations

from collections import Counter

import pytest

from pipelines import db
from pipelines.cli import main
from pipelines.models import Variant
from pipelines.project import Project
from pipelines.tick.experiments import bucket, variant_of
from pipelines.tick.run import run_tick
from tests.tick_helpers import (
    T0,
    classic,
    compile_root,
    contact,
    insert,
    open_db,
    tick,
    ts,
    write_sequences,
)

STEPS = """\
- id: intro
  day: 1
  action: email
  template: intro.md.j2
  subject: "Hi"
  variants:
    - {id: a, subject: "Subject A"}
    - {id: b, subject: "Subject B", template: other.md.j2}
- {id: call, day: 2, action: follow_up}
- id: bump
  day: 3
  action: email
  template: intro.md.j2
  thread: reply
  variants: [{id: x, weight: 1}, {id: y, weight: 3}]
- {id: plain, day: 4, action: email, template: intro.md.j2, subject: "No test"}
- {id: end, day: 9, action: follow_up}
"""
TEMPLATES = {"intro.md.j2": "Hi {{ contact.first_name }}", "other.md.j2": "Hello!"}
START = "starts_on: 2026-03-02\n"


def _workspace(root, steps: str = STEPS, names: str = "st"):
    return write_sequences(
        root, {n: classic(n, steps, extra=START) for n in names}, templates=TEMPLATES
    )


def _variants(con) -> list[tuple]:
    return con.execute(
        "select sequence, contact_id, step, status, variant from actions order by all"
    ).fetchall()


def test_variant_is_the_same_daily_caught_up_replayed_and_one_by_one(tmp_path):
    """200 contacts in two sequences of one instant (a batched layer): daily ticks, one
    catch-up tick, a replay of the last tick, and the one-by-one tick record the same
    variant for every action; it is the one the bucket's range names (variant_of), and
    null for the follow-ups and the email step without variants."""
    ids = [f"c{i:04d}" for i in range(200)]
    results = []
    for mode in ("daily", "catch-up", "one-by-one"):
        con = open_db(tmp_path / mode)
        insert(con, "contacts", [contact(c) for c in ids])
        root = _workspace(tmp_path / mode / "ws")
        if mode == "daily":
            for day in range(2, 12):
                tick(con, root, f"2026-03-{day:02d} 10:00")
            tick(con, root, "2026-03-11 10:00")  # a replay of the same instant: nothing new
        elif mode == "catch-up":
            tick(con, root, "2026-03-11 10:00")
        else:
            ws, compilation = compile_root(con, root)
            db.lock_down(con)
            report = run_tick(con, ws, compilation, ts("2026-03-11 10:00"), batched=False)
            assert not report.failed
        results.append(_variants(con))
        con.close()
    daily, caught_up, one_by_one = results
    assert daily == caught_up == one_by_one
    assert len(daily) == 2 * 200 * 5
    seq = Project(tmp_path / "daily" / "ws").workspace().sequences["s"]
    for sequence, cid, step, _, variant in daily:
        variants = seq.step(step).variants
        expected = variant_of(bucket(sequence, cid), variants) if variants else None
        assert variant == expected, (sequence, cid, step)
    by_step = Counter((s, st, v) for s, _, st, _, v in daily if s == "s")
    assert {k[2] for k in by_step if k[1] == "intro"} == {"a", "b"}
    assert {k[2] for k in by_step if k[1] == "bump"} == {"x", "y"}
    assert {k[2] for k in by_step if k[1] in ("call", "plain", "end")} == {None}


def test_a_stored_bucket_decides_and_an_edit_of_the_weights_changes_no_decision(tmp_path):
    """The variant follows enrollments.bucket as stored (a bucket set by hand to 0 gives the
    first variant, 9999 the last); reweighting the variants after the decision rewrites
    nothing already decided."""
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("p"), contact("q")])
    root = _workspace(tmp_path / "ws", names="s")
    tick(con, root, "2026-03-02 10:00")  # day 1: intro decided
    con.execute("update enrollments set bucket = case contact_id when 'p' then 0 else 9999 end")
    tick(con, root, "2026-03-04 10:00")  # day 3: bump decided from the stored buckets
    got = dict(
        con.execute("select contact_id, variant from actions where step = 'bump'").fetchall()
    )
    assert got == {"p": "x", "q": "y"}
    before = _variants(con)
    steps = STEPS.replace("{id: x, weight: 1}, {id: y, weight: 3}", "{id: x}, {id: y, weight: 0}")
    _workspace(tmp_path / "ws", steps, names="s")
    tick(con, root, "2026-03-05 10:00")
    after = _variants(con)
    assert [r for r in after if r[2] in ("intro", "bump")] == [
        r for r in before if r[2] in ("intro", "bump")
    ]


def test_weights_hold_over_ten_thousand_enrolments(tmp_path):
    """Weights 1:3 (and a weight-0 variant between them that nobody gets): 25 % ± 2 % of
    10,000 seeded contacts take the first variant, the rest the last; and the tick agrees
    with variant_of for each of them."""
    steps = """\
    - id: intro
      day: 1
      action: email
      template: intro.md.j2
      subject: "Hi"
      variants: [{id: a, weight: 1}, {id: zero, weight: 0}, {id: b, weight: 3}]
    - {id: end, day: 5, action: follow_up}
    """
    con = open_db(tmp_path)
    ids = [f"lead-{i:05d}" for i in range(10_000)]
    con.execute(
        "insert into contacts (contact_id, email, first_name, created_at)"
        " select id, id || '@x.example', 'Lead', ? from unnest(?::varchar[]) as t(id)",
        [T0, ids],
    )
    root = write_sequences(
        tmp_path / "ws", {"w": classic("w", steps, extra=START)}, templates=TEMPLATES
    )
    tick(con, root, "2026-03-02 10:00")
    got = dict(con.execute("select contact_id, variant from actions").fetchall())
    assert len(got) == 10_000
    counts = Counter(got.values())
    assert set(counts) == {"a", "b"}
    assert 0.23 <= counts["a"] / 10_000 <= 0.27, counts
    arms = [Variant(id="a", weight=1), Variant(id="zero", weight=0), Variant(id="b", weight=3)]
    assert all(got[c] == variant_of(bucket("w", c), arms) for c in ids)


BAD = {
    "one variant": ("variants: [{id: a}]", "variants needs at least 2 variants"),
    "duplicate ids": ("variants: [{id: a}, {id: a}]", "duplicate variant ids ['a']"),
    "negative weight": (
        "variants: [{id: a, weight: -1}, {id: b}]",
        "greater than or equal to 0",
    ),
    "weights of 0": ("variants: [{id: a, weight: 0}, {id: b, weight: 0}]", "add up to 0"),
    "unknown key": ("variants: [{id: a, subjct: x}, {id: b}]", "subjct"),
    "no template": (
        "variants: [{id: a, template: intro.md.j2}, {id: b}]",
        "an email step needs a template",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_variants_fail_validate_naming_the_file_and_the_step(tmp_path, capsys, case):
    text, message = BAD[case]
    template = "" if case == "no template" else "template: intro.md.j2, "
    steps = f'- {{id: intro, day: 1, action: email, {template}subject: "Hi", {text}}}\n'
    write_sequences(tmp_path, {"s": classic("s", steps)}, templates=TEMPLATES)
    assert main(["validate", "--project", str(tmp_path)]) == 1
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert any("sequences/s.yaml" in x and "'intro'" in x and message in x for x in errors), errors


def test_variants_on_a_task_step_fail_validate(tmp_path, capsys):
    steps = "- {id: call, day: 1, action: follow_up, variants: [{id: a}, {id: b}]}\n"
    write_sequences(tmp_path, {"s": classic("s", steps)}, templates=TEMPLATES)
    assert main(["validate", "--project", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "only an email step may have variants" in err and "'call'" in err


@pytest.mark.parametrize(
    "variant, message",
    [
        ("{id: b, template: missing.md.j2}", "unknown template 'missing.md.j2'"),
        ('{id: b, subject: "{{ contact.first_name "}', "template syntax error"),
        ("{id: b, template: broken.md.j2}", "template broken.md.j2: template syntax error"),
    ],
    ids=["missing template", "bad subject", "bad template"],
)
def test_validate_checks_every_variants_subject_and_template(tmp_path, capsys, variant, message):
    steps = (
        '- {id: intro, day: 1, action: email, template: intro.md.j2, subject: "Hi", '
        f"variants: [{{id: a}}, {variant}]}}\n"
    )
    templates = {**TEMPLATES, "broken.md.j2": "Hi {% if %}"}
    write_sequences(tmp_path, {"s": classic("s", steps)}, templates=templates)
    assert main(["validate", "--project", str(tmp_path)]) == 1
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert any("sequences/s.yaml" in x and "'intro'" in x and message in x for x in errors), errors
