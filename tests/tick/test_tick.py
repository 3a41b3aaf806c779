"""The tick (SPEC 6), given rows → expected rows, on a real DuckDB file.

Sequences run at 09:00 UTC unless a test says otherwise, so occurrence instants are easy to
read: the occurrence of 2026-03-02 is at 2026-03-02 09:00.
"""

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

EMAIL = "{id: intro, day: 1, action: email, template: intro.md.j2, subject: Hi}"


def test_day_one_entry_steps_and_completion(tmp_path):
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1"), contact("c2", email=None)])
    root = write_sequences(
        tmp_path / "ws",
        {
            "s": classic(
                "s",
                f"""
        - {EMAIL}
        - {{id: call, day: 2, action: call_reminder}}
        - {{id: fu, day: 3, action: follow_up}}
        """,
                extra="starts_on: 2026-03-02",
            )
        },
    )
    report = tick(con, root, "2026-03-10")
    # c2 has no email and the sequence has an email step: not enrolled
    assert enrollments(con) == [("s", "c1", "2026-03-02", "exited", "completed", "2026-03-04")]
    assert actions(con) == [
        ("s", "c1", "call", 2, "2026-03-03", "due"),
        ("s", "c1", "fu", 3, "2026-03-04", "due"),
        ("s", "c1", "intro", 1, "2026-03-02", "due"),
    ]
    assert len(report.occurrences) == 8
    stats = json.loads(con.execute("select stats from runs").fetchone()[0])
    assert stats["occurrences"] == 8 and stats["entries"] == 1
    assert stats["exits"] == {"completed": 1} and stats["actions"] == {"due": 3}
    assert set(stats["seconds"]) >= {"state", "exits", "entries", "steps", "completions"}


def test_skipped_step_is_not_retried(tmp_path):
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1"), contact("c2")])
    # c2 has a call on day 2 at 08:00 (before the 09:00 occurrence), c1 only on day 3
    insert(
        con,
        "activities",
        [
            activity("c2", "call_outgoing", "2026-03-03 08:00"),
            activity("c1", "call_outgoing", "2026-03-04 08:00"),
        ],
    )
    root = write_sequences(
        tmp_path / "ws",
        {
            "s": classic(
                "s",
                """
        - {id: a, day: 2, action: follow_up, when: ["last_contacted_mode = 'Outgoing call'"]}
        - {id: b, day: 4, action: follow_up}
        """,
                extra="starts_on: 2026-03-02",
            )
        },
    )
    tick(con, root, "2026-03-06")
    assert actions(con) == [
        ("s", "c1", "a", 2, "2026-03-03", "skipped"),
        ("s", "c1", "b", 4, "2026-03-05", "due"),
        ("s", "c2", "a", 2, "2026-03-03", "due"),
        ("s", "c2", "b", 4, "2026-03-05", "due"),
    ]


def test_weekends_excluded_or_not(tmp_path):
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    steps = "- {id: a, day: 1, action: follow_up}\n- {id: b, day: 2, action: follow_up}\n"
    root = write_sequences(
        tmp_path / "ws",
        {
            "wd": classic(
                "wd",
                steps,
                extra="starts_on: 2026-03-06",
                schedule="{time: '09:00', timezone: UTC, exclude_weekends: true}",
            ),
            "all": classic("all", steps, extra="starts_on: 2026-03-06"),
        },
    )
    tick(con, root, "2026-03-10")
    assert actions(con) == [
        ("all", "c1", "a", 1, "2026-03-06", "due"),
        ("all", "c1", "b", 2, "2026-03-07", "due"),
        ("wd", "c1", "a", 1, "2026-03-06", "due"),
        ("wd", "c1", "b", 2, "2026-03-09", "due"),  # Friday, then Monday
    ]
    assert (
        con.execute(
            "select count(*) from occurrences "
            "where sequence = 'wd' and dayofweek(occurrence_on) in (0, 6)"
        ).fetchone()[0]
        == 0
    )


def _instants(con, sequence):
    return [
        (on.isoformat(), at.isoformat(sep=" ", timespec="minutes"))
        for on, at in con.execute(
            "select occurrence_on, occurrence_at from occurrences where sequence = ? order by 1",
            [sequence],
        ).fetchall()
    ]


