"""Edges of the tick (SPEC 6) that small slips in the SQL would get wrong, rows in → rows out.

Each test names the slip it guards against. Sequences run at 09:00 UTC unless a test says
otherwise, so the occurrence of 2026-03-02 is at 2026-03-02 09:00 and an enrolment made there
has ``enrolled_at`` = 2026-03-02 09:00. Expected rows are derived by hand in the docstrings.
"""

from __future__ import annotations

import textwrap

from pipelines.tick.enrollment import enroll
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
MEETING_EXIT = "  where: [\"last_activity_type = 'meeting'\"]\n"


def _status(con, sequence):
    """contact_id → (status, exit_reason, exited_on)."""
    return {r[1]: r[3:] for r in enrollments(con, sequence)}


def _ledger(con, sequence):
    """The occurrences ledger of one sequence: (local date, instant), oldest first."""
    return [
        (on.isoformat(), at.isoformat(sep=" ", timespec="minutes"))
        for on, at in con.execute(
            "select occurrence_on, occurrence_at from occurrences where sequence = ? order by 1",
            [sequence],
        ).fetchall()
    ]


ACTIVE = ("active", None, None)


# --- exits (SPEC 6.1) ---------------------------------------------------------------------


def test_bounced_toggle_off_keeps_bounced_contacts_and_the_other_exits_apply(tmp_path):
    """``exit.bounced: false`` (slip: the toggle ignored, bounced always on).

    Everyone enters both sequences on 03-02 09:00; the activities happen on 03-03 10:00 (a
    meeting at 11:00, so it is the latest activity), so the exits are decided at 03-04 09:00.

    | contact | activities               | nb (bounced off)  | dflt (defaults) |
    |---------|--------------------------|-------------------|-----------------|
    | b       | bounce                   | active            | bounced         |
    | bu      | bounce, unsubscribe      | unsubscribed      | unsubscribed    |
    | br      | bounce, reply            | replied           | bounced         |
    | bk      | bounce, meeting          | condition         | bounced         |
    | ur      | unsubscribe, reply       | unsubscribed      | unsubscribed    |
    | rk      | reply, meeting           | replied           | replied         |
    | stay    | -                        | active            | active          |
    """
    con = open_db(tmp_path)
    names = ["b", "bu", "br", "bk", "ur", "rk", "stay"]
    insert(con, "contacts", [contact(n) for n in names])
    at, later = "2026-03-03 10:00", "2026-03-03 11:00"
    insert(
        con,
        "activities",
        [
            activity("b", "email_bounced", at),
            activity("bu", "email_bounced", at),
            activity("bu", "unsubscribed", at),
            activity("br", "email_bounced", at),
            activity("br", "email_replied", at),
            activity("bk", "email_bounced", at),
            activity("bk", "meeting", later),
            activity("ur", "unsubscribed", at),
            activity("ur", "email_replied", at),
            activity("rk", "email_replied", at),
            activity("rk", "meeting", later),
        ],
    )
    start = "starts_on: 2026-03-02\n"
    root = write_sequences(
        tmp_path / "ws",
        {
            "nb": classic("nb", LONG, extra=start + "exit:\n  bounced: false\n" + MEETING_EXIT),
            "dflt": classic("dflt", LONG, extra=start + "exit:\n" + MEETING_EXIT),
        },
    )
    tick(con, root, "2026-03-02 12:00")
    tick(con, root, "2026-03-05 12:00")
    assert _status(con, "nb") == {
        "b": ACTIVE,
        "bu": ("exited", "unsubscribed", "2026-03-04"),
        "br": ("exited", "replied", "2026-03-04"),
        "bk": ("exited", "condition", "2026-03-04"),
        "ur": ("exited", "unsubscribed", "2026-03-04"),
        "rk": ("exited", "replied", "2026-03-04"),
        "stay": ACTIVE,
    }
    assert _status(con, "dflt") == {
        "b": ("exited", "bounced", "2026-03-04"),
        "bu": ("exited", "unsubscribed", "2026-03-04"),
        "br": ("exited", "bounced", "2026-03-04"),
        "bk": ("exited", "bounced", "2026-03-04"),
        "ur": ("exited", "unsubscribed", "2026-03-04"),
        "rk": ("exited", "replied", "2026-03-04"),
        "stay": ACTIVE,
    }


