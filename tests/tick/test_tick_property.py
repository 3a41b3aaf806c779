"""Property (SPEC 6): ticking daily and ticking once after a week decide the same, and a
replayed tick changes nothing — over random small workspaces."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tick_helpers import insert, open_db, tick
from tests.workspace_helpers import write_workspace

START = dt.datetime(2026, 3, 5)  # a Thursday; New York springs forward on 03-08
DAYS = 7
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata"]
NAMES = ["sa", "sb", "sc"]
AUDIENCES = [
    "true",
    "first_name in ('C1', 'C2', 'C3')",
    "last_contacted_mode = 'Not yet contacted'",
    "last_activity_type = 'meeting'",
    "len(sequences) = 0",
    "list_contains(sequences, 'sa')",
    "last_activity_at > now() - interval 2 day",
    "activity_count('meeting', interval 2 day) >= 1",
]
WHENS = [
    None,
    "last_contacted_mode = 'Replied'",
    "enrollment.emails_sent >= 1",
    "enrollment.opened_previous_email",
    "not enrollment.clicked_any_email",
    "last_activity_type = 'chat'",
    "dayofweek(current_date) between 1 and 5",
    "activity_count('email_opened', interval 36 hour) >= 1",
    "last_activity_at('chat') > now() - interval 3 day",
]
EXITS = [
    None,
    "last_activity_type = 'meeting'",
    "list_contains(sequences, 'sb')",
    "activity_count('chat') >= 2",
]
TYPES = [
    "email_opened",
    "email_clicked",
    "email_replied",
    "email_bounced",
    "unsubscribed",
    "meeting",
    "chat",
    "call_outgoing",
]


def _instant(minutes: int) -> dt.datetime:
    return START - dt.timedelta(days=1) + dt.timedelta(minutes=minutes)


contacts_st = st.lists(
    st.tuples(
        st.sampled_from(["a@x.example", "A@X.example", "b@x.example", None, "c@x.example"]),
        st.integers(0, 60 * 24 * 6),  # created_at
        st.booleans(),  # unsubscribed flag
    ),
    min_size=1,
    max_size=6,
)
activities_st = st.lists(
    st.tuples(
        st.integers(0, 5),
        st.sampled_from(TYPES),
        st.integers(0, 60 * 24 * 9),
        st.sampled_from(NAMES + [None]),
        st.sampled_from(["e1", "e2", None]),
    ),
    max_size=12,
)


@st.composite
def sequence_st(draw, name: str, names: list[str]) -> dict:
    smart = draw(st.booleans())
    n_steps = draw(st.integers(1, 3))
    steps, day = [], 1
    for i in range(n_steps):
        email = draw(st.booleans())
        step = {
            "id": f"e{i + 1}" if email else f"t{i + 1}",
            "action": "email" if email else "follow_up",
        }
        if email:
            step |= {"template": "intro.md.j2", "subject": "Hi"}
            if draw(st.booleans()):  # an A/B step (issue 13): actions.variant from the bucket
                step["variants"] = [
                    {"id": "a", "weight": draw(st.integers(1, 3))},
                    {"id": "b", "weight": draw(st.sampled_from([0, 1, 2.5]))},
                ]
        when = draw(st.sampled_from(WHENS))
        if when:
            step["when"] = [when]
        if not smart:
            day += draw(st.integers(0, 2)) if i else 0
            step["day"] = day
        steps.append(step)
    exit_where = draw(st.sampled_from(EXITS))
    seq = {
        "name": name,
        "owner": "alice",
        "type": "smart" if smart else "classic",
        "starts_on": START.date().isoformat(),
        "audience": {
            "where": [draw(st.sampled_from(AUDIENCES))],
            "prevent_duplicate_emails": draw(st.booleans()),
        },
        "schedule": {
            "time": draw(st.sampled_from(["02:30", "09:00", "17:45"])),
            "timezone": draw(st.sampled_from(ZONES)),
            "exclude_weekends": draw(st.booleans()),
        },
        "exclusive_with": [o for o in names if o != name and draw(st.booleans())][:1],
        "steps": steps,
        "exit": {
            "replied": draw(st.booleans()),
            "all_steps_done": draw(st.booleans()),
            "where": [exit_where] if exit_where else [],
        },
    }
    if smart:
        seq |= {"interval_days": draw(st.integers(1, 3)), "duration_days": draw(st.integers(1, 6))}
    return seq


@st.composite
def workspace_st(draw) -> tuple[list[dict], list, list]:
    n = draw(st.integers(1, 3))
    sequences = [draw(sequence_st(name, NAMES[:n])) for name in NAMES[:n]]
    return sequences, draw(contacts_st), draw(activities_st)


def _load(db: Path, sequences, contacts, acts):
    con = open_db(db)
    insert(
        con,
        "contacts",
        [
            {
                "contact_id": f"c{i}",
                "email": email,
                "first_name": f"C{i}",
                "created_at": _instant(created),
                "unsubscribed": unsub,
            }
            for i, (email, created, unsub) in enumerate(contacts)
        ],
    )
    insert(
        con,
        "activities",
        [
            {
                "activity_id": f"a{j}",
                "contact_id": f"c{cid % len(contacts)}",
                "type": type_,
                "occurred_at": _instant(minutes),
                "sequence": seq,
                "step": step,
            }
            for j, (cid, type_, minutes, seq, step) in enumerate(acts)
        ],
    )
    return con


def _decisions(con):
    return {
        "enrollments": con.execute("select * from enrollments order by all").fetchall(),
        "actions": con.execute(
            "select * exclude (decided_at) from actions order by all"
        ).fetchall(),
        "occurrences": con.execute(
            "select * exclude (run_id, processed_at) from occurrences order by all"
        ).fetchall(),
    }


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(workspace_st(), st.integers(0, 23))
def test_daily_ticks_equal_one_catch_up_tick_and_replay_changes_nothing(case, hour):
    sequences, contacts, acts = case
    with tempfile.TemporaryDirectory() as tmp:
        root = write_workspace(
            Path(tmp) / "ws", {s["name"]: yaml.safe_dump(s, sort_keys=False) for s in sequences}
        )
        daily = _load(Path(tmp) / "daily", sequences, contacts, acts)
        once = _load(Path(tmp) / "once", sequences, contacts, acts)
        ticks = [START + dt.timedelta(days=d, hours=hour) for d in range(DAYS + 1)]
        for as_of in ticks:
            tick(daily, root, as_of)
        tick(once, root, ticks[-1])
        expected = _decisions(daily)
        assert _decisions(once) == expected
        tick(daily, root, ticks[-1])
        assert _decisions(daily) == expected
        daily.close()
        once.close()
