"""Tick behaviours that the mutation run (issue 14) found untested, rows in → rows out.

Each test names the survivor(s) it kills (``file:line: original → mutated``, see
docs/testing.md). Sequences run at 09:00 UTC, so the occurrence of 2026-03-02 is at
2026-03-02 09:00. Expected rows are derived by hand in the docstrings.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time

from pipelines.tick.enrollment import enroll
from pipelines.tick.run import preview_occurrence
from tests.tick_helpers import (
    actions,
    activity,
    classic,
    compile_root,
    contact,
    enrollments,
    insert,
    open_db,
    tick,
    ts,
    write_sequences,
)

LONG = "- {id: a, day: 1, action: follow_up}\n- {id: z, day: 30, action: follow_up}\n"
START = "starts_on: 2026-03-02\n"
SMART = "type: smart\ninterval_days: 1\nduration_days: 10\n" + START


def _status(con, sequence):
    """contact_id → (status, exit_reason, exited_on)."""
    return {r[1]: r[3:] for r in enrollments(con, sequence)}


def _ledger_counts(con, sequence):
    """occurrence date → (entries, exits, due, skipped) from the occurrences ledger."""
    rows = con.execute(
        "select occurrence_on::varchar, entries, exits, due, skipped from occurrences "
        "where sequence = ? order by 1",
        [sequence],
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def _run_stats(con):
    """The stats of every tick run, oldest first."""
    rows = con.execute("select stats from runs where kind = 'tick' order by started_at").fetchall()
    return [json.loads(r[0]) for r in rows]


def _accounts(con):
    con.execute("alter table accounts add column industry varchar")
    insert(
        con,
        "accounts",
        [
            {"account_id": "a1", "name": "Acme", "industry": "SaaS"},
            {"account_id": "a2", "name": "Shop", "industry": "Retail"},
        ],
    )


ACTIVE = ("active", None, None)


# --- the activity state (int_activity_delta.sql) -------------------------------------------


def test_activities_without_a_contact_are_left_out_of_the_state(tmp_path):
    """int_activity_delta.sql:19 (``contact_id is not null and`` dropped).

    An activity that matched no contact (contact_id null) sits in ``activities`` before the
    first run, which builds the state from the whole history. It belongs to nobody: the run
    succeeds, the state holds c1 only and counts c1's one activity.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    insert(
        con,
        "activities",
        [
            activity("c1", "meeting", "2026-03-01 10:00"),
            activity(None, "email_bounced", "2026-03-01 11:00", email="nobody@x.example"),
        ],
    )
    root = write_sequences(tmp_path / "ws", {"s": classic("s", LONG, extra=START)})
    tick(con, root, "2026-03-02 12:00")
    assert con.execute("select contact_id from contact_activity_state").fetchall() == [("c1",)]
    assert con.execute("select activities_counted from tick_state").fetchall() == [(1,)]
    assert _status(con, "s") == {"c1": ACTIVE}