def test_each_exit_toggle_alone(tmp_path):
    """One exit toggle on at a time (slip: a toggle's branch not run when it is the only one).

    u unsubscribes, b bounces, r replies on 03-03 10:00; decided at 03-04 09:00. Each sequence
    keeps exactly one of the three reasons (no ``where``): only that contact exits. ``none``
    switches all off: nobody exits (and nobody completes: its last step is day 30).
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact(n) for n in ("u", "b", "r", "stay")])
    at = "2026-03-03 10:00"
    insert(
        con,
        "activities",
        [
            activity("u", "unsubscribed", at),
            activity("b", "email_bounced", at),
            activity("r", "email_replied", at),
        ],
    )
    off = {"unsubscribed": "false", "bounced": "false", "replied": "false"}

    def only(reason: str | None) -> str:
        toggles = "".join(f"  {k}: {'true' if k == reason else v}\n" for k, v in off.items())
        return "starts_on: 2026-03-02\nexit:\n" + toggles

    root = write_sequences(
        tmp_path / "ws",
        {
            "ou": classic("ou", LONG, extra=only("unsubscribed")),
            "ob": classic("ob", LONG, extra=only("bounced")),
            "or": classic("or", LONG, extra=only("replied")),
            "none": classic("none", LONG, extra=only(None)),
        },
    )
    tick(con, root, "2026-03-02 12:00")
    tick(con, root, "2026-03-05 12:00")
    exited = {
        seq: {c: s[1:] for c, s in _status(con, seq).items() if s != ACTIVE}
        for seq in ("ou", "ob", "or", "none")
    }
    assert exited == {
        "ou": {"u": ("unsubscribed", "2026-03-04")},
        "ob": {"b": ("bounced", "2026-03-04")},
        "or": {"r": ("replied", "2026-03-04")},
        "none": {},
    }


def test_reply_counts_only_after_enrolment_and_at_or_before_the_instant(tmp_path):
    """``replied`` = an ``email_replied`` after enrolment, at or before t (slips: ``>`` → ``>=``
    on the enrolment instant; ``<=`` → ``<`` on t; the earliest reply kept instead of the
    latest, when merging the state or when rebuilding it for late activities).

    Everyone enters at 03-02 09:00 (a reply is no entry rule). Run 2 (as-of 03-04 12:00)
    processes 03-03 09:00 and 03-04 09:00; run 3 (as-of 03-05 12:00) processes 03-05 09:00.

    | contact | replies at                                | result                     |
    |---------|-------------------------------------------|----------------------------|
    | before  | 03-02 08:59                               | active (before enrolment)  |
    | at      | 03-02 09:00 (= enrolled_at)               | active (not AFTER it)      |
    | after   | 03-02 09:00:01                            | replied at 03-03           |
    | at_mid  | 03-03 09:00 (= an instant inside run 2)   | replied at 03-03           |
    | at_last | 03-04 09:00 (= run 2's last instant)      | replied at 03-04           |
    | again   | 03-01 10:00, then 03-03 10:00             | replied at 03-04 (latest)  |
    | late    | 03-01 10:00; 03-02 10:00 ingested late    | replied at 03-05           |

    ``late``'s second reply is ingested after run 2, which already processed 03-02..03-04: it
    counts from the next occurrence (the state is rebuilt from the whole history, where the
    latest reply, not the earliest, is the one after enrolment). After run 2 the state was
    built from the 8 activities at or before 03-04 09:00, each counted once.
    """
    con = open_db(tmp_path)
    names = ("before", "at", "after", "at_mid", "at_last", "again", "late")
    insert(con, "contacts", [contact(n) for n in names])
    insert(
        con,
        "activities",
        [
            activity("before", "email_replied", "2026-03-02 08:59"),
            activity("at", "email_replied", "2026-03-02 09:00"),
            activity("after", "email_replied", "2026-03-02 09:00:01"),
            activity("at_mid", "email_replied", "2026-03-03 09:00"),
            activity("at_last", "email_replied", "2026-03-04 09:00"),
            activity("again", "email_replied", "2026-03-01 10:00"),
            activity("again", "email_replied", "2026-03-03 10:00"),
            activity("late", "email_replied", "2026-03-01 10:00"),
        ],
    )
    root = write_sequences(
        tmp_path / "ws", {"s": classic("s", LONG, extra="starts_on: 2026-03-02")}
    )
    tick(con, root, "2026-03-02 12:00")
    tick(con, root, "2026-03-04 12:00")
    assert con.execute("select activities_counted from tick_state").fetchone() == (8,)
    insert(con, "activities", [activity("late", "email_replied", "2026-03-02 10:00")])
    tick(con, root, "2026-03-05 12:00")
    assert _status(con, "s") == {
        "before": ACTIVE,
        "at": ACTIVE,
        "after": ("exited", "replied", "2026-03-03"),
        "at_mid": ("exited", "replied", "2026-03-03"),
        "at_last": ("exited", "replied", "2026-03-04"),
        "again": ("exited", "replied", "2026-03-04"),
        "late": ("exited", "replied", "2026-03-05"),
    }


# --- entries (SPEC 6.2) -------------------------------------------------------------------


def test_duplicate_emails_the_smallest_contact_that_passes_every_other_rule_enters(tmp_path):
    """``prevent_duplicate_emails`` picks one contact per lower(email) among the contacts that
    pass every other entry rule (docs/decisions.md) — slip: ranking also the candidates
    rejected for another reason, so that the address never enters.

    The rejections are chosen so that the answer does not depend on a reading of SPEC: they
    concern the contact record, not the address (an unsubscribe or a bounce would keep the
    address out under every record, SPEC 6.2).

    - pat@: a1 is active in ``busy`` (``dup`` is exclusive with it; ``busy`` runs first at the
      same instant, by name) → a1 'exclusive_with'; a2 is the smallest remaining → enters on
      03-02; a3 → 'duplicate_email'.
    - lee@: b1 matches dup's exit condition (first name 'Customer') → 'exit_condition'; b2
      enters on 03-02.
    - kim@: c1 (smaller id) is created on 03-03 00:00, after 03-02's instant, so it is not a
      contact yet: c2 enters on 03-02; from 03-03 c1 exists but the address was enrolled in
      ``dup`` → never enters.
    - a1 never enters later either: the address is enrolled.
    - n1, n2 (no email) and n3 (a blank one) share no address: ``dup`` has no email step, so
      all three enter (slip: ranking the contacts without an email as one address).
    """
    con = open_db(tmp_path)
    insert(
        con,
        "contacts",
        [
            contact("a1", email="pat@x.example"),
            contact("a2", email="PAT@x.example"),
            contact("a3", email="pat@x.example"),
            contact("b1", email="lee@x.example", first_name="Customer"),
            contact("b2", email="Lee@x.example"),
            contact("c1", email="kim@x.example", created_at="2026-03-03 00:00"),
            contact("c2", email="kim@x.example"),
            contact("n1", email=None),
            contact("n2", email=None),
            contact("n3", email="  "),
        ],
    )
    root = write_sequences(
        tmp_path / "ws",
        {
            "busy": classic(
                "busy",
                LONG,
                extra="starts_on: 2026-03-02",
                audience="where: [\"first_name = 'A1'\"]",
            ),
            "dup": classic(
                "dup",
                LONG,
                extra="starts_on: 2026-03-02\nexclusive_with: [busy]\nexit:\n"
                "  where: [\"first_name = 'Customer'\"]\n",
                audience='prevent_duplicate_emails: true\n  where: ["true"]',
            ),
        },
    )
    tick(con, root, "2026-03-02 12:00")
    tick(con, root, "2026-03-04 12:00")
    assert [r[1:3] for r in enrollments(con, "dup")] == [
        ("a2", "2026-03-02"),
        ("b2", "2026-03-02"),
        ("c2", "2026-03-02"),
        ("n1", "2026-03-02"),
        ("n2", "2026-03-02"),
        ("n3", "2026-03-02"),
    ]
    assert [r[1] for r in enrollments(con, "busy")] == ["a1"]


# --- completion (SPEC 6.4) and edits ------------------------------------------------------


def test_classic_completes_on_its_last_step_day_and_when_already_past_it(tmp_path):
    """Completion is ``day_index >= last day`` (slips: ``=``; ``all_steps_done`` ignored).

    Steps a (day 1) and c (day 3); c1 enters both sequences on 03-02 (day 1), so day 3 is 03-04.
    - ``done``: completes on 03-04, after c is decided due that day.
    - ``kept`` (``all_steps_done: false``): still active on 03-06 (day 5). Then the file
      switches it on: at the next occurrence, 03-07 (day 6, past day 3), it completes.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    steps = "- {id: a, day: 1, action: follow_up}\n- {id: c, day: 3, action: follow_up}\n"
    start = "starts_on: 2026-03-02\n"
    seqs = {
        "done": classic("done", steps, extra=start),
        "kept": classic("kept", steps, extra=start + "exit:\n  all_steps_done: false\n"),
    }
    root = write_sequences(tmp_path / "ws", seqs)
    tick(con, root, "2026-03-06 12:00")
    assert enrollments(con) == [
        ("done", "c1", "2026-03-02", "exited", "completed", "2026-03-04"),
        ("kept", "c1", "2026-03-02", "active", None, None),
    ]
    assert actions(con) == [
        ("done", "c1", "a", 1, "2026-03-02", "due"),
        ("done", "c1", "c", 3, "2026-03-04", "due"),
        ("kept", "c1", "a", 1, "2026-03-02", "due"),
        ("kept", "c1", "c", 3, "2026-03-04", "due"),
    ]
    write_sequences(root, {"kept": classic("kept", steps, extra=start)})
    report = tick(con, root, "2026-03-07 12:00")
    assert enrollments(con, "kept") == [
        ("kept", "c1", "2026-03-02", "exited", "completed", "2026-03-07")
    ]
    assert dict(report.exits) == {"completed": 1}


def test_an_edit_that_moves_the_last_step_before_the_current_day_completes(tmp_path):
    """c1 enters on 03-02 (day 1); steps a (day 1), e (day 5), z (day 9). After the 03-06
    occurrence (day 5, e due) the file becomes a (day 1), b (day 3): the last step is now
    day 3, already behind. At the next occurrence, 03-07 (day 6), no step has day 6 (b's day
    has passed: it is never executed) and 6 ≥ 3: exit ``completed`` with exited_on 03-07.
    (Slip: completion only when day_index = last day, so the enrolment would never end.)
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    start = "starts_on: 2026-03-02\n"
    before = (
        "- {id: a, day: 1, action: follow_up}\n- {id: e, day: 5, action: follow_up}\n"
        "- {id: z, day: 9, action: follow_up}\n"
    )
    after = "- {id: a, day: 1, action: follow_up}\n- {id: b, day: 3, action: follow_up}\n"
    root = write_sequences(tmp_path / "ws", {"s": classic("s", before, extra=start)})
    tick(con, root, "2026-03-06 12:00")
    assert enrollments(con) == [("s", "c1", "2026-03-02", "active", None, None)]
    write_sequences(root, {"s": classic("s", after, extra=start)})
    tick(con, root, "2026-03-09 12:00")
    assert enrollments(con) == [("s", "c1", "2026-03-02", "exited", "completed", "2026-03-07")]
    assert actions(con) == [
        ("s", "c1", "a", 1, "2026-03-02", "due"),
        ("s", "c1", "e", 5, "2026-03-06", "due"),
    ]
    # the completion is counted on the 03-07 occurrence
    assert con.execute(
        "select occurrence_on::varchar, exits from occurrences where exits > 0"
    ).fetchall() == [("2026-03-07", 1)]


# --- schedule edits (SPEC 6 "Occurrences", "Edits") --------------------------------------


STEPS_1234 = (
    "- {id: d1, day: 1, action: follow_up}\n- {id: d2, day: 2, action: follow_up}\n"
    "- {id: d3, day: 3, action: follow_up}\n- {id: d4, day: 4, action: follow_up}\n"
    "- {id: z, day: 30, action: follow_up}\n"
)


def test_schedule_edit_resumes_after_the_last_processed_date(tmp_path):
    """A changed ``schedule.time``/``timezone`` applies from the next local date not yet
    processed: no local date twice, none skipped (pipelines/tick/run.py ``_pending_occurrences``:
    dates after the sequence's last ledger date, instants at or after the last instant
    processed, W).

    Run 1 (as-of 03-03 12:00) processes 03-02 and 03-03 at 09:00Z for the three sequences;
    W = 03-03 09:00. Then:
    - ``later``: 18:00 UTC. 03-03 18:00 is after W but 03-03 is done → not again; 03-04 18:00.
    - ``tokyo``: 09:00 Asia/Tokyo = 00:00Z. 03-04 at 03-04 00:00Z and 03-05 at 03-05 00:00Z.
    - ``honolulu``: 09:00 Pacific/Honolulu = 19:00Z. Its local 03-03 (19:00Z, after W) is done
      → not again; 03-04 at 03-04 19:00Z; 03-05 (19:00Z) is after the run's as-of.
    Run 2 at 03-05 12:00. The day index counts the ledger, so the steps go on, one a date.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    start = "starts_on: 2026-03-02\n"

    def at(zone: str, time: str) -> str:
        return f"{{time: '{time}', timezone: {zone}}}"

    root = write_sequences(
        tmp_path / "ws",
        {n: classic(n, STEPS_1234, extra=start) for n in ("later", "tokyo", "honolulu")},
    )
    tick(con, root, "2026-03-03 12:00")
    edited = {
        "later": at("UTC", "18:00"),
        "tokyo": at("Asia/Tokyo", "09:00"),
        "honolulu": at("Pacific/Honolulu", "09:00"),
    }
    write_sequences(
        root, {n: classic(n, STEPS_1234, extra=start, schedule=s) for n, s in edited.items()}
    )
    tick(con, root, "2026-03-05 12:00")
    first_two = [("2026-03-02", "2026-03-02 09:00"), ("2026-03-03", "2026-03-03 09:00")]
    assert _ledger(con, "later") == [*first_two, ("2026-03-04", "2026-03-04 18:00")]
    assert _ledger(con, "tokyo") == [
        *first_two,
        ("2026-03-04", "2026-03-04 00:00"),
        ("2026-03-05", "2026-03-05 00:00"),
    ]
    assert _ledger(con, "honolulu") == [*first_two, ("2026-03-04", "2026-03-04 19:00")]
    assert [r[2:5] for r in actions(con, "tokyo")] == [
        ("d1", 1, "2026-03-02"),
        ("d2", 2, "2026-03-03"),
        ("d3", 3, "2026-03-04"),
        ("d4", 4, "2026-03-05"),
    ]
    assert [r[2:5] for r in actions(con, "honolulu")] == [
        ("d1", 1, "2026-03-02"),
        ("d2", 2, "2026-03-03"),
        ("d3", 3, "2026-03-04"),
    ]


def test_schedule_edit_never_goes_back_before_the_last_processed_instant(tmp_path):
    """Occurrences are processed in global instant order and never before W, the latest
    instant already processed (docs/decisions.md): an occurrence AT W is still processed.

    ``w`` runs at 08:00 UTC, ``same`` and ``early`` at 09:00. Run 1 at 03-04 08:30 processes
    03-02..03-03 of all three and 03-04 08:00 of ``w``: W = 03-04 08:00. Then ``same`` moves
    to 08:00 and ``early`` to 06:00. Run 2 at 03-05 12:00:
    - ``same``: 03-04 08:00 = W → processed (at or after W), then 03-05 08:00.
    - ``early``: 03-04 06:00 < W → not processed (the state is already past it); 03-05 06:00.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    start = "starts_on: 2026-03-02\n"
    utc = "{{time: '{}', timezone: UTC}}".format
    root = write_sequences(
        tmp_path / "ws",
        {
            "w": classic("w", STEPS_1234, extra=start, schedule=utc("08:00")),
            "same": classic("same", STEPS_1234, extra=start),
            "early": classic("early", STEPS_1234, extra=start),
        },
    )
    tick(con, root, "2026-03-04 08:30")
    write_sequences(
        root,
        {
            "same": classic("same", STEPS_1234, extra=start, schedule=utc("08:00")),
            "early": classic("early", STEPS_1234, extra=start, schedule=utc("06:00")),
        },
    )
    tick(con, root, "2026-03-05 12:00")
    first_two = [("2026-03-02", "2026-03-02 09:00"), ("2026-03-03", "2026-03-03 09:00")]
    assert _ledger(con, "same") == [
        *first_two,
        ("2026-03-04", "2026-03-04 08:00"),
        ("2026-03-05", "2026-03-05 08:00"),
    ]
    assert _ledger(con, "early") == [*first_two, ("2026-03-05", "2026-03-05 06:00")]


# --- more slips in sql/tick/ (issue 14): counts, manual requests, created_at, smart ----------


def test_exit_counts_only_active_enrolments(tmp_path):
    """The exits of an occurrence are those of its ACTIVE enrolments (slip: the exit model
    also reading exited enrolments: the rows stay right, the counts do not).

    c1 enters on 03-02 and completes on 03-03 (steps on days 1 and 2), then unsubscribes on
    03-03 10:00. c2, created on 03-03 00:00, enters on 03-03 and completes on 03-04, so 03-04
    has an active enrolment and runs the exit model. Exits per occurrence: 03-02: 0, 03-03: 1,
    03-04: 1 — c1's unsubscribe is no exit: it is no longer enrolled.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1"), contact("c2", created_at="2026-03-03 00:00")])
    insert(con, "activities", [activity("c1", "unsubscribed", "2026-03-03 10:00")])
    two_days = "- {id: a, day: 1, action: follow_up}\n- {id: b, day: 2, action: follow_up}\n"
    root = write_sequences(
        tmp_path / "ws", {"s": classic("s", two_days, extra="starts_on: 2026-03-02")}
    )
    report = tick(con, root, "2026-03-04 12:00")
    assert dict(report.exits) == {"completed": 2}
    assert con.execute(
        "select occurrence_on::varchar, exits from occurrences order by 1"
    ).fetchall() == [("2026-03-02", 0), ("2026-03-03", 1), ("2026-03-04", 1)]
    assert enrollments(con) == [
        ("s", "c1", "2026-03-02", "exited", "completed", "2026-03-03"),
        ("s", "c2", "2026-03-03", "exited", "completed", "2026-03-04"),
    ]


def test_manual_requests_resolve_in_their_sequence_naming_the_first_rule_failed(tmp_path):
    """A request is resolved at its sequence's first occurrence at or after it
    (sql/schema.sql ``manual_requests``) and, when rejected, names the first entry rule it
    fails, in the order SPEC 6.2 lists them (slips: ``<=`` → ``<``; requests of another
    sequence read; two rules swapped; the unknown-contact or already-enrolled rule dropped).

    ``m`` enrols by request (its audience is first name 'Lag'), is exclusive with ``busy``
    (audience: first name 'Customer'; it runs first at the same instant, by name) and exits
    on first name 'Customer'.

    | contact   | request (in m unless said)  | facts                        | resolution          |
    |-----------|-----------------------------|------------------------------|---------------------|
    | ok        | 03-02 09:00 (= the instant) | -                            | enrolled 03-02      |
    | ub        | 03-02 08:00                 | unsubscribed flag, bounced   | unsubscribed 03-02  |
    | cust      | 03-02 08:00                 | exit condition, in busy      | exit_condition 03-02|
    | future    | 03-02 08:00                 | created 03-02 10:00          | unknown_contact     |
    | lag       | 03-02 10:00                 | in m's audience (03-02),     | already_enrolled    |
    |           |                             | unsubscribed 03-02 10:30     | 03-03               |
    | elsewhere | 03-02 08:00 in ``other``    | -                            | enrolled in other   |
    | ann3      | 03-02 08:00                 | ann1 (same address) unsub-   | unsubscribed 03-02  |
    |           |                             | scribed, ann2 (same) bounced |                     |

    lag: the request comes after 03-02's instant, so it waits for 03-03; by then lag entered
    m through the audience (03-02) and exited it (unsubscribed, 03-03): 'already_enrolled'
    comes before 'unsubscribed'. elsewhere is never a candidate of m. ann3's address was
    unsubscribed under one record and bounced under another: 'unsubscribed' (slip: an
    address counted as unsubscribed only when every record of it is).
    """
    con = open_db(tmp_path)
    insert(
        con,
        "contacts",
        [
            contact("ok"),
            contact("ub", unsubscribed=True),
            contact("cust", first_name="Customer"),
            contact("future", created_at="2026-03-02 10:00"),
            contact("lag"),
            contact("elsewhere"),
            contact("ann1", email="ann@x.example", unsubscribed=True),
            contact("ann2", email="ANN@x.example"),
            contact("ann3", email="Ann@x.example"),
        ],
    )
    insert(
        con,
        "activities",
        [
            activity("ub", "email_bounced", "2026-03-01 10:00"),
            activity("lag", "unsubscribed", "2026-03-02 10:30"),
            activity("ann2", "email_bounced", "2026-03-01 10:00"),
        ],
    )
    start = "starts_on: 2026-03-02\n"
    root = write_sequences(
        tmp_path / "ws",
        {
            "busy": classic(
                "busy", LONG, extra=start, audience="where: [\"first_name = 'Customer'\"]"
            ),
            "m": classic(
                "m",
                LONG,
                extra=start
                + "exclusive_with: [busy]\nexit:\n  where: [\"first_name = 'Customer'\"]\n",
                audience="where: [\"first_name = 'Lag'\"]",
            ),
            "other": classic("other", LONG, extra=start, audience="{}"),
        },
    )
    ws, _ = compile_root(con, root)
    enroll(con, ws, "m", ["ub", "cust", "future", "ann3"], ts("2026-03-02 08:00"))
    enroll(con, ws, "m", ["ok"], ts("2026-03-02 09:00"))
    enroll(con, ws, "m", ["lag"], ts("2026-03-02 10:00"))
    enroll(con, ws, "other", ["elsewhere"], ts("2026-03-02 08:00"))
    tick(con, root, "2026-03-03 12:00")
    assert con.execute(
        "select sequence, contact_id, status, reason, resolved_on::varchar "
        "from manual_requests order by all"
    ).fetchall() == [
        ("m", "ann3", "rejected", "unsubscribed", "2026-03-02"),
        ("m", "cust", "rejected", "exit_condition", "2026-03-02"),
        ("m", "future", "rejected", "unknown_contact", "2026-03-02"),
        ("m", "lag", "rejected", "already_enrolled", "2026-03-03"),
        ("m", "ok", "enrolled", None, "2026-03-02"),
        ("m", "ub", "rejected", "unsubscribed", "2026-03-02"),
        ("other", "elsewhere", "enrolled", None, "2026-03-02"),
    ]
    assert [r[1:] for r in enrollments(con, "m")] == [
        ("lag", "2026-03-02", "exited", "unsubscribed", "2026-03-03"),
        ("ok", "2026-03-02", "active", None, None),
    ]


def test_created_at_missing_or_exactly_at_the_instant_with_and_without_new_activity(tmp_path):
    """A contact takes part in occurrences at or after its created_at; one without created_at
    always does (docs/decisions.md: an empty created_at is allowed). Both hold whether the
    contact's row is evaluated once per run (no activity in the run's window) or per instant
    (activity in the window) — slips: ``<=`` → ``<``, the ``created_at is null`` arm dropped.

    Audience: last activity is a meeting. Run 1 at 03-02 12:00, run 2 at 03-04 12:00 (its
    window holds the activities after 03-02 09:00).

    | contact | created_at   | meeting at   | path in run 2 | enters |
    |---------|--------------|--------------|---------------|--------|
    | n_old   | none         | 03-01 10:00  | (run 1)       | 03-02  |
    | n_new   | none         | 03-03 08:00  | per instant   | 03-03  |
    | t_old   | 03-03 09:00  | 03-01 10:00  | once per run  | 03-03  |
    | t_new   | 03-03 09:00  | 03-03 08:00  | per instant   | 03-03  |
    """
    con = open_db(tmp_path)
    insert(
        con,
        "contacts",
        [
            contact("n_old", created_at=None),
            contact("n_new", created_at=None),
            contact("t_old", created_at="2026-03-03 09:00"),
            contact("t_new", created_at="2026-03-03 09:00"),
        ],
    )
    insert(
        con,
        "activities",
        [
            activity("n_old", "meeting", "2026-03-01 10:00"),
            activity("n_new", "meeting", "2026-03-03 08:00"),
            activity("t_old", "meeting", "2026-03-01 10:00"),
            activity("t_new", "meeting", "2026-03-03 08:00"),
        ],
    )
    root = write_sequences(
        tmp_path / "ws",
        {
            "s": classic(
                "s",
                LONG,
                extra="starts_on: 2026-03-02",
                audience="where: [\"last_activity_type = 'meeting'\"]",
            )
        },
    )
    tick(con, root, "2026-03-02 12:00")
    tick(con, root, "2026-03-04 12:00")
    assert [r[1:3] for r in enrollments(con)] == [
        ("n_new", "2026-03-03"),
        ("n_old", "2026-03-02"),
        ("t_new", "2026-03-03"),
        ("t_old", "2026-03-03"),
    ]


def test_sequences_lists_only_the_active_enrolments(tmp_path):
    """``sequences`` = the sequences the contact is active in (SPEC 5) — slip: exited ones
    listed too. c1 completes ``two`` on 03-03 and stays active in ``long``. From 03-04,
    ``after-two`` (audience: in ``two``) finds nobody; ``after-long`` enrols c1 on 03-04.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    two_days = "- {id: a, day: 1, action: follow_up}\n- {id: b, day: 2, action: follow_up}\n"
    start = "starts_on: 2026-03-02"
    later = "starts_on: 2026-03-04"
    root = write_sequences(
        tmp_path / "ws",
        {
            "two": classic("two", two_days, extra=start),
            "long": classic("long", LONG, extra=start),
            "after-two": classic(
                "after-two",
                LONG,
                extra=later,
                audience="where: [\"list_contains(sequences, 'two')\"]",
            ),
            "after-long": classic(
                "after-long",
                LONG,
                extra=later,
                audience="where: [\"list_contains(sequences, 'long')\"]",
            ),
        },
    )
    tick(con, root, "2026-03-05 12:00")
    assert [r[:3] for r in enrollments(con)] == [
        ("after-long", "c1", "2026-03-04"),
        ("long", "c1", "2026-03-02"),
        ("two", "c1", "2026-03-02"),
    ]


def _smart(name: str, first_name: str, interval: int, duration: int, steps: str, extra=""):
    """A smart sequence for the contact with that first name, at 09:00 UTC from 03-02."""
    return (
        f"name: {name}\nowner: alice\ntype: smart\nstarts_on: 2026-03-02\n"
        f"interval_days: {interval}\nduration_days: {duration}\n"
        f"audience: {{where: [\"first_name = '{first_name}'\"]}}\n"
        f"schedule: {{time: '09:00', timezone: UTC}}\n{extra}steps:\n"
        + textwrap.indent(textwrap.dedent(steps), "  ")
    )


SMART_STEPS = """\
- {id: s1, action: follow_up, when: ["last_activity_type = 'meeting'"]}
- {id: s2, action: follow_up}
- {id: s3, action: follow_up, when: ["last_activity_type = 'chat'"]}
"""


def test_smart_last_evaluation_day_all_steps_done_off_and_edits(tmp_path):
    """Smart sequences (SPEC 6.3-4), 03-02 is day 1 everywhere (slips: no evaluation on day
    duration_days; all_steps_done ignored; removed steps still counted as executed; completion
    only when day_index = duration_days, so a shortened duration never completes).

    - ``sa`` (interval 2, duration 7), k1 has a meeting on 03-07 10:00: s2 on day 1 (03-02);
      days 3 and 5 find nothing; day 7 (03-08) finds s1 → due, then completes (duration).
    - ``sb`` (interval 1, duration 7, all_steps_done off), k2 chats on 03-01 10:00 and meets
      on 03-03 10:00: day 1 (03-02) s2 (s1 does not hold), day 2 (03-03) s3 (the chat is
      still the latest), day 3 (03-04) s1. Every step is executed on 03-04, but with
      all_steps_done off it completes on day 7 (03-08) only.
    - ``sc`` (interval 1, duration 9), k3: s1 (always) day 1, s2 day 2, nothing on day 3.
      After run 1, the file drops s2 and keeps s1, s3: one of its two steps is executed,
      so k3 stays; k3 chats on 03-05 10:00 → s3 due on day 5 (03-06) → completed 03-06.
    - ``sd`` (interval 1, duration 9), k4: s1 (always) on day 1, s2 and s3 never hold. After
      run 1 (day 3, 03-04) the duration becomes 2: at the next occurrence (03-05, day 4 ≥ 2) k4
      completes.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact(k) for k in ("k1", "k2", "k3", "k4")])
    insert(
        con,
        "activities",
        [
            activity("k1", "meeting", "2026-03-07 10:00"),
            activity("k2", "chat", "2026-03-01 10:00"),
            activity("k2", "meeting", "2026-03-03 10:00"),
            activity("k3", "chat", "2026-03-05 10:00"),
        ],
    )
    always_then_never = """\
    - {id: s1, action: follow_up}
    - {id: s2, action: follow_up, when: ["last_activity_type = 'chat'"]}
    - {id: s3, action: follow_up, when: ["last_activity_type = 'chat'"]}
    """
    sc_before = """\
    - {id: s1, action: follow_up}
    - {id: s2, action: follow_up}
    - {id: s3, action: follow_up, when: ["last_activity_type = 'chat'"]}
    """
    sc_after = """\
    - {id: s1, action: follow_up}
    - {id: s3, action: follow_up, when: ["last_activity_type = 'chat'"]}
    """
    root = write_sequences(
        tmp_path / "ws",
        {
            "sa": _smart("sa", "K1", 2, 7, SMART_STEPS),
            "sb": _smart("sb", "K2", 1, 7, SMART_STEPS, "exit: {all_steps_done: false}\n"),
            "sc": _smart("sc", "K3", 1, 9, sc_before),
            "sd": _smart("sd", "K4", 1, 9, always_then_never),
        },
    )
    tick(con, root, "2026-03-04 12:00")
    write_sequences(
        root,
        {
            "sc": _smart("sc", "K3", 1, 9, sc_after),
            "sd": _smart("sd", "K4", 1, 2, always_then_never),
        },
    )
    tick(con, root, "2026-03-12 12:00")
    assert [r[:5] for r in actions(con)] == [
        ("sa", "k1", "s1", 7, "2026-03-08"),
        ("sa", "k1", "s2", 1, "2026-03-02"),
        ("sb", "k2", "s1", 3, "2026-03-04"),
        ("sb", "k2", "s2", 1, "2026-03-02"),
        ("sb", "k2", "s3", 2, "2026-03-03"),
        ("sc", "k3", "s1", 1, "2026-03-02"),
        ("sc", "k3", "s2", 2, "2026-03-03"),
        ("sc", "k3", "s3", 5, "2026-03-06"),
        ("sd", "k4", "s1", 1, "2026-03-02"),
    ]
    assert [(r[0], r[4], r[5]) for r in enrollments(con)] == [
        ("sa", "completed", "2026-03-08"),
        ("sb", "completed", "2026-03-08"),
        ("sc", "completed", "2026-03-06"),
        ("sd", "completed", "2026-03-05"),
    ]


