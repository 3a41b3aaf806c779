"""Holdouts (SPEC 11, issue 13 item 3), rows in → rows out on a real DuckDB file.

An enrolment whose bucket is below ``holdout_percent * 100`` is inserted with status
``holdout``: it decides no step, never exits, never re-enters, does not count as "in" the
sequence for another sequence's ``exclusive_with`` or ``contact.sequences``; manual enrolments
follow the same rule. Both tick paths (batched layer, one sequence at a time) agree.
"""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from pipelines import db
from pipelines.cli_why import story_lines
from pipelines.models import Sequence
from pipelines.tick import enrollment
from pipelines.tick.experiments import bucket
from pipelines.tick.run import run_tick
from pipelines.tick.why import tell
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

TWO = "- {id: a, day: 1, action: follow_up}\n- {id: b, day: 2, action: follow_up}\n"
LONG = "- {id: a, day: 1, action: follow_up}\n- {id: z, day: 30, action: follow_up}\n"
START = "starts_on: 2026-03-02\n"


def tick(con, root, as_of: str, batched: bool):
    ws, compilation = compile_root(con, root)
    db.lock_down(con)  # as Project.run: analyst SQL runs next
    report = run_tick(con, ws, compilation, ts(as_of), batched=batched)
    assert not report.failed and not report.batch_fallbacks
    return ws, report


def test_holdout_share_is_the_percent_on_10000_enrolments_in_both_paths(tmp_path):
    """10,000 contacts (seeded ids c00000…c09999), sequences s (10 %) and t (2.5 %) in one
    batched layer, and the same ticked one sequence at a time: every enrolment is a holdout
    exactly when its bucket is below 1000 (s) / 250 (t); the shares are 10 % ± 1 % and
    2.5 % ± 0.5 %; the two paths write the same enrolments."""
    rows = {}
    for batched in (True, False):
        con = open_db(tmp_path / str(batched))
        con.execute(
            "insert into contacts (contact_id, email, created_at) select"
            " 'c' || lpad(i::varchar, 5, '0'), 'c' || i || '@x.example',"
            " timestamp '2026-01-01' from range(10000) as r(i)"
        )
        seqs = {
            "s": classic("s", LONG, extra=START + "holdout_percent: 10\n"),
            "t": classic("t", LONG, extra=START + "holdout_percent: 2.5\n"),
        }
        root = write_sequences(tmp_path / str(batched) / "ws", seqs)
        tick(con, root, "2026-03-02 10:00", batched)
        rows[batched] = con.execute(
            "select sequence, contact_id, status, bucket from enrollments order by all"
        ).fetchall()
        con.close()
    assert rows[True] == rows[False]
    threshold = {"s": 1000, "t": 250}
    assert len(rows[True]) == 20000
    for seq, cid, status, b in rows[True]:
        assert b == bucket(seq, cid)
        assert status == ("holdout" if b < threshold[seq] else "active")
    held = {s: sum(1 for q, _, st, _ in rows[True] if q == s and st == "holdout") for s in "st"}
    assert 900 <= held["s"] <= 1100, held
    assert 200 <= held["t"] <= 300, held


def _given_rows_workspace(tmp_path, con):
    """p0, p1, p2 in the audience of s, s2 (50 % holdout), u (exclusive_with [s]) and v
    (contacts active in s); m0, m3 enrolled in s by hand. Buckets (below 5000: holdout):
    s: p0 4991, p1 7482, p2 4600, m0 9246, m3 1339; s2: p0 1265, p1 7592, p2 8054."""
    insert(con, "contacts", [contact(c) for c in ("p0", "p1", "p2", "m0", "m3")])
    insert(con, "activities", [activity("p0", "email_replied", "2026-03-02 12:00")])
    only_p = "where: [\"contact_id like 'p%'\"]"
    half = START + "holdout_percent: 50\n"
    seqs = {
        "s": classic("s", TWO, audience=only_p, extra=half),
        "s2": classic("s2", TWO, audience=only_p, extra=half),
        "u": classic("u", LONG, audience=only_p, extra=START + "exclusive_with: [s]\n"),
        "v": classic("v", LONG, audience="where: [\"list_contains(sequences, 's')\"]", extra=START),
    }
    root = write_sequences(tmp_path / "ws", seqs)
    return root


