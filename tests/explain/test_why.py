"""``sequencer why SEQUENCE CONTACT``: the story of each contact of tests/explain/scenario.py,
as text and JSON, against values derived here; read-only; permissions and bad input."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pipelines.channels import message
from pipelines.cli import main
from pipelines.db import connect
from pipelines.project import Project
from tests.explain.scenario import ENV, REPLY_AT, T1, T2, T3, add_reply, build, fingerprint

AS_OF = "2026-03-04T15:00:00Z"  # after T3 (the exit), before the next occurrence
NEXT = "2026-03-05 14:30Z (next)"
OCCURRENCES = ["2026-03-02 14:30Z", "2026-03-03 14:30Z", "2026-03-04 14:30Z", NEXT]
NOTE = (
    "note: conditions re-evaluated now over the recorded history (activities at or before "
    "each occurrence, contact and account properties and the sequence file as they are now)"
)
KEPT_OUT = {
    "c_stage": "not in the audience (false: where: lifecycle_stage = 'lead')",
    "c_score": "not in the audience (false: where: lead_score >= 50)",
    "c_excl": "kept out: exclusive_with, active in nurture",
    "c_noemail": "kept out: no email (the sequence has email steps)",
    "c_unsub": "kept out: unsubscribed (this address)",
    "c_zdup": "kept out: duplicate email (prevent_duplicate_emails), enrolled already: c_enter",
}


@pytest.fixture(scope="module")
def story_ws(tmp_path_factory):
    """The scenario run through T1..T3 with real sends to the SMTP sink; the task done."""
    from pipelines.demo.smtp_sink import SmtpSink

    with SmtpSink() as sink:
        root, db = build(tmp_path_factory.mktemp("why"), sink.port)
        p = Project(root)
        for at in (T1, T2):
            p.run(at, allow_future=True)
            p.send(at, env=ENV)
        add_reply(db)
        p.run(T3, allow_future=True)
        p.send(T3, env=ENV)
        [task_key] = [k for (k,) in _rows(db, "select task_id from tasks")]
        p.complete_task(task_key, T2 + dt.timedelta(hours=2))
        received = list(sink.messages)
    return root, db, received


def _rows(db, sql):
    con = connect(db, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _why(capsys, root, *args) -> tuple[int, str, str]:
    code = main(["why", "outbound", *args, "--project", str(root), "--as-of", AS_OF])
    out, err = capsys.readouterr()
    return code, out, err


def _actions(db) -> dict[str, dict]:
    con = connect(db, read_only=True)
    try:
        cur = con.execute("select * from actions where contact_id = 'c_enter'")
        names = [d[0] for d in cur.description]
        return {r[names.index("step")]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
    finally:
        con.close()


def _z(t: dt.datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M}Z"


def test_the_contact_that_entered_its_steps_sends_task_and_exit(story_ws, capsys):
    root, db, received = story_ws
    actions = _actions(db)
    intro, bump, call = actions["intro"], actions["bump"], actions["call"]
    [sent] = [m.message for m in received if m.message["To"].addresses[0].username == "enter"]
    assert (
        intro["message_id"]
        == sent["Message-ID"]
        == message.message_id(intro["idempotency_key"], "acme.example")
    )
    code, out, err = _why(capsys, root, "c_enter")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"why c_enter in outbound (as of {AS_OF[:10]} 15:00Z)",
        NOTE,
        "before it entered: 0 occurrence(s)",
        f"entered 2026-03-02 at {_z(T1)} (audience)",
        "  day 1 2026-03-02 intro (email): due; when last_contacted_mode = 'Not yet contacted'"
        " = true",
        f"    sent at {_z(intro['finished_at'])}, message-id {sent['Message-ID']}",
        "  day 2 2026-03-03 bump (email): skipped; when enrollment.opened_previous_email = false",
        "  day 2 2026-03-03 call (call_reminder): due",
        f"    task {call['idempotency_key'][:8]} for alice, due 2026-03-03: done at"
        f" {_z(T2 + dt.timedelta(hours=2))}",
        f"exited 2026-03-04 at {_z(T3)}: replied (email_replied at {_z(REPLY_AT)})",
    ]
    code, out, _ = _why(capsys, root, "c_enter", "--json")
    story = json.loads(out)

    def iso(t):
        return t.isoformat() + "Z" if t else None

    def step(row, when, task=None):
        return {
            "step": row["step"], "day": row["day"], "action": row["action"],
            "occurrence_on": row["occurrence_on"].isoformat(),
            "occurrence_at": iso(row["occurrence_at"]), "decided": row["decided_status"],
            "status": row["status"], "when": when, "differs": False,
            "idempotency_key": row["idempotency_key"], "message_id": row["message_id"],
            "error": row["error"], "attempts": row["attempts"],
            "claimed_at": iso(row["claimed_at"]), "finished_at": iso(row["finished_at"]),
            "task": task,
        }  # fmt: skip

    [(task_created,)] = _rows(db, "select created_at from tasks")
    assert story == {
        "sequence": "outbound",
        "contact_id": "c_enter",
        "as_of": "2026-03-04T15:00:00Z",
        "created_at": "2026-01-01T00:00:00Z",
        "eligible": [],
        "earlier_not_shown": 0,
        "manual_requests": [],
        "entered": {
            "enrolled_on": "2026-03-02",
            "enrolled_at": iso(T1),
            "manual": False,
            "enrollment_id": intro["enrollment_id"],
            "how": "audience",
            "holdout": False,
        },
        "steps": [
            step(intro, {"last_contacted_mode = 'Not yet contacted'": True}),
            step(bump, {"enrollment.opened_previous_email": False}),
            step(
                call,
                {},
                {
                    "task_id": call["idempotency_key"],
                    "owner_id": "alice",
                    "due_on": "2026-03-03",
                    "done": True,
                    "done_at": iso(T2 + dt.timedelta(hours=2)),
                    "snoozed_until": None,
                    "created_at": iso(task_created),
                },  # fmt: skip
            ),
        ],
        "pauses": [],
        "exit": {
            "exit_reason": "replied",
            "exited_on": "2026-03-04",
            "exited_at": iso(T3),
            "activity": {
                "activity_id": story["exit"]["activity"]["activity_id"],
                "type": "email_replied",
                "occurred_at": iso(REPLY_AT),
                "message_id": None,
            },
        },
        "note": NOTE.removeprefix("note: "),
    }
    assert intro["status"] == "sent" and bump["status"] == "skipped"


@pytest.mark.parametrize("contact_id", sorted(KEPT_OUT))
def test_each_contact_kept_out_names_the_condition_or_rule(story_ws, capsys, contact_id):
    root, db, _ = story_ws
    code, out, _ = _why(capsys, root, contact_id)
    assert code == 0
    assert out.splitlines() == [
        f"why {contact_id} in outbound (as of 2026-03-04 15:00Z)",
        NOTE,
        "it has not entered: 4 occurrence(s)",
        *(f"  {on}  {KEPT_OUT[contact_id]}" for on in OCCURRENCES),
    ]


def test_json_of_a_contact_kept_out_by_a_condition(story_ws, capsys):
    root, _, _ = story_ws
    code, out, _ = _why(capsys, root, "c_score", "--json")
    story = json.loads(out)
    expected_conditions = {
        "where: lifecycle_stage = 'lead'": True,
        "where: lead_score >= 50": False,
    }
    assert [
        (e["occurrence_on"], e["processed"], e["outcome"], e["conditions"], e["detail"])
        for e in story["eligible"]
    ] == [
        (on, on != "2026-03-05", "audience", expected_conditions, "where: lead_score >= 50")
        for on in ("2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05")
    ]
    assert (story["entered"], story["steps"], story["exit"]) == (None, [], None)


def test_why_writes_nothing(story_ws, capsys):
    root, db, _ = story_ws
    before = fingerprint(db)
    for contact_id in ["c_enter", *KEPT_OUT]:
        assert _why(capsys, root, contact_id)[0] == 0
        assert _why(capsys, root, contact_id, "--json")[0] == 0
    assert fingerprint(db) == before


def test_before_it_entered_as_of_an_earlier_instant(story_ws, capsys):
    """As of a day before T1 nothing was processed yet: only the next pending occurrence,
    where c_enter enters."""
    root, _, _ = story_ws
    code = main(["why", "outbound", "c_enter", "--project", str(root), "--as-of", "2026-03-02"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out[2:] == [
        "it has not entered: 1 occurrence(s)",
        "  2026-03-02 14:30Z (next)  enters",
    ]


def test_permissions_and_unknowns(story_ws, capsys):
    root, _, _ = story_ws
    code, _, err = _why(capsys, root, "c_enter", "--user", "bruno")
    assert code == 4 and "belongs to 'alice'" in err
    assert _why(capsys, root, "c_enter", "--user", "alice")[0] == 0
    code, _, err = _why(capsys, root, "c_ghost")
    assert (code, err) == (1, "error: no contact 'c_ghost'\n")
    code = main(["why", "ghost", "c_enter", "--project", str(root)])
    assert (code, capsys.readouterr().err) == (1, "error: no sequence named 'ghost'\n")