def test_one_delta_with_several_activities_keeps_the_latest_and_the_first(tmp_path):
    """int_activity_delta.sql:29, :32 (``max → min``), :33, :34 (``min → max``).

    c1 has, before the first run (so in the one delta that builds the state):
    email_sent 03-01 08:00, unsubscribed 03-01 08:30, email_bounced 03-01 08:45,
    email_sent 03-02 08:00, unsubscribed 03-02 08:10, email_bounced 03-02 08:20.
    The state keeps the LATEST activity and contact (03-02 08:20 bounce, 03-02 08:00 send)
    and the FIRST unsubscribe and bounce (03-01 08:30, 03-01 08:45).

    Decisions see the latest instants too: at 03-02 09:00, ``last_activity_at`` and
    ``last_contacted_at`` are within the last 12 hours for c2 (one email_sent at 03-02 08:00,
    the only one), so c2 enters ``recent`` and ``contacted``; c3 (one email_sent at 03-01
    08:00 and one meeting at 03-02 08:00, not a contact mode) enters ``recent`` only. With
    ``min`` c3's last_activity_at would be 03-01 08:00 and it would enter neither.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1"), contact("c2"), contact("c3")])
    insert(
        con,
        "activities",
        [
            activity("c1", "email_sent", "2026-03-01 08:00"),
            activity("c1", "unsubscribed", "2026-03-01 08:30"),
            activity("c1", "email_bounced", "2026-03-01 08:45"),
            activity("c1", "email_sent", "2026-03-02 08:00"),
            activity("c1", "unsubscribed", "2026-03-02 08:10"),
            activity("c1", "email_bounced", "2026-03-02 08:20"),
            activity("c2", "email_sent", "2026-03-02 08:00"),
            activity("c3", "email_sent", "2026-03-01 08:00"),
            activity("c3", "meeting", "2026-03-02 08:00"),
        ],
    )
    root = write_sequences(
        tmp_path / "ws",
        {
            "recent": classic(
                "recent",
                LONG,
                extra=START,
                audience='where: ["last_activity_at > now() - interval 12 hour"]',
            ),
            "contacted": classic(
                "contacted",
                LONG,
                extra=START,
                audience='where: ["last_contacted_at > now() - interval 12 hour"]',
            ),
        },
    )
    tick(con, root, "2026-03-02 12:00")
    state = con.execute(
        "select last_activity_type, last_activity_at, last_contacted_type, last_contacted_at, "
        "unsubscribed_at, bounced_at from contact_activity_state where contact_id = 'c1'"
    ).fetchone()
    assert state == (
        "email_bounced",
        ts("2026-03-02 08:20"),
        "email_sent",
        ts("2026-03-02 08:00"),
        ts("2026-03-01 08:30"),
        ts("2026-03-01 08:45"),
    )
    # c1 is unsubscribed and bounced: it never enters
    assert sorted(_status(con, "recent")) == ["c2", "c3"]
    assert sorted(_status(con, "contacted")) == ["c2"]


# --- completion (int_completions.sql) ----------------------------------------------------


def test_smart_completion_counts_only_the_sequence_own_steps(tmp_path):
    """int_completions.sql:13 (``sequence = $sequence and`` dropped).

    Two smart sequences with the same step ids s1, s2 (interval 1, duration 10). In sa both
    steps hold: s1 due on day 1 (03-02), s2 due on day 2 (03-03), so sa completes on 03-03.
    In sb s2 never holds: only s1 is executed, so sb stays active (until day 10). sa's s2
    must not count as executed in sb.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    root = write_sequences(
        tmp_path / "ws",
        {
            "sa": classic(
                "sa",
                "- {id: s1, action: follow_up}\n- {id: s2, action: follow_up}\n",
                extra=SMART,
            ),
            "sb": classic(
                "sb",
                '- {id: s1, action: follow_up}\n- {id: s2, action: follow_up, when: ["false"]}\n',
                extra=SMART,
            ),
        },
    )
    tick(con, root, "2026-03-04 12:00")
    assert _status(con, "sa") == {"c1": ("exited", "completed", "2026-03-03")}
    assert _status(con, "sb") == {"c1": ACTIVE}
    assert actions(con, "sb") == [("sb", "c1", "s1", 1, "2026-03-02", "due")]


