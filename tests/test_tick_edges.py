"""Edges of the tick (SPEC 6) that small slips in the SQL would get wrong, rows in → rows out.

Each test names the slip it guards against. Sequences run at 09:00 UTC unless a test says
otherwise, so the occurrence of 2026-03-02 is at 2026-03-02 09:00 and an enrolment made there
has ``enrolled_at`` = 2026-03-02 09:00. Expected rows are derived by hand in the docstrings.
"""

from __future__ import annotations

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
    | b       | bounce                   | active            | bounced       |
    | bu      | bounce, unsubscribe      | unsubscribed      | unsubscribed  |
    | br      | bounce, reply            | replied           | bounced       |
    | bk      | bounce, meeting          | condition         | bounced       |
    | ur      | unsubscribe, reply       | unsubscribed      | unsubscribed  |
    | rk      | reply, meeting           | replied           | replied       |
    | stay    | -                        | active            | active        |
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
    processed: no local date twice, none skipped (pipelines/tick.py ``_pending_occurrences``:
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
