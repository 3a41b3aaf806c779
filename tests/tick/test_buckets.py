"""The enrolment's bucket (issue 13 item 1): stored once at enrolment, equal to the Python
definition, spread evenly, and never recomputed by a replay or a later edit."""

from __future__ import annotations

from collections import Counter

from pipelines.tick.experiments import BUCKETS, bucket
from tests.tick_helpers import classic, contact, insert, open_db, tick, write_sequences

STEPS = "- {id: a, day: 1, action: follow_up}\n- {id: z, day: 30, action: follow_up}\n"


def test_buckets_are_stored_at_enrolment_as_the_python_definition_says(tmp_path):
    """2,000 contacts in two sequences (one batched layer): each stored bucket equals
    bucket(sequence, contact); the buckets of a sequence spread over 10 deciles within 30 %
    of 200 each; the same contact lands in different buckets in different sequences."""
    con = open_db(tmp_path)
    ids = [f"c{i:05d}" for i in range(2000)]
    insert(con, "contacts", [contact(c) for c in ids])
    start = "starts_on: 2026-03-02\n"
    root = write_sequences(tmp_path / "ws", {n: classic(n, STEPS, extra=start) for n in "st"})
    tick(con, root, "2026-03-02 10:00")
    rows = con.execute("select sequence, contact_id, bucket from enrollments").fetchall()
    assert len(rows) == 4000
    assert all(b == bucket(s, c) for s, c, b in rows)
    assert all(0 <= b < BUCKETS for _, _, b in rows)
    deciles = Counter(b // 1000 for s, _, b in rows if s == "s")
    assert set(deciles) == set(range(10))
    assert all(140 <= n <= 260 for n in deciles.values()), deciles
    same = sum(1 for c in ids if bucket("s", c) == bucket("t", c))
    assert same < 10


def test_a_bucket_is_never_recomputed(tmp_path):
    """A stored bucket changed by hand (as a future hash change would) survives later ticks:
    nothing rewrites it."""
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("p")])
    root = write_sequences(
        tmp_path / "ws", {"s": classic("s", STEPS, extra="starts_on: 2026-03-02\n")}
    )
    tick(con, root, "2026-03-02 10:00")
    con.execute("update enrollments set bucket = 7")
    tick(con, root, "2026-03-05 10:00")
    assert con.execute("select bucket from enrollments").fetchall() == [(7,)]