def test_a_step_skipped_before_an_edit_to_smart_is_not_executed(tmp_path):
    """int_completions.sql:15 (``and coalesce(decided_status, status) <> 'skipped'`` dropped).

    ``ed`` starts classic: s1 on day 1 (when false) is skipped on 03-02. The file is then
    edited to smart (interval 1, duration 10) with steps s1 (when false) and s2. On 03-03
    (day 2) s1 is already decided, s2 holds: s2 due. Executed steps: s2 only (s1 was
    skipped), 1 of 2, so the enrolment stays active; a skipped step is not an executed one.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    s1 = '- {id: s1, day: 1, action: follow_up, when: ["false"]}\n'
    root = write_sequences(
        tmp_path / "ws",
        {"ed": classic("ed", s1 + "- {id: s2, day: 5, action: follow_up}\n", extra=START)},
    )
    tick(con, root, "2026-03-02 12:00")
    write_sequences(
        root,
        {
            "ed": classic(
                "ed",
                s1.replace("day: 1, ", "") + "- {id: s2, action: follow_up}\n",
                extra=SMART,
            )
        },
    )
    tick(con, root, "2026-03-03 12:00")
    assert actions(con, "ed") == [
        ("ed", "c1", "s1", 1, "2026-03-02", "skipped"),
        ("ed", "c1", "s2", 2, "2026-03-03", "due"),
    ]
    assert _status(con, "ed") == {"c1": ACTIVE}


# --- step conditions (int_enrollment_engagement.sql) -------------------------------------


def test_emails_of_another_sequence_with_a_colliding_enrollment_id_do_not_count(tmp_path):
    """int_enrollment_engagement.sql:28 (``actions.sequence = $sequence and`` dropped).

    An enrollment_id is ``sequence || ':' || contact_id``, so sequence ``a`` with contact
    ``b:c`` and sequence ``a:b`` with contact ``c`` share the id ``a:b:c``. On 03-02 ``a``
    decides an email for ``b:c``; ``a:b`` enrols ``c`` and ``b:c`` and decides no email. On
    03-03 (day 2 of ``a:b``) neither has an email in ``a:b``: emails_sent = 0, so ``chk`` is
    due for both.
    """
    con = open_db(tmp_path)
    insert(
        con, "contacts", [contact("c", email="c@x.example"), contact("b:c", email="bc@x.example")]
    )
    mail = "action: email, template: intro.md.j2, subject: Hi"
    root = write_sequences(
        tmp_path / "ws",
        {
            "a": classic(
                "a",
                f"- {{id: e1, day: 1, {mail}}}\n- {{id: z, day: 30, action: follow_up}}\n",
                extra=START,
                audience="where: [\"contact_id = 'b:c'\"]",
            ),
            "ab": classic(
                "'a:b'",
                "- {id: f, day: 1, action: follow_up}\n"
                '- {id: chk, day: 2, action: follow_up, when: ["enrollment.emails_sent = 0"]}\n'
                "- {id: z, day: 30, action: follow_up}\n",
                extra=START,
            ),
        },
    )
    tick(con, root, "2026-03-03 12:00")
    assert actions(con, "a") == [("a", "b:c", "e1", 1, "2026-03-02", "due")]
    assert [r for r in actions(con, "a:b") if r[2] == "chk"] == [
        ("a:b", "b:c", "chk", 2, "2026-03-03", "due"),
        ("a:b", "c", "chk", 2, "2026-03-03", "due"),
    ]


# --- entries (int_entries.sql) ----------------------------------------------------------


def test_window_contacts_are_matched_against_their_own_account(tmp_path):
    """int_entries.sql:83, :88 (``=`` → ``<>``): precomputed audiences, the window's contacts.

    Accounts a1 (SaaS), a2 (Retail); contacts ca (a1), cb (a2), each with a meeting at
    03-02 10:00. The first run (as_of 03-03 12:00) builds the state up to 03-02 09:00, so
    ca and cb have activity in the run's window and are evaluated per occurrence, not from
    the run's precomputed audience. ``acct`` (record: account, industry = 'SaaS') and
    ``view`` (contacts, account.industry = 'SaaS') both enrol ca on 03-02, never cb.
    """
    con = open_db(tmp_path)
    _accounts(con)
    insert(con, "contacts", [contact("ca", account_id="a1"), contact("cb", account_id="a2")])
    insert(
        con,
        "activities",
        [
            activity("ca", "meeting", "2026-03-02 10:00"),
            activity("cb", "meeting", "2026-03-02 10:00"),
        ],
    )
    root = write_sequences(
        tmp_path / "ws",
        {
            "acct": classic(
                "acct",
                LONG,
                extra=START,
                audience="record: account\n  where: [\"industry = 'SaaS'\"]",
            ),
            "view": classic(
                "view", LONG, extra=START, audience="where: [\"account.industry = 'SaaS'\"]"
            ),
        },
    )
    tick(con, root, "2026-03-03 12:00")
    on = ("active", None, None)
    assert _status(con, "acct") == {"ca": on}
    assert _status(con, "view") == {"ca": on}
    assert [r[2] for r in enrollments(con)] == ["2026-03-02", "2026-03-02"]


def test_audiences_read_at_the_occurrence_match_the_contact_own_account(tmp_path):
    """int_entries.sql:110, :114 (``=`` → ``<>``): audiences that read now(), never precomputed.

    Same accounts and contacts as above, no activity; the audiences add ``now() is not null``
    so that they are evaluated at each occurrence. Both sequences enrol ca only.
    """
    con = open_db(tmp_path)
    _accounts(con)
    insert(con, "contacts", [contact("ca", account_id="a1"), contact("cb", account_id="a2")])
    now = " and now() is not null"
    root = write_sequences(
        tmp_path / "ws",
        {
            "acct": classic(
                "acct",
                LONG,
                extra=START,
                audience=f"record: account\n  where: [\"industry = 'SaaS'{now}\"]",
            ),
            "view": classic(
                "view", LONG, extra=START, audience=f"where: [\"account.industry = 'SaaS'{now}\"]"
            ),
        },
    )
    tick(con, root, "2026-03-02 12:00")
    assert _status(con, "acct") == {"ca": ACTIVE}
    assert _status(con, "view") == {"ca": ACTIVE}


def _manual(con, sequence, cid, at):
    insert(
        con,
        "manual_requests",
        [{"sequence": sequence, "contact_id": cid, "requested_at": ts(at), "status": "pending"}],
    )


def _requests(con):
    """(sequence, contact_id, status, reason), sorted."""
    return con.execute(
        "select sequence, contact_id, status, reason from manual_requests order by all"
    ).fetchall()


def test_a_contact_in_the_audience_and_requested_manually_is_not_a_manual_entry(tmp_path):
    """int_entries.sql:125 (``bool_and`` → ``bool_or``).

    Audience: every contact but c2. Manual requests (03-01) for c1 and c2. At 03-02 all
    enter: c1 (audience and request) and c3 (audience) are audience entries, manual =
    false; c2 (request only) is a manual entry, manual = true. Both requests are enrolled.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1"), contact("c2"), contact("c3")])
    _manual(con, "s", "c1", "2026-03-01 10:00")
    _manual(con, "s", "c2", "2026-03-01 10:00")
    root = write_sequences(
        tmp_path / "ws",
        {"s": classic("s", LONG, extra=START, audience="where: [\"contact_id <> 'c2'\"]")},
    )
    tick(con, root, "2026-03-02 12:00")
    got = con.execute("select contact_id, manual from enrollments order by 1").fetchall()
    assert got == [("c1", False), ("c2", True), ("c3", False)]
    assert _requests(con) == [("s", "c1", "enrolled", None), ("s", "c2", "enrolled", None)]


