"""Exits, entries, exclusivity, duplicates, audiences (SPEC 6 steps 1-2), rows in → rows out."""

from __future__ import annotations

from tests.tick_helpers import (
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


def _status(con, sequence):
    return {r[1]: r[3:] for r in enrollments(con, sequence)}


def test_each_exit_reason_and_their_order(tmp_path):
    con = open_db(tmp_path)
    names = ["u", "uf", "b", "r", "r0", "k", "ub", "br", "rk", "stay"]
    insert(con, "contacts", [contact(n) for n in names])
    at = "2026-03-03 10:00"
    insert(
        con,
        "activities",
        [
            activity("u", "unsubscribed", at),
            activity("b", "email_bounced", at),
            activity("r", "email_replied", at),
            activity("r0", "email_replied", "2026-03-01 10:00"),  # before enrolment: no exit
            activity("k", "meeting", at),
            activity("ub", "email_bounced", at),
            activity("ub", "unsubscribed", at),
            activity("br", "email_replied", at),
            activity("br", "email_bounced", at),
            activity("rk", "email_replied", at),
            activity("rk", "meeting", "2026-03-03 11:00"),
        ],
    )
    exit_where = "exit:\n  where: [\"last_activity_type = 'meeting'\"]\n"
    toggles_off = (
        "exit:\n  unsubscribed: false\n  replied: false\n"
        "  where: [\"last_activity_type = 'meeting'\"]\n"
    )
    root = write_sequences(
        tmp_path / "ws",
        {
            "s": classic("s", LONG, extra="starts_on: 2026-03-02\n" + exit_where),
            "t": classic("t", LONG, extra="starts_on: 2026-03-02\n" + toggles_off),
        },
    )
    tick(con, root, "2026-03-02 12:00")
    con.execute("update contacts set unsubscribed = true where contact_id = 'uf'")
    tick(con, root, "2026-03-05 12:00")
    active = ("active", None, None)
    assert _status(con, "s") == {
        "uf": ("exited", "unsubscribed", "2026-03-03"),  # the flag, seen at the next occurrence
        "u": ("exited", "unsubscribed", "2026-03-04"),
        "b": ("exited", "bounced", "2026-03-04"),
        "r": ("exited", "replied", "2026-03-04"),
        "r0": active,
        "k": ("exited", "condition", "2026-03-04"),
        "ub": ("exited", "unsubscribed", "2026-03-04"),
        "br": ("exited", "bounced", "2026-03-04"),
        "rk": ("exited", "replied", "2026-03-04"),
        "stay": active,
    }
    # unsubscribed and replied switched off: those reasons no longer exit
    assert _status(con, "t") == {
        "uf": active,
        "u": active,
        "r": active,
        "r0": active,
        "stay": active,
        "b": ("exited", "bounced", "2026-03-04"),
        "k": ("exited", "condition", "2026-03-04"),
        "ub": ("exited", "bounced", "2026-03-04"),
        "br": ("exited", "bounced", "2026-03-04"),
        "rk": ("exited", "condition", "2026-03-04"),
    }


def test_entry_rules_unsubscribed_bounced_exit_condition_no_email(tmp_path):
    con = open_db(tmp_path)
    insert(
        con,
        "contacts",
        [
            contact("ok"),
            contact("flag", unsubscribed=True),
            contact("unsub"),
            contact("bnc"),
            contact("meet"),
            contact("blank", email="  "),
            contact("none", email=None),
            contact("replied"),
        ],
    )
    at = "2026-03-01 10:00"
    insert(
        con,
        "activities",
        [
            activity("unsub", "unsubscribed", at),
            activity("bnc", "email_bounced", at),
            activity("meet", "meeting", at),
            activity("replied", "email_replied", at),
        ],
    )
    email = "- {id: e, day: 1, action: email, template: intro.md.j2, subject: Hi}\n"
    extra = "starts_on: 2026-03-02\nexit:\n  where: [\"last_activity_type = 'meeting'\"]\n"
    root = write_sequences(
        tmp_path / "ws",
        {
            "mail": classic("mail", email, extra=extra),
            "call": classic("call", LONG, extra=extra),
        },
    )
    tick(con, root, "2026-03-02 12:00")
    assert sorted(_status(con, "mail")) == ["ok", "replied"]
    # without email steps, contacts without an email address enter
    assert sorted(_status(con, "call")) == ["blank", "none", "ok", "replied"]


def test_exclusivity_and_sequences_at_different_local_times(tmp_path):
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1"), contact("c2"), contact("c3")])
    two_days = "- {id: a, day: 1, action: follow_up}\n- {id: b, day: 2, action: follow_up}\n"
    ny = "{time: '09:00', timezone: America/New_York}"  # 14:00Z in early March
    ber = "{time: '09:00', timezone: Europe/Berlin}"  # 08:00Z
    root = write_sequences(
        tmp_path / "ws",
        {
            "b": classic(
                "b",
                two_days,
                schedule=ber,
                extra="starts_on: 2026-03-02",
                audience="where: [\"first_name in ('C1', 'C2')\"]",
            ),
            "a": classic(
                "a",
                LONG,
                schedule=ny,
                extra="starts_on: 2026-03-02\nexclusive_with: [b]",
                audience="where: [\"first_name in ('C1', 'C3')\"]",
            ),
            "c": classic(
                "c",
                LONG,
                schedule=ny,
                extra="starts_on: 2026-03-02",
                audience="where: [\"list_contains(sequences, 'b')\"]",
            ),
        },
    )
    tick(con, root, "2026-03-04")
    assert enrollments(con) == [
        # c1 is active in b at a's first occurrence; b completes at 03-03 08:00Z, so at
        # a's 03-03 14:00Z occurrence c1 enters a
        ("a", "c1", "2026-03-03", "active", None, None),
        ("a", "c3", "2026-03-02", "active", None, None),
        ("b", "c1", "2026-03-02", "exited", "completed", "2026-03-03"),
        ("b", "c2", "2026-03-02", "exited", "completed", "2026-03-03"),
        ("c", "c1", "2026-03-02", "active", None, None),
        ("c", "c2", "2026-03-02", "active", None, None),
    ]


def test_same_instant_ties_by_sequence_name(tmp_path):
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1")])
    root = write_sequences(
        tmp_path / "ws",
        {
            "a1": classic("a1", LONG, extra="starts_on: 2026-03-02"),
            "b1": classic("b1", LONG, extra="starts_on: 2026-03-02\nexclusive_with: [a1]"),
            "a2": classic("a2", LONG, extra="starts_on: 2026-03-02\nexclusive_with: [b2]"),
            "b2": classic("b2", LONG, extra="starts_on: 2026-03-02"),
            "z": classic(
                "z",
                LONG,
                extra="starts_on: 2026-03-02",
                audience="where: [\"list_contains(sequences, 'a1')\"]",
            ),
        },
    )
    tick(con, root, "2026-03-02 09:00")
    # b1 sees a1's entry at the same instant; a2 runs before b2 so it does not see b2's
    assert [r[0] for r in enrollments(con)] == ["a1", "a2", "b2", "z"]


def test_duplicate_emails_differing_in_case(tmp_path):
    con = open_db(tmp_path)
    insert(
        con,
        "contacts",
        [
            contact("c1", email="Ann@X.example"),
            contact("c0", email="ANN@x.example"),
            contact("c2", email="ann@x.example"),
            contact("c3", email="bob@x.example"),
            contact("c4", email="ann@X.EXAMPLE ", created_at="2026-03-03 00:00"),
        ],
    )
    root = write_sequences(
        tmp_path / "ws",
        {
            "d": classic(
                "d",
                LONG,
                extra="starts_on: 2026-03-02",
                audience='prevent_duplicate_emails: true\n  where: ["true"]',
            ),
            "e": classic("e", LONG, extra="starts_on: 2026-03-02"),
        },
    )
    tick(con, root, "2026-03-04 12:00")
    # one contact per lower(email), the smallest contact_id; c4 arrives later with an
    # email already enrolled in d: never enters
    assert sorted(_status(con, "d")) == ["c0", "c3"]
    assert sorted(_status(con, "e")) == ["c0", "c1", "c2", "c3", "c4"]


def test_account_audience_and_views(tmp_path):
    con = open_db(tmp_path)
    con.execute("alter table accounts add column industry varchar")
    insert(
        con,
        "accounts",
        [
            {"account_id": "a1", "name": "Acme", "industry": "SaaS"},
            {"account_id": "a2", "name": "Shop", "industry": "Retail"},
        ],
    )
    insert(
        con,
        "contacts",
        [
            contact("c1", account_id="a1"),
            contact("c2", account_id="a1"),
            contact("c3", account_id="a2"),
            contact("c4"),
        ],
    )
    root = write_sequences(
        tmp_path / "ws",
        {
            "acct": classic(
                "acct",
                LONG,
                extra="starts_on: 2026-03-02",
                audience="record: account\n  where: [\"industry = 'SaaS'\"]",
            ),
            "view": classic(
                "view",
                LONG,
                extra="starts_on: 2026-03-02",
                audience="views: [saas]\n  where: [\"first_name = 'C4'\"]",
            ),
        },
        views={"saas": "account.industry = 'SaaS'"},
    )
    tick(con, root, "2026-03-02 12:00")
    assert sorted(_status(con, "acct")) == ["c1", "c2"]
    assert sorted(_status(con, "view")) == ["c1", "c2", "c4"]  # union of view and where


def test_an_address_that_unsubscribed_or_bounced_never_enters_under_another_contact(tmp_path):
    con = open_db(tmp_path)
    insert(
        con,
        "contacts",
        [
            contact("c1", email="pat@x.example", unsubscribed=True),
            contact("c2", email="PAT@x.example"),  # same address, another record
            contact("c3", email="lee@x.example"),
            contact("c4", email="Lee@X.example"),
            contact("c5", email="kim@x.example"),
        ],
    )
    insert(con, "activities", [activity("c3", "email_bounced", "2026-03-01 10:00")])
    root = write_sequences(
        tmp_path / "ws", {"e": classic("e", LONG, extra="starts_on: 2026-03-02")}
    )
    tick(con, root, "2026-03-02 12:00")
    assert sorted(_status(con, "e")) == ["c5"]
