"""The engine's side of SPEC 10 (effects): a spam complaint exits and suppresses like an
unsubscribe; an auto-reply is not a reply; a machine open is kept but is not an open for
``enrollment.opened_*``. Given rows, a real DuckDB file, the production tick."""

from __future__ import annotations

import json

from tests.tick_helpers import (
    actions,
    activity,
    classic,
    contact,
    enrollments,
    insert,
    open_db,
    tick,
    write_sequences,
)

MAIL = "action: email, template: intro.md.j2, subject: Hi"
MACHINE = json.dumps({"machine": True, "user_agent": "Mozilla/5.0"})


def test_a_complaint_exits_as_unsubscribed_and_an_auto_reply_does_not_exit(tmp_path):
    """Sequence ``s`` daily from 03-02: enrol everyone on day 1, email on day 1, a follow-up on
    day 5. Between day 1 and day 2: ``comp`` complains, ``ooo`` auto-replies, ``rep`` replies,
    ``quiet`` does nothing. A second sequence ``t`` starting on day 3 must not enrol ``comp``
    (the complaint suppresses its address) but enrols ``ooo``."""
    con = open_db(tmp_path)
    insert(con, "contacts", [contact(c) for c in ("comp", "ooo", "rep", "quiet")])
    steps = f"""
    - {{id: e1, day: 1, {MAIL}}}
    - {{id: f5, day: 5, action: follow_up}}
    """
    seqs = {
        "s": classic("s", steps, extra="starts_on: 2026-03-02"),
        "t": classic("t", steps, extra="starts_on: 2026-03-04"),
    }
    root = write_sequences(tmp_path / "ws", seqs)
    tick(con, root, "2026-03-02 12:00")
    assert {c for _, c, *_ in enrollments(con, "s")} == {"comp", "ooo", "rep", "quiet"}

    until = json.dumps({"until": "2026-03-20"})
    insert(
        con,
        "activities",
        [
            activity("comp", "email_complained", "2026-03-02 15:00", sequence="s", step="e1"),
            activity("ooo", "email_auto_replied", "2026-03-02 15:00", sequence="s", detail=until),
            activity("rep", "email_replied", "2026-03-02 15:00", sequence="s", step="e1"),
        ],
    )
    tick(con, root, "2026-03-04 12:00")

    exits = {c: (status, reason) for _, c, _, status, reason, _ in enrollments(con, "s")}
    assert exits == {
        "comp": ("exited", "unsubscribed"),
        "ooo": ("active", None),
        "rep": ("exited", "replied"),
        "quiet": ("active", None),
    }
    assert {c for _, c, *_ in enrollments(con, "t")} == {"ooo", "rep", "quiet"}


def test_a_machine_open_is_not_an_open_for_step_conditions(tmp_path):
    """Day 2's ``chk`` needs ``enrollment.opened_previous_email``. ``human`` opened e1;
    ``proxy``'s only open is a machine open (Apple MPP fetched the pixel); ``clicker``'s machine
    open came with a click (a click is an open); ``textdetail``'s open carries a detail that is
    not JSON (an imported row): a human open."""
    con = open_db(tmp_path)
    names = ("human", "proxy", "clicker", "textdetail")
    insert(con, "contacts", [contact(c) for c in names])
    at = "2026-03-02 15:00"
    insert(
        con,
        "activities",
        [
            activity("human", "email_opened", at, sequence="e", step="e1"),
            activity("proxy", "email_opened", at, sequence="e", step="e1", detail=MACHINE),
            activity("clicker", "email_opened", at, sequence="e", step="e1", detail=MACHINE),
            activity("clicker", "email_clicked", at, sequence="e", step="e1"),
            activity("textdetail", "email_opened", at, sequence="e", step="e1", detail="seen"),
        ],
    )
    steps = f"""
    - {{id: e1, day: 1, {MAIL}}}
    - {{id: chk, day: 2, action: follow_up, when: ["enrollment.opened_previous_email"]}}
    - {{id: any, day: 2, action: follow_up, when: ["enrollment.opened_any_email"]}}
    - {{id: z, day: 30, action: follow_up}}
    """
    root = write_sequences(
        tmp_path / "ws", {"e": classic("e", steps, extra="starts_on: 2026-03-02")}
    )
    tick(con, root, "2026-03-02 09:30")  # enrol + e1 before the opens
    tick(con, root, "2026-03-03 12:00")

    got = {(c, s): st for _, c, s, _, _, st in actions(con) if s in ("chk", "any")}
    assert got == {
        ("human", "chk"): "due",
        ("human", "any"): "due",
        ("proxy", "chk"): "skipped",
        ("proxy", "any"): "skipped",
        ("clicker", "chk"): "due",
        ("clicker", "any"): "due",
        ("textdetail", "chk"): "due",
        ("textdetail", "any"): "due",
    }
