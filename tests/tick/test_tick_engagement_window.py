"""The time window of the ``enrollment.*`` step-condition columns (SPEC 5,
sql/tick/int_enrollment_engagement.sql), pinned by the mutation run (issue 14): given rows,
a real DuckDB file, the production tick.

SPEC 5: an enrolment's emails are its email steps that were due; an open/click counts when it
belongs to that email, occurred after the enrolment and at or before the run's occurrence; a
click counts as an open.
"""

from __future__ import annotations

from tests.tick_helpers import (
    actions,
    activity,
    classic,
    contact,
    insert,
    open_db,
    tick,
    write_sequences,
)

MAIL = "action: email, template: intro.md.j2, subject: Hi"


def decided(con, steps: tuple[str, ...]) -> dict[tuple[str, str], str]:
    return {(c, s): st for _, c, s, _, _, st in actions(con) if s in steps}


def test_a_catch_up_tick_counts_only_activities_up_to_each_occurrence(tmp_path):
    """Sequence ``e`` (daily 09:00 UTC from 03-02): e1 (email) day 1; day 2: chk
    (opened_previous_email) and clk (clicked_previous_email). ONE tick at 03-05 12:00 runs
    days 1 to 4 (day 2 is 03-03 09:00). Opens (o) and clicks (c) of e1:

    =======  ==================================  ======  ======
    contact  activities of e1                    chk     clk
    =======  ==================================  ======  ======
    late     o 03-03 10:00 (after day 2, before  skip    skip
             the tick's as_of)
    both     o 03-03 08:00, c 03-03 08:30        due     due
    =======  ==================================  ======  ======

    late's open happened after day 2's occurrence: at day 2 it had not happened yet, even if
    the tick that decides day 2 runs days later. both's email was opened AND clicked: it was
    clicked (one click among its activities is enough, not all of them).
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("late"), contact("both")])
    insert(
        con,
        "activities",
        [
            activity("late", "email_opened", "2026-03-03 10:00", sequence="e", step="e1"),
            activity("both", "email_opened", "2026-03-03 08:00", sequence="e", step="e1"),
            activity("both", "email_clicked", "2026-03-03 08:30", sequence="e", step="e1"),
        ],
    )
    steps = f"""
    - {{id: e1, day: 1, {MAIL}}}
    - {{id: chk, day: 2, action: follow_up, when: ["enrollment.opened_previous_email"]}}
    - {{id: clk, day: 2, action: follow_up, when: ["enrollment.clicked_previous_email"]}}
    - {{id: z, day: 30, action: follow_up}}
    """
    root = write_sequences(
        tmp_path / "ws", {"e": classic("e", steps, extra="starts_on: 2026-03-02")}
    )

    tick(con, root, "2026-03-05 12:00")

    assert decided(con, ("e1", "chk", "clk")) == {
        ("late", "e1"): "due",
        ("late", "chk"): "skipped",
        ("late", "clk"): "skipped",
        ("both", "e1"): "due",
        ("both", "chk"): "due",
        ("both", "clk"): "due",
    }


def test_an_email_decided_at_the_same_instant_by_the_previous_date_counts(tmp_path):
    """Sequence ``s`` from 03-02, daily at 23:00 UTC: e1 (email) day 1, cnt (emails_sent = 1)
    day 2. A tick at 03-02 23:00 decides day 1 (e1 due at 03-02 23:00Z). Then the schedule is
    edited to 00:00 Africa/Lagos (UTC+1): day 2 (03-03) falls at 03-03 00:00+01 = 03-02
    23:00Z, the very instant of day 1. e1 is an email of the enrolment decided due at an
    earlier occurrence, so at day 2 emails_sent = 1 and cnt is due.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("p")])
    steps = f"""
    - {{id: e1, day: 1, {MAIL}}}
    - {{id: cnt, day: 2, action: follow_up, when: ["enrollment.emails_sent = 1"]}}
    - {{id: z, day: 30, action: follow_up}}
    """
    start = "starts_on: 2026-03-02"
    ws = tmp_path / "ws"
    root = write_sequences(
        ws, {"s": classic("s", steps, extra=start, schedule="{time: '23:00', timezone: UTC}")}
    )
    tick(con, root, "2026-03-02 23:00")
    lagos = "{time: '00:00', timezone: Africa/Lagos}"
    root = write_sequences(ws, {"s": classic("s", steps, extra=start, schedule=lagos)})

    tick(con, root, "2026-03-03 12:00")

    assert actions(con) == [
        ("s", "p", "cnt", 2, "2026-03-03", "due"),
        ("s", "p", "e1", 1, "2026-03-02", "due"),
    ]


def test_an_open_of_another_email_does_not_count_for_a_sent_one(tmp_path):
    """int_enrollment_engagement.sql:63 (``message_id is not null and → or``).

    c1's e1 (day 1, 03-02) was sent as <m1@x> (the send sets ``actions.message_id``). At
    03-02 12:00 c1 opens another email: sequence ``other``, step ``x``, <m2@x>. It belongs to
    neither e1's (sequence, step) nor its Message-ID, so day 2's ``chk``
    (opened_previous_email) is skipped. Matching any activity once e1 has a Message-ID would
    make it due.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    steps = f"""
    - {{id: e1, day: 1, {MAIL}}}
    - {{id: chk, day: 2, action: follow_up, when: ["enrollment.opened_previous_email"]}}
    - {{id: z, day: 30, action: follow_up}}
    """
    root = write_sequences(
        tmp_path / "ws", {"e": classic("e", steps, extra="starts_on: 2026-03-02")}
    )
    tick(con, root, "2026-03-02 10:00")
    con.execute("update actions set message_id = '<m1@x>' where step = 'e1'")
    insert(
        con,
        "activities",
        [
            activity(
                "c1", "email_opened", "2026-03-02 12:00",
                sequence="other", step="x", message_id="<m2@x>",
            )
        ],
    )  # fmt: skip
    tick(con, root, "2026-03-03 10:00")
    assert decided(con, ("e1", "chk")) == {("c1", "e1"): "due", ("c1", "chk"): "skipped"}