STEPS_AB = "- {id: a, day: 1, action: follow_up}\n- {id: b, day: 2, action: follow_up}\n"


def test_dst_spring_forward_new_york_berlin_and_kolkata(tmp_path):
    con = open_db(tmp_path)
    # created at 07:20Z on New York's spring-forward day: before that day's 02:30 local,
    # which moves forward to 03:30 EDT = 07:30Z, so it takes part that day
    insert(con, "contacts", [contact("c1", created_at="2026-03-08 07:20")])
    root = write_sequences(
        tmp_path / "ws",
        {
            "ny": classic(
                "ny",
                STEPS_AB,
                extra="starts_on: 2026-03-07",
                schedule="{time: '02:30', timezone: America/New_York}",
            ),
            "ber": classic(
                "ber",
                STEPS_AB,
                extra="starts_on: 2026-03-28",
                schedule="{time: '02:30', timezone: Europe/Berlin}",
            ),
            "kol": classic(
                "kol",
                STEPS_AB,
                extra="starts_on: 2026-03-07",
                schedule="{time: '09:00', timezone: Asia/Kolkata}",
            ),
        },
    )
    tick(con, root, "2026-03-09 12:00")
    assert _instants(con, "ny") == [
        ("2026-03-07", "2026-03-07 07:30"),
        ("2026-03-08", "2026-03-08 07:30"),  # 02:30 does not exist → 03:30 EDT
        ("2026-03-09", "2026-03-09 06:30"),
    ]
    assert enrollments(con, "ny") == [
        ("ny", "c1", "2026-03-08", "exited", "completed", "2026-03-09")
    ]
    # Kolkata 09:00 = 03:30Z: c1 (created 03-08 07:20Z) first takes part on 03-09
    assert _instants(con, "kol")[0] == ("2026-03-07", "2026-03-07 03:30")
    assert enrollments(con, "kol")[0][2] == "2026-03-09"
    tick(con, root, "2026-03-31 12:00")
    assert _instants(con, "ber") == [
        ("2026-03-28", "2026-03-28 01:30"),
        ("2026-03-29", "2026-03-29 01:30"),  # 02:30 does not exist → 03:30 CEST
        ("2026-03-30", "2026-03-30 00:30"),
        ("2026-03-31", "2026-03-31 00:30"),
    ]
    assert actions(con, "ber") == [
        ("ber", "c1", "a", 1, "2026-03-28", "due"),
        ("ber", "c1", "b", 2, "2026-03-29", "due"),
    ]


def test_dst_fall_back_new_york_and_berlin(tmp_path):
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1", created_at="2026-11-01 05:29")])
    root = write_sequences(
        tmp_path / "ws",
        {
            "ny": classic(
                "ny",
                STEPS_AB,
                extra="starts_on: 2026-10-31",
                schedule="{time: '01:30', timezone: America/New_York}",
            ),
            "ber": classic(
                "ber",
                STEPS_AB,
                extra="starts_on: 2026-10-24",
                schedule="{time: '02:30', timezone: Europe/Berlin}",
            ),
        },
    )
    tick(con, root, "2026-11-02 12:00")
    assert _instants(con, "ny") == [
        ("2026-10-31", "2026-10-31 05:30"),
        ("2026-11-01", "2026-11-01 05:30"),  # ambiguous 01:30 → the first (EDT) instant
        ("2026-11-02", "2026-11-02 06:30"),
    ]
    assert actions(con, "ny") == [
        ("ny", "c1", "a", 1, "2026-11-01", "due"),
        ("ny", "c1", "b", 2, "2026-11-02", "due"),
    ]
    assert _instants(con, "ber")[:3] == [
        ("2026-10-24", "2026-10-24 00:30"),
        ("2026-10-25", "2026-10-25 00:30"),  # ambiguous → the first (CEST) instant
        ("2026-10-26", "2026-10-26 01:30"),
    ]