def test_a_request_for_a_contact_no_longer_visible_is_unknown_before_already_enrolled(tmp_path):
    """int_entries.sql:142 (the first two ``when`` of the reason swapped).

    c1 enters s on 03-02 from the audience; then its record is removed from ``contacts`` and
    a manual request for it arrives (03-02 18:00). On 03-03 the request fails two rules,
    unknown contact and already enrolled: the first in order, ``unknown_contact``, is kept.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    root = write_sequences(tmp_path / "ws", {"s": classic("s", LONG, extra=START)})
    tick(con, root, "2026-03-02 12:00")
    con.execute("delete from contacts where contact_id = 'c1'")
    _manual(con, "s", "c1", "2026-03-02 18:00")
    tick(con, root, "2026-03-03 12:00")
    assert _requests(con) == [("s", "c1", "rejected", "unknown_contact")]


def test_duplicate_email_ranks_only_the_candidates_that_would_enter(tmp_path):
    """int_entries.sql:176 (``reason is null and`` dropped).

    prevent_duplicate_emails; c1 and c2 share pat@x.example and both unsubscribed; c3 and
    c4 share kim@x.example. Requests (03-01) for all four. At 03-02: c1 and c2 are rejected
    as ``unsubscribed`` (a rejected candidate is not a duplicate: the duplicate rule ranks
    only the contacts that would enter), c3 enters (smallest id), c4 is ``duplicate_email``.
    """
    con = open_db(tmp_path)
    insert(
        con,
        "contacts",
        [
            contact("c1", email="pat@x.example", unsubscribed=True),
            contact("c2", email="Pat@x.example", unsubscribed=True),
            contact("c3", email="kim@x.example"),
            contact("c4", email="KIM@x.example"),
        ],
    )
    for cid in ("c1", "c2", "c3", "c4"):
        _manual(con, "s", cid, "2026-03-01 10:00")
    root = write_sequences(
        tmp_path / "ws",
        {
            "s": classic(
                "s",
                LONG,
                extra=START,
                audience='where: ["false"]\n  prevent_duplicate_emails: true',
            )
        },
    )
    tick(con, root, "2026-03-02 12:00")
    assert _requests(con) == [
        ("s", "c1", "rejected", "unsubscribed"),
        ("s", "c2", "rejected", "unsubscribed"),
        ("s", "c3", "enrolled", None),
        ("s", "c4", "rejected", "duplicate_email"),
    ]


def test_preview_counts_a_request_for_a_contact_created_after_the_occurrence(tmp_path):
    """int_entries.sql:73 (``and (created_at is null or created_at <= $occurrence_at)`` dropped).

    s's audience (every contact) is precomputed for the run. ``late`` is created at 03-05,
    after the occurrence of 03-02 09:00, and was requested manually at 03-01: it is not in
    the audience at 03-02, so it is a manual-only candidate, rejected as unknown_contact,
    and the preview reports that rejection. c1 enters.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1"), contact("late", created_at=ts("2026-03-05 10:00"))])
    _manual(con, "s", "late", "2026-03-01 10:00")
    root = write_sequences(tmp_path / "ws", {"s": classic("s", LONG, extra=START)})
    ws, compilation = compile_root(con, root)
    got = preview_occurrence(con, ws, compilation, "s", ts("2026-03-02 08:00"))
    assert got == {
        "sequence": "s",
        "occurrence_on": dt.date(2026, 3, 2),
        "occurrence_at": dt.datetime(2026, 3, 2, 9),
        "entries": 1,
        "manual_rejected": {"unknown_contact": 1},
        "exits": {},
        "steps": {"a": {"due": 1}},
    }