def test_enrollment_columns_previous_email_skipped_emails_and_instants(tmp_path):
    """``enrollment.*`` (SPEC 5): this enrolment's emails decided due (not skipped, not other
    actions); the previous email is the latest one (ties: later in the file); an open counts
    after the enrolment and at or before t. Slips: earliest email instead of latest; the tie
    reversed; skipped emails or follow-ups counted; ``>`` → ``>=`` on the enrolment; ``<=`` →
    ``<`` on t; "clicked any" requiring every email clicked.

    Steps: e1 (email) and f1 (follow-up) day 1; e2 (email, not for first name 'Skip') day 2;
    day 3: chk (opened_previous_email), cnt (emails_sent = 2), any (opened_any_email);
    g1, g2 (emails) day 4; day 5: chk2 (opened_previous_email), clk (clicked_any_email).
    Opens and clicks name sequence and step; p2 clicked one email and only opened another.

    | contact | enrolled | opens (o) and clicks (c)        | chk  | cnt  | any  | chk2 | clk  |
    |---------|----------|---------------------------------|------|------|------|------|------|
    | p1      | 03-02    | o e1 03-02 12:00, o g1 03-05    | skip | due  | due  | skip | skip |
    | p2      | 03-02    | c e1 03-02 12:00, o e2 03-04    | due  | due  | due  | due  | due  |
    |         |          | 09:00 (= day 3's t), o g2 03-05 |      |      |      |      |      |
    | skip    | 03-02    | o e1 03-02 12:00 (e2 skipped)   | due  | skip | due  | skip | skip |
    | p4      | 03-03    | o e1 03-03 09:00 (= enrolled)   | skip | due  | skip | skip | skip |

    p1: previous email on day 3 is e2 (not opened), on day 5 g2 (g1 was opened). skip: its
    only email is e1, so previous = e1 and emails_sent = 1. p4 is created at 03-03 09:00, so
    its day 3 is 03-05 and day 5 is 03-07; an open at the enrolment instant is not after it.
    """
    con = open_db(tmp_path)
    insert(
        con,
        "contacts",
        [
            contact("p1"),
            contact("p2"),
            contact("skip"),
            contact("p4", created_at="2026-03-03 09:00"),
        ],
    )

    def opened(cid: str, step: str, at: str):
        return activity(cid, "email_opened", at, sequence="e", step=step)

    insert(
        con,
        "activities",
        [
            opened("p1", "e1", "2026-03-02 12:00"),
            opened("p1", "g1", "2026-03-05 12:00"),
            opened("p2", "e2", "2026-03-04 09:00"),
            opened("p2", "g2", "2026-03-05 12:00"),
            activity("p2", "email_clicked", "2026-03-02 12:00", sequence="e", step="e1"),
            opened("skip", "e1", "2026-03-02 12:00"),
            opened("p4", "e1", "2026-03-03 09:00"),
        ],
    )
    mail = "action: email, template: intro.md.j2, subject: Hi"
    steps = f"""
    - {{id: e1, day: 1, {mail}}}
    - {{id: f1, day: 1, action: follow_up}}
    - {{id: e2, day: 2, {mail}, when: ["first_name <> 'Skip'"]}}
    - {{id: chk, day: 3, action: follow_up, when: ["enrollment.opened_previous_email"]}}
    - {{id: cnt, day: 3, action: follow_up, when: ["enrollment.emails_sent = 2"]}}
    - {{id: any, day: 3, action: follow_up, when: ["enrollment.opened_any_email"]}}
    - {{id: g1, day: 4, {mail}}}
    - {{id: g2, day: 4, {mail}}}
    - {{id: chk2, day: 5, action: follow_up, when: ["enrollment.opened_previous_email"]}}
    - {{id: clk, day: 5, action: follow_up, when: ["enrollment.clicked_any_email"]}}
    """
    root = write_sequences(
        tmp_path / "ws", {"e": classic("e", steps, extra="starts_on: 2026-03-02")}
    )
    tick(con, root, "2026-03-02 12:00")
    tick(con, root, "2026-03-08 12:00")
    got = {
        (c, s): st[:4]
        for _, c, s, _, _, st in actions(con)
        if s in ("chk", "cnt", "any", "chk2", "clk")
    }
    assert got == {
        ("p1", "chk"): "skip",
        ("p1", "cnt"): "due",
        ("p1", "any"): "due",
        ("p1", "clk"): "skip",
        ("p1", "chk2"): "skip",
        ("p2", "chk"): "due",
        ("p2", "cnt"): "due",
        ("p2", "any"): "due",
        ("p2", "clk"): "due",
        ("p2", "chk2"): "due",
        ("skip", "chk"): "due",
        ("skip", "cnt"): "skip",
        ("skip", "any"): "due",
        ("skip", "clk"): "skip",
        ("skip", "chk2"): "skip",
        ("p4", "chk"): "skip",
        ("p4", "cnt"): "due",
        ("p4", "any"): "skip",
        ("p4", "clk"): "skip",
        ("p4", "chk2"): "skip",
    }


