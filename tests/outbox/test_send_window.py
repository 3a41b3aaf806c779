"""Send windows (SPEC 11, issue 12 item 2) on given rows, against the real SMTP sink.

``outbound`` (owner alice, America/New_York) gets ``send_window: {start: "09:00", end:
"17:00"}`` (Monday to Friday, the contact's timezone). Contacts: c1 in Pacific/Auckland
(UTC+13 in March: across the date line), c3 and c5 in America/Los_Angeles (UTC-8, UTC-7 from
Sunday 2026-03-08), c4 with no timezone (the owner's: UTC-5). T0 = Monday 2026-03-02 14:30Z.
Every expected status is worked out by hand in the test's docstring.
"""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.outbox.batch import LIMIT_NOTE, WINDOW_NOTE
from pipelines.project import Project
from pipelines.workspace import load_workspace
from tests.delivery_fixtures import action_rows, add_action, statuses
from tests.outbox.test_outbox_rules import DAY, HOUR, T0, Outbox
from tests.outbox.test_outbox_rules import outbox as outbox  # noqa: F401 (the fixture)

WINDOW = 'send_window: {start: "09:00", end: "17:00"}\n'
ZONES = {"c1": "Pacific/Auckland", "c3": "America/Los_Angeles", "c5": "America/Los_Angeles"}


def windowed(outbox: Outbox, window: str = WINDOW, *, alice_limit: int = 500, users: str = ""):
    """The workspace with ``window`` on ``outbound`` (and ``users`` appended to users.yaml)."""
    outbox.workspace(alice_limit=alice_limit)
    root = outbox.root / "ws"
    path = root / "sequences" / "outbound.yaml"
    path.write_text(path.read_text().replace("steps:\n", window + "steps:\n", 1))
    if users:
        (root / "users.yaml").write_text((root / "users.yaml").read_text() + users)
    for contact, zone in ZONES.items():
        outbox.con.execute("update contacts set timezone = ? where contact_id = ?", [zone, contact])
    return load_workspace(root)


def at(day: int, hour: int, minute: int = 30) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute)


def test_each_contact_gets_its_email_inside_its_own_local_hours(outbox):
    """Intros due at T0 for c1, c3, c4.
    - 15:30Z: c4 (New York 10:30 Mon) sent; c3 (LA 07:30) and c1 (Auckland 04:30 Tue)
      deferred with the window's reason.
    - 17:30Z: LA 09:30 -> c3 sent; Auckland 06:30 -> c1 still deferred.
    - 20:30Z: Auckland 09:30 Tue -> c1 sent. Order in the sink: c4, c3, c1."""
    ws = windowed(outbox)
    keys = {c: add_action(outbox.con, c, "intro", T0) for c in ("c1", "c3", "c4")}
    report = outbox.send(ws, at(2, 15))
    assert statuses(outbox.con) == {keys["c1"]: "deferred", keys["c3"]: "deferred",
                                    keys["c4"]: "sent"}  # fmt: skip
    assert {action_rows(outbox.con)[keys[c]]["error"] for c in ("c1", "c3")} == {WINDOW_NOTE}
    assert report.deferred == 2
    outbox.send(ws, at(2, 17))
    assert statuses(outbox.con)[keys["c3"]] == "sent"
    assert statuses(outbox.con)[keys["c1"]] == "deferred"
    outbox.send(ws, at(2, 20))
    assert set(statuses(outbox.con).values()) == {"sent"}
    assert [m.rcpt_tos[0] for m in outbox.sink.messages] == [
        "di@example.com",
        "cy@example.com",
        "ann@example.com",
    ]


def test_across_the_date_line_the_contacts_weekday_counts_and_waiting_never_expires(outbox):
    """Friday 2026-03-06 14:30Z is Saturday 03:30 in Auckland: c1's intro waits for its
    Monday 09:00 = Sunday 2026-03-08 20:00Z (a Sunday in UTC and New York), 77 h later,
    past stale_after_hours (24): a waiting email does not expire."""
    ws = windowed(outbox)
    friday = at(6, 14)
    key = add_action(outbox.con, "c1", "intro", friday)
    for when in (at(6, 20), at(7, 20), at(8, 19, 55)):  # Sat 09:30, Sun 09:30, Mon 08:55 NZ
        outbox.send(ws, when)
        assert statuses(outbox.con) == {key: "deferred"}, when
    outbox.send(ws, at(8, 20, 5))  # Monday 09:05 in Auckland
    assert statuses(outbox.con) == {key: "sent"}
    assert len(outbox.sink.messages) == 1