@pytest.mark.parametrize("batched", [True, False])
def test_holdouts_decide_nothing_never_exit_and_do_not_count_as_in_the_sequence(tmp_path, batched):
    """Daily 09:00 UTC, 03-02 to 03-04 (s and s2 share a batched layer; u sees s, v reads
    sequences: later layers). Holdouts (s: p0, p2, m3; s2: p0) get no action, stay
    `holdout` with no exit on every day, even p0 after its reply at 03-02 12:00. Treated ones
    (s: p1, m0; s2: p1, p2) decide a (03-02) and b (03-03) and complete on 03-03. u takes s's
    holdouts p0, p2 on 03-02 (not active in s) and p1 only on 03-03, once s completed it
    earlier in that instant; p0 exits u on 03-03 by its reply. v (list_contains(sequences,
    's'), any contact) takes s's treated p1 and m0, not its holdouts p0, p2, m3: a holdout is
    not in `sequences`. A second manual request for m3 is refused: a contact is never
    enrolled twice. `why` tells p0's enrolment in s as a holdout, with no step and no exit."""
    con = open_db(tmp_path)
    root = _given_rows_workspace(tmp_path, con)
    ws, _ = compile_root(con, root)
    at = ts("2026-03-02 08:00")
    assert enrollment.enroll(con, ws, "s", ["m0", "m3"], at) == {"m0": "pending", "m3": "pending"}
    for day in ("2026-03-02", "2026-03-03", "2026-03-04"):
        tick(con, root, f"{day} 10:00", batched)
        held = [e for e in enrollments(con) if e[3] == "holdout"]
        assert held == [
            ("s", "m3", "2026-03-02", "holdout", None, None),
            ("s", "p0", "2026-03-02", "holdout", None, None),
            ("s", "p2", "2026-03-02", "holdout", None, None),
            ("s2", "p0", "2026-03-02", "holdout", None, None),
        ]
    assert [e for e in enrollments(con) if e[3] != "holdout"] == [
        ("s", "m0", "2026-03-02", "exited", "completed", "2026-03-03"),
        ("s", "p1", "2026-03-02", "exited", "completed", "2026-03-03"),
        ("s2", "p1", "2026-03-02", "exited", "completed", "2026-03-03"),
        ("s2", "p2", "2026-03-02", "exited", "completed", "2026-03-03"),
        ("u", "p0", "2026-03-02", "exited", "replied", "2026-03-03"),
        ("u", "p1", "2026-03-03", "active", None, None),
        ("u", "p2", "2026-03-02", "active", None, None),
        ("v", "m0", "2026-03-02", "active", None, None),
        ("v", "p1", "2026-03-02", "active", None, None),
    ]
    decided = {(s, c) for s, c, *_ in actions(con) if s in ("s", "s2")}
    assert decided == {("s", "m0"), ("s", "p1"), ("s2", "p1"), ("s2", "p2")}
    assert len([a for a in actions(con) if a[0] in ("s", "s2")]) == 8
    again = enrollment.enroll(con, ws, "s", ["m3"], ts("2026-03-04 12:00"))
    assert again == {"m3": "previously_enrolled"}
    _, compilation = compile_root(con, root)
    story = tell(con, compilation.sequences["s"], "p0", ts("2026-03-04 12:00"))
    assert story.steps == [] and story.exit is None and story.entered["holdout"]
    assert story_lines(story)[-1] == (
        "holdout: held out of the sequence by its bucket, never contacted"
    )


def test_holdout_percent_is_validated():
    """0 ≤ N < 100 in steps of 0.01 (one bucket of 10,000); the default is 0 (none)."""
    base = {"name": "s", "owner": "o", "steps": [{"id": "a", "day": 1, "action": "follow_up"}]}
    assert Sequence(**base).holdout_buckets == 0
    assert Sequence(**base, holdout_percent=2.5).holdout_buckets == 250
    assert Sequence(**base, holdout_percent=0.07).holdout_buckets == 7
    for bad in (-1, 100, 120, 2.555):
        with pytest.raises(ValidationError, match="holdout_percent"):
            Sequence(**base, holdout_percent=bad)


def test_a_holdout_added_later_leaves_earlier_enrolments_alone(tmp_path):
    """s enrols p0 and p2 on 03-02 with no holdout (both active); holdout_percent: 50 from
    03-03 on: no stored status changes (the holdout applies at enrolment only), and p3, who
    appears on 03-03 with bucket 8467, enters active, p6 (573) as a holdout."""
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("p0"), contact("p2")])
    root = write_sequences(tmp_path / "ws", {"s": classic("s", LONG, extra=START)})
    tick(con, root, "2026-03-02 10:00", True)
    half = START + "holdout_percent: 50\n"
    root = write_sequences(tmp_path / "ws", {"s": classic("s", LONG, extra=half)})
    later = dt.datetime(2026, 3, 2, 12)
    insert(con, "contacts", [contact("p3", created_at=later), contact("p6", created_at=later)])
    tick(con, root, "2026-03-03 10:00", True)
    assert [(c, st) for _, c, _, st, _, _ in enrollments(con)] == [
        ("p0", "active"), ("p2", "active"), ("p3", "active"), ("p6", "holdout")
    ]  # fmt: skip