# --- exits (int_exits.sql) and the counts of a run --------------------------------------


def test_exit_counts_are_per_sequence_in_the_ledger_and_the_run(tmp_path):
    """int_exits.sql:17 (``sequence = $sequence and`` dropped); tick.py:480 (exit counts → None).

    c1 and c2 are in both a and b from 03-02; c1 unsubscribes on 03-02 10:00. On 03-03 each
    sequence exits c1 once: the ledger says exits = 1 for a and for b (entries 0, nothing
    due: the next step is on day 30), and the run's stats {"unsubscribed": 2}.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1"), contact("c2")])
    insert(con, "activities", [activity("c1", "unsubscribed", "2026-03-02 10:00")])
    root = write_sequences(
        tmp_path / "ws",
        {"a": classic("a", LONG, extra=START), "b": classic("b", LONG, extra=START)},
    )
    tick(con, root, "2026-03-02 12:00")
    tick(con, root, "2026-03-03 12:00")
    for seq in ("a", "b"):
        assert _status(con, seq) == {"c1": ("exited", "unsubscribed", "2026-03-03"), "c2": ACTIVE}
        assert _ledger_counts(con, seq) == {
            "2026-03-02": (2, 0, 2, 0),
            "2026-03-03": (0, 1, 0, 0),
        }
    assert _run_stats(con)[1]["exits"] == {"unsubscribed": 2}


def test_exit_condition_reads_the_contact_own_account(tmp_path):
    """int_exits.sql:48 (``=`` → ``<>``).

    Exit when ``account.industry = 'SaaS'``. On 03-02 a1 and a2 are both Retail: ca (a1) and
    cb (a2) enter. Then a1 becomes SaaS: on 03-03 ca exits (condition), cb stays.
    """
    con = open_db(tmp_path)
    _accounts(con)
    con.execute("update accounts set industry = 'Retail'")
    insert(con, "contacts", [contact("ca", account_id="a1"), contact("cb", account_id="a2")])
    root = write_sequences(
        tmp_path / "ws",
        {
            "s": classic(
                "s", LONG, extra=START + "exit:\n  where: [\"account.industry = 'SaaS'\"]\n"
            )
        },
    )
    tick(con, root, "2026-03-02 12:00")
    con.execute("update accounts set industry = 'SaaS' where account_id = 'a1'")
    tick(con, root, "2026-03-03 12:00")
    assert _status(con, "s") == {"ca": ("exited", "condition", "2026-03-03"), "cb": ACTIVE}


# --- the run's record and the preview (pipelines/tick/run.py) -----------------------------


def test_decided_at_is_utc_whatever_the_machine_time_zone(tmp_path):
    """tick.py:448 (``dt.datetime.now(dt.UTC)`` → ``dt.datetime.now(None)``).

    With the process in Asia/Tokyo (UTC+9, no DST), actions.decided_at is still naive UTC:
    within a minute of the UTC clock, not nine hours ahead.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    root = write_sequences(tmp_path / "ws", {"s": classic("s", LONG, extra=START)})
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    try:
        tick(con, root, "2026-03-02 12:00")
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()
    (decided_at,) = con.execute("select decided_at from actions").fetchone()
    utc_now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert abs(decided_at - utc_now) < dt.timedelta(minutes=1)