def test_on_a_dst_day_the_window_follows_the_local_clock(outbox):
    """Los Angeles moves to UTC-7 on Sunday 2026-03-08. Monday 03-09 16:30Z is 09:30 PDT:
    inside (a fixed UTC-8 would say 08:30, outside). Monday 03-02 16:30Z is 08:30 PST:
    outside."""
    ws = windowed(outbox)
    before = add_action(outbox.con, "c3", "intro", T0)
    outbox.send(ws, at(2, 16))
    assert statuses(outbox.con) == {before: "deferred"}
    outbox.con.execute("delete from actions")
    after = add_action(outbox.con, "c5", "intro", at(9, 14))
    outbox.send(ws, at(9, 16))
    assert statuses(outbox.con) == {after: "sent"}


def test_opened_windows_drain_in_order_against_the_limit_of_the_day_they_go_out(outbox):
    """alice's limit is 1. c4 (New York) is sent at 15:30Z Monday. c3's and c5's intros (LA,
    c5's decided an hour earlier) wait for LA's 09:00; at 17:30Z the window is open but
    alice's Monday is used up: both wait for the limit now (the reason changes, and no slot
    was taken while they waited). Tuesday 17:30Z: the oldest, c5, goes; Wednesday c3."""
    ws = windowed(outbox, alice_limit=1)
    k4 = add_action(outbox.con, "c4", "intro", T0)
    k5 = add_action(outbox.con, "c5", "intro", T0 - HOUR)
    k3 = add_action(outbox.con, "c3", "intro", T0)
    outbox.send(ws, at(2, 15))
    assert statuses(outbox.con) == {k3: "deferred", k4: "sent", k5: "deferred"}
    report = outbox.send(ws, at(2, 17))
    rows = action_rows(outbox.con)
    assert [rows[k]["error"] for k in (k3, k5)] == [LIMIT_NOTE, LIMIT_NOTE]
    assert report.deferred == 0  # already deferred: not deferred again
    outbox.send(ws, at(3, 17))
    assert statuses(outbox.con) == {k3: "deferred", k4: "sent", k5: "sent"}
    outbox.send(ws, at(4, 17))
    assert set(statuses(outbox.con).values()) == {"sent"}


def test_sms_wait_too_tasks_do_not(outbox):
    """At 17:30Z: c1's SMS (Auckland 06:30) is deferred, c3's SMS (Los Angeles 09:30) is
    posted, c1's call reminder becomes a task at once."""
    ws = windowed(outbox)
    sms1 = add_action(outbox.con, "c1", "text", T0, action="sms", day=6)
    sms3 = add_action(outbox.con, "c3", "text", T0, action="sms", day=6)
    call = add_action(outbox.con, "c1", "call", T0, action="call_reminder", day=5)
    outbox.send(ws, at(2, 17))
    assert statuses(outbox.con) == {sms1: "deferred", sms3: "sent", call: "sent"}
    assert len(outbox.gateway.requests) == 1


def test_owner_timezone_and_the_users_yaml_default(outbox):
    """``timezone: owner``: c1 (Auckland) is judged by alice's New York 10:30 -> sent. With
    no window on the sequence, users.yaml's default applies: c1 waits."""
    ws = windowed(outbox, 'send_window: {start: "09:00", end: "17:00", timezone: owner}\n')
    key = add_action(outbox.con, "c1", "intro", T0)
    outbox.send(ws, at(2, 15))
    assert statuses(outbox.con) == {key: "sent"}
    outbox.con.execute("delete from actions")
    ws = windowed(outbox, "", users='send_window: {start: "09:00", end: "17:00"}\n')
    key = add_action(outbox.con, "c1", "intro", T0 + DAY)
    outbox.send(ws, at(3, 15))
    assert statuses(outbox.con) == {key: "deferred"}


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ('send_window: {start: "18:00", end: "08:00"}\n', "must be before end 08:00"),
        ('send_window: {start: "9am"}\n', "start must be HH:MM"),
        ("send_window: {weekdays: [mon, funday]}\n", "weekdays"),
        ("send_window: {timezone: server}\n", "timezone"),
    ],
)
def test_a_bad_window_fails_validate_naming_the_file(outbox, window, message):
    windowed(outbox)  # writes the workspace
    path = outbox.root / "ws" / "sequences" / "outbound.yaml"
    text = path.read_text()
    path.write_text(text.replace(WINDOW, window))
    problems = Project(outbox.root / "ws", db_path=outbox.root / "v.duckdb").validate().problems
    assert len(problems) == 1
    assert "outbound" in str(problems[0]) and message in str(problems[0])
