"""Derived contact properties (SPEC 5) computed as of any instant."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.db import connect
from pipelines.tick.properties import contact_properties, materialize_contact_state

T = dt.datetime(2026, 3, 2, 12, 0)

ACTIVITIES = [
    # contact c1: sent, then opened, then a meeting (not a contact-mode type)
    ("a1", "c1", "email_sent", T - dt.timedelta(days=3)),
    ("a2", "c1", "email_opened", T - dt.timedelta(days=2)),
    ("a3", "c1", "meeting", T - dt.timedelta(days=1)),
    # c2: a custom sales activity, then a reply in the future (after T)
    ("b1", "c2", "sales_activity:lunch", T - dt.timedelta(hours=5)),
    ("b2", "c2", "email_replied", T + dt.timedelta(hours=1)),
    # c3: two activities at the same instant: the tie breaks by activity_id
    ("c1x", "c3", "call_incoming", T - dt.timedelta(hours=1)),
    ("c2x", "c3", "call_outgoing", T - dt.timedelta(hours=1)),
]


@pytest.fixture
def con(tmp_path):
    con = connect(tmp_path / "p.duckdb")
    con.executemany(
        "insert into contacts (contact_id, email) values (?, ?)",
        [(c, f"{c}@x.example") for c in ("c1", "c2", "c3", "c4")],
    )
    con.executemany(
        "insert into activities (activity_id, contact_id, type, occurred_at) values (?, ?, ?, ?)",
        ACTIVITIES,
    )
    yield con
    con.close()


def props(con, as_of):
    rows = contact_properties(con, as_of).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_last_activity_and_contact_mode(con):
    p = props(con, T)
    assert p["c1"] == (
        "meeting",
        T - dt.timedelta(days=1),
        "Opened but no reply",
        T - dt.timedelta(days=2),
    )
    assert p["c2"][2] == "Sales Activity"
    assert p["c3"][0] == "call_outgoing" and p["c3"][2] == "Outgoing call"


def test_future_activity_is_invisible_until_its_instant(con):
    assert props(con, T)["c2"][2] == "Sales Activity"
    assert props(con, T + dt.timedelta(hours=2))["c2"][2] == "Replied"
    assert "c1" not in props(con, T - dt.timedelta(days=4))


def test_contact_state_defaults_to_not_yet_contacted(con):
    materialize_contact_state(con, T)
    rows = dict(con.execute("select contact_id, last_contacted_mode from contact_state").fetchall())
    assert rows["c4"] == "Not yet contacted"
    assert rows["c1"] == "Opened but no reply"
    assert con.execute(
        "select sequences from contact_state where contact_id = 'c4'"
    ).fetchone() == ([],)