def test_a_run_records_its_timings_by_phase(tmp_path):
    """tick.py:520 (``lap("steps")`` → ``lap(None)`` / ``lap("STEPS")``).

    The only occurrence has no active enrolment (the audience is empty), so the steps phase
    ends early; the run's stats still name the phases: state, exits, entries, steps.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    root = write_sequences(
        tmp_path / "ws", {"s": classic("s", LONG, extra=START, audience='where: ["false"]')}
    )
    tick(con, root, "2026-03-02 12:00")
    (stats,) = _run_stats(con)
    assert stats["occurrences"] == 1
    assert sorted(stats["seconds"]) == ["entries", "exits", "state", "steps"]


def test_preview_of_a_sequence_without_an_occurrence_in_the_next_14_days(tmp_path):
    """tick.py:706 (horizon 14 → 15 days), :708 (``next(..., None)`` → ``next(...)``).

    At 03-02 12:00, a sequence starting on 03-17 has its first occurrence at 03-17 09:00,
    14 days 21 hours later: beyond the preview's 14-day horizon, so the preview says there
    is no next occurrence (and does not fail).
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    root = write_sequences(
        tmp_path / "ws", {"far": classic("far", LONG, extra="starts_on: 2026-03-17\n")}
    )
    ws, compilation = compile_root(con, root)
    got = preview_occurrence(con, ws, compilation, "far", ts("2026-03-02 12:00"))
    assert got == {"sequence": "far", "occurrence_on": None, "occurrence_at": None}
    # one day later the occurrence is within the horizon
    got = preview_occurrence(con, ws, compilation, "far", ts("2026-03-03 12:00"))
    assert got["occurrence_on"] == dt.date(2026, 3, 17)