def test_latest_activity_ties_and_contact_mode_types(tmp_path):
    """Derived properties (SPEC 5): ``last_activity_type`` is the latest activity (ties on
    occurred_at: the larger activity_id, sql/tick/int_activity_delta.sql), and
    ``last_contacted_mode`` reads only the contact-mode types. Slips: the tie-break dropped
    (the ids are inserted in an order that defeats "first row wins" and "last row wins"), the
    contact-mode filter dropped.

    | contact | activities (03-01 10:00 unless said), in insert order | last type | mode      |
    |---------|-------------------------------------------------------|-----------|-----------|
    | q1      | call_outgoing; email_delivered at 11:00               | delivered | Outgoing  |
    | t1      | chat (id t1-2), meeting (id t1-1)                     | chat      | Chat      |
    | t2      | chat (id t2-1), meeting (id t2-2)                     | meeting   | Chat      |
    | t3      | call_outgoing (id t3-2), chat (id t3-1)               | call      | Outgoing  |
    | t4      | chat (id t4-1), call_outgoing (id t4-2)               | call      | Outgoing  |

    Day-1 steps: ``call`` when the mode is 'Outgoing call', ``chat`` when the last type is chat.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact(c) for c in ("q1", "t1", "t2", "t3", "t4")])
    at = "2026-03-01 10:00"
    insert(
        con,
        "activities",
        [
            activity("q1", "call_outgoing", at),
            activity("q1", "email_delivered", "2026-03-01 11:00"),
            activity("t1", "chat", at, activity_id="t1-2"),
            activity("t1", "meeting", at, activity_id="t1-1"),
            activity("t2", "chat", at, activity_id="t2-1"),
            activity("t2", "meeting", at, activity_id="t2-2"),
            activity("t3", "call_outgoing", at, activity_id="t3-2"),
            activity("t3", "chat", at, activity_id="t3-1"),
            activity("t4", "chat", at, activity_id="t4-1"),
            activity("t4", "call_outgoing", at, activity_id="t4-2"),
        ],
    )
    steps = """
    - {id: call, day: 1, action: follow_up, when: ["last_contacted_mode = 'Outgoing call'"]}
    - {id: chat, day: 1, action: follow_up, when: ["last_activity_type = 'chat'"]}
    """
    root = write_sequences(
        tmp_path / "ws", {"s": classic("s", steps, extra="starts_on: 2026-03-02")}
    )
    tick(con, root, "2026-03-02 12:00")
    got = {(c, s): st for _, c, s, _, _, st in actions(con)}
    assert got == {
        ("q1", "call"): "due",
        ("q1", "chat"): "skipped",
        ("t1", "call"): "skipped",
        ("t1", "chat"): "due",
        ("t2", "call"): "skipped",
        ("t2", "chat"): "skipped",
        ("t3", "call"): "due",
        ("t3", "chat"): "skipped",
        ("t4", "call"): "due",
        ("t4", "chat"): "skipped",
    }


def test_sequences_is_sorted_by_name(tmp_path):
    """``sequences`` lists the active sequences by name (int_occurrence_contact.sql), so a
    condition comparing the whole list is stable — slip: the list in enrolment order.

    c1 enters ``zed`` on 03-02 and ``abc`` on 03-03 (its start). On 03-04 ``ordered``
    (audience: ``sequences = ['abc', 'zed']``) enrols c1.
    """
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    root = write_sequences(
        tmp_path / "ws",
        {
            "zed": classic("zed", LONG, extra="starts_on: 2026-03-02"),
            "abc": classic("abc", LONG, extra="starts_on: 2026-03-03"),
            "ordered": classic(
                "ordered",
                LONG,
                extra="starts_on: 2026-03-04",
                audience="where: [\"sequences = ['abc', 'zed']\"]",
            ),
        },
    )
    tick(con, root, "2026-03-04 12:00")
    assert [r[:3] for r in enrollments(con)] == [
        ("abc", "c1", "2026-03-03"),
        ("ordered", "c1", "2026-03-04"),
        ("zed", "c1", "2026-03-02"),
    ]