def test_contact_created_mid_way(tmp_path):
    con = open_db(tmp_path)
    insert(
        con,
        "contacts",
        [
            contact("c1"),
            contact("c2", created_at="2026-03-03 10:00"),
            contact("c3", created_at="2026-03-04 09:00"),
        ],
    )
    root = write_sequences(
        tmp_path / "ws",
        {"s": classic("s", "- {id: a, day: 1, action: follow_up}", extra="starts_on: 2026-03-02")},
    )
    tick(con, root, "2026-03-05")
    assert [(r[1], r[2]) for r in enrollments(con)] == [
        ("c1", "2026-03-02"),
        ("c2", "2026-03-04"),
        ("c3", "2026-03-04"),
    ]


def test_starts_on_and_default_start(tmp_path):
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    step = "- {id: a, day: 1, action: follow_up}\n- {id: b, day: 9, action: follow_up}"
    root = write_sequences(
        tmp_path / "ws",
        {
            "from-date": classic("from-date", step, extra="starts_on: 2026-03-04"),
            "default": classic("default", step),
            "future": classic("future", step, extra="starts_on: 2026-03-20"),
        },
    )
    tick(con, root, "2026-03-10 12:00")
    # starts_on: catches up from 03-04; default: starts at the latest occurrence ≤ as_of
    assert [r[:3] for r in enrollments(con)] == [
        ("default", "c1", "2026-03-10"),
        ("from-date", "c1", "2026-03-04"),
    ]
    assert _instants(con, "default") == [("2026-03-10", "2026-03-10 09:00")]
    assert _instants(con, "future") == []
    assert con.execute(
        "select first_occurrence_on::varchar from sequence_state where sequence = 'default'"
    ).fetchone() == ("2026-03-10",)
    tick(con, root, "2026-03-12 09:00")
    assert [on for on, _ in _instants(con, "default")] == [
        "2026-03-10",
        "2026-03-11",
        "2026-03-12",
    ]


def test_replay_changes_nothing(tmp_path):
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1"), contact("c2")])
    insert(con, "activities", [activity("c2", "email_replied", "2026-03-03 10:00")])
    root = write_sequences(
        tmp_path / "ws",
        {
            "s": classic(
                "s",
                f"""
        - {EMAIL}
        - {{id: b, day: 3, action: follow_up}}
        """,
                extra="starts_on: 2026-03-02",
            )
        },
    )

    def snapshot():
        return {
            t: con.execute(f"select * from {t} order by all").fetchall()
            for t in (
                "enrollments",
                "actions",
                "occurrences",
                "contact_activity_state",
                "tick_state",
                "sequence_state",
                "manual_requests",
            )
        }

    tick(con, root, "2026-03-05")
    before = snapshot()
    report = tick(con, root, "2026-03-05")
    assert report.occurrences == []
    assert snapshot() == before
    assert con.execute("select count(*) from runs").fetchone()[0] == 2


def test_idempotency_keys_are_the_md5_of_the_decision_and_old_keys_live_beside_them(tmp_path):
    """Since issue 11 a new action's key is the 32-hex md5 of (sequence, contact, step,
    enrolment): one per decision, the same whichever run makes it. Rows decided before keep
    their 64-hex sha256 keys; a tick next to them decides only what is undecided."""
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1"), contact("c2")])
    steps = "- {id: call, day: 1, action: call_reminder}\n- {id: fu, day: 2, action: follow_up}"
    root = write_sequences(tmp_path / "ws", {"s": classic("s", steps)})
    tick(con, root, "2026-03-02 10:00")
    con.execute(  # as an older version wrote them
        "update actions set idempotency_key = "
        "sha256(concat_ws(chr(31), sequence, contact_id, step, enrollment_id))"
    )
    tick(con, root, "2026-03-03 10:00")
    rows = con.execute(
        "select step, idempotency_key, "
        "md5(concat_ws(chr(31), sequence, contact_id, step, enrollment_id)) from actions "
        "order by step, contact_id"
    ).fetchall()
    assert [(step, len(key)) for step, key, _ in rows] == [
        ("call", 64), ("call", 64), ("fu", 32), ("fu", 32)
    ]  # fmt: skip
    assert all(key == md5 for step, key, md5 in rows if step == "fu")
    assert len({key for _, key, _ in rows}) == 4