def test_a_later_run_updates_only_the_state_of_contacts_with_new_activity(tmp_path):
    """dml_apply_state_changes.sql:14 (the ``contact_id`` match dropped) and :15 (``and → or``).

    Run 1 at 03-02 10:00 builds the state up to the 03-02 09:00 occurrence: c1 email_sent
    03-01 08:00, c2 chat 03-01 08:00. c1 replies at 03-02 12:00; run 2 at 03-03 10:00 moves
    the state to 03-03 09:00: only c1's row changes (email_replied, 03-02 12:00, replied at
    12:00); c2's row stays chat / 03-01 08:00 — the state the next run reads for c2. Without
    the match every state row would take c1's values.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1"), contact("c2")])
    insert(
        con,
        "activities",
        [
            activity("c1", "email_sent", "2026-03-01 08:00"),
            activity("c2", "chat", "2026-03-01 08:00"),
        ],
    )
    root = write_sequences(tmp_path / "ws", {"s": classic("s", LONG, extra=START)})
    tick(con, root, "2026-03-02 10:00")
    insert(con, "activities", [activity("c1", "email_replied", "2026-03-02 12:00")])
    tick(con, root, "2026-03-03 10:00")
    rows = con.execute(
        """select contact_id, last_activity_type, last_activity_at::varchar,
                  last_contacted_type, last_contacted_at::varchar, last_replied_at::varchar
           from contact_activity_state order by contact_id"""
    ).fetchall()
    assert rows == [
        ("c1", "email_replied", "2026-03-02 12:00:00", "email_replied", "2026-03-02 12:00:00",
         "2026-03-02 12:00:00"),
        ("c2", "chat", "2026-03-01 08:00:00", "chat", "2026-03-01 08:00:00", None),
    ]  # fmt: skip


def test_a_resolved_manual_request_is_never_resolved_again(tmp_path):
    """dml_resolve_manual_requests.sql:11 (``manual_requests.status = 'pending'`` dropped).

    c1 exists but is created at 03-02 12:00. Requested into ``s`` at 03-02 08:00 (pending);
    the 03-02 09:00 occurrence rejects it (``unknown_contact``: not yet created at t). On
    03-03 09:00 c1 is in the audience (``true``) and enters on its own. The request stays
    rejected, resolved on 03-02; only a pending request is resolved by an occurrence.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1", created_at=ts("2026-03-02 12:00"))])
    root = write_sequences(tmp_path / "ws", {"s": classic("s", LONG, extra=START)})
    ws, _ = compile_root(con, root)
    assert enroll(con, ws, "s", ["c1"], ts("2026-03-02 08:00")) == {"c1": "pending"}
    tick(con, root, "2026-03-02 10:00")
    tick(con, root, "2026-03-03 10:00")
    assert con.execute(
        "select status, reason, resolved_on::varchar from manual_requests"
    ).fetchall() == [("rejected", "unknown_contact", "2026-03-02")]
    assert enrollments(con) == [("s", "c1", "2026-03-03", "active", None, None)]


def test_enrol_into_or_preview_an_unknown_sequence_names_it(tmp_path):
    """tick/enrollment.py:58 and tick/run.py:113: the error a user sees says what is wrong
    ("unknown sequence", "unknown or invalid sequence") and where (the sequence ``nope``)."""
    import pytest

    from pipelines.errors import ConfigError

    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    root = write_sequences(tmp_path / "ws", {"s": classic("s", LONG, extra=START)})
    ws, compilation = compile_root(con, root)
    with pytest.raises(ConfigError) as enrol_error:
        enroll(con, ws, "nope", ["c1"], ts("2026-03-02 08:00"))
    with pytest.raises(ConfigError) as preview_error:
        preview_occurrence(con, ws, compilation, "nope", ts("2026-03-02 08:00"))
    for error, text in (
        (enrol_error, "unknown sequence"),
        (preview_error, "unknown or invalid sequence"),
    ):
        assert error.value.message == text and "nope" in str(error.value)
        assert error.value.location.sequence == "nope"
