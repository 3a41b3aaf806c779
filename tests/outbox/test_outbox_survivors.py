# ruff: noqa: F811  (`outbox`, the imported fixture, is every test's argument)
"""Outbox rules pinned by the mutation run (issue 14): each test kills a mutant of
``sql/send_batch.sql`` or ``pipelines/deliver.py`` (now ``pipelines/outbox/``) that survived the
older tests, on given rows against real parts (a DuckDB file, the SMTP sink, the HTTP SMS
gateway).

Times as in ``test_outbox_rules.py``: T0 = 2026-03-02 14:30Z is Monday 09:30 for alice
(America/New_York); the send runs at AS_OF = 10:30 New York, so alice's local day is
[2026-03-02 05:00Z, 2026-03-03 05:00Z). bob (Europe/Berlin) has the local day
[2026-03-01 23:00Z, 2026-03-02 23:00Z).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from types import SimpleNamespace

from pipelines.outbox import transitions
from pipelines.outbox.send import default_backoff, send_due
from pipelines.outbox.tasks import list_tasks
from pipelines.workspace import Workspace, load_workspace
from tests.delivery_fixtures import ENV, action_rows, add_action, statuses
from tests.outbox.test_outbox_rules import (  # noqa: F401  (`outbox` is the fixture)
    AS_OF,
    DAY,
    HOUR,
    LIMIT_NOTE,
    MINUTE,
    T0,
    Outbox,
    msg_id,
    outbox,
)

ALICE_DAY_START = dt.datetime(2026, 3, 2, 5, 0)  # 00:00 New York, Monday
ALICE_DAY_END = dt.datetime(2026, 3, 3, 5, 0)  # 00:00 New York, Tuesday

OTHER = """\
name: other
owner: bob
steps:
  - {id: intro, day: 1, action: email, template: bump.md.j2, subject: "From Bob"}
"""

TASKS = """\
name: tasks
owner: alice
steps:
  - id: who
    day: 1
    action: call_reminder
    note: "{{ owner.id }}: {{ step.action }} on day {{ step.day }}"
  - {id: draft, day: 1, action: email_reminder, subject: "Hello"}
"""


def workspace_with(outbox: Outbox, extra: dict[str, str], **kw) -> Workspace:
    """``outbound`` plus the given extra sequence files."""
    outbox.workspace(**kw)  # writes the files
    for name, text in extra.items():
        (outbox.root / "ws" / "sequences" / f"{name}.yaml").write_text(text)
    return load_workspace(outbox.root / "ws")


def mark_sent(outbox: Outbox, key: str, at: dt.datetime, sender: str = "alice") -> None:
    outbox.set_row(key, status="sent", claimed_at=at, finished_at=at, sender_id=sender)


# --- the daily limit (sql/send_batch.sql) ---------------------------------------------------


def test_emails_decided_at_the_same_instant_defer_in_idempotency_key_order(outbox):
    """alice's limit is 1. Rows: c3 intro and c1 intro, both due, both decided by the same
    occurrence (09:30) — the usual case: the tick decides a whole occurrence at one instant.
    c3 is inserted first, so storage order does not decide.

    The tie on (status, occurrence) breaks by idempotency key, ascending:
    ``outbound|c1|intro|e-c1`` < ``outbound|c3|intro|e-c3``, so c1 takes the slot and is sent,
    c3 is deferred. (Descending, c3 would go and c1 wait.)
    """
    con, ws = outbox.con, outbox.workspace(alice_limit=1)
    k3 = add_action(con, "c3", "intro", T0)
    k1 = add_action(con, "c1", "intro", T0)

    report = outbox.send(ws)

    assert [statuses(con)[k] for k in (k1, k3)] == ["sent", "deferred"]
    assert outbox.sink.message_ids() == [msg_id(k1)]
    assert report.deferred == 1


def test_the_used_count_takes_the_local_day_half_open_midnight_to_midnight(outbox):
    """alice's limit is 2. Rows:

    =======  ======  =============================  ======================================
    contact  status  finished                       counts for alice's day of AS_OF?
    =======  ======  =============================  ======================================
    c5       sent    2026-03-02 05:00Z (00:00 NY)   yes: the first instant of that day
    c6       sent    2026-03-03 05:00Z (00:00 NY)   no: the first instant of the next day
    c1       due     occurrence 09:30               rank 1
    c3       due     occurrence 09:31               rank 2
    =======  ======  =============================  ======================================

    (c6 finished after AS_OF: a send replayed with an earlier ``as_of``.) Used = 1, so one
    slot: c1 sent, c3 deferred. With ``> day_start`` used would be 0 and both sent; with
    ``<= day_end``, or no upper bound, used would be 2 and both deferred.
    """
    con, ws = outbox.con, outbox.workspace(alice_limit=2)
    k5 = add_action(con, "c5", "intro", T0 - DAY)
    k6 = add_action(con, "c6", "intro", T0 - DAY)
    mark_sent(outbox, k5, ALICE_DAY_START)
    mark_sent(outbox, k6, ALICE_DAY_END)
    k1 = add_action(con, "c1", "intro", T0)
    k3 = add_action(con, "c3", "intro", T0 + MINUTE)

    report = outbox.send(ws)

    assert [statuses(con)[k] for k in (k1, k3)] == ["sent", "deferred"]
    assert action_rows(con)[k3]["error"] == LIMIT_NOTE
    assert outbox.sink.message_ids() == [msg_id(k1)]
    assert (report.sent, report.deferred) == (1, 1)


def test_a_failed_email_of_today_does_not_use_a_slot(outbox):
    """alice's limit is 2. Rows: c5 intro ``failed`` — claimed by alice's mailbox at 09:35
    today, finished (given up) at 09:36; c1 intro due 09:30, c3 intro due 09:31.

    A failed email never left: used = 0, two slots, c1 and c3 both sent. (Counting every
    status, used would be 1 and c3 deferred.)
    """
    con, ws = outbox.con, outbox.workspace(alice_limit=2)
    k5 = add_action(con, "c5", "intro", T0 - DAY)
    outbox.set_row(
        k5,
        status="failed",
        sender_id="alice",
        claimed_at=T0 + 5 * MINUTE,
        finished_at=T0 + 6 * MINUTE,
        attempts=4,
        error="SMTP 451",
    )
    k1 = add_action(con, "c1", "intro", T0)
    k3 = add_action(con, "c3", "intro", T0 + MINUTE)

    report = outbox.send(ws)

    assert [statuses(con)[k] for k in (k1, k3, k5)] == ["sent", "sent", "failed"]
    assert outbox.sink.message_ids() == [msg_id(k1), msg_id(k3)]
    assert (report.sent, report.deferred) == (2, 0)


def test_a_step_id_shared_by_two_sequences_ranks_with_its_own_sequences_sender(outbox):
    """Sequences ``outbound`` (owner alice) and ``other`` (owner bob) both have a step
    ``intro``. alice's and bob's limits are 1. Rows: other|c3|intro due 09:30 (bob's
    mailbox), outbound|c1|intro due 09:31 (alice's mailbox).

    Each sender has one email: both sent, c3 from bob, c1 from alice. (Matching the step by
    id alone, each email would rank under both senders: c3 first under each, c1 second
    under each, so c1 would be deferred.)
    """
    con = outbox.con
    ws = workspace_with(outbox, {"other": OTHER}, alice_limit=1, bob_limit=1)
    k3 = add_action(con, "c3", "intro", T0, sequence="other")
    k1 = add_action(con, "c1", "intro", T0 + MINUTE)

    report = outbox.send(ws)

    assert [statuses(con)[k] for k in (k3, k1)] == ["sent", "sent"]
    assert [m.mail_from for m in outbox.sink.messages] == ["bob@acme.example", "alice@acme.example"]
    assert (report.sent, report.deferred) == (2, 0)


def test_tasks_and_sms_are_never_deferred_whatever_the_limit(outbox):
    """alice's limit is 1. Rows, all due, all alice's: c1 call (task) 08:30, c3 call (task)
    08:31, c1 text (SMS) 08:32, c4 intro (email) 09:30.

    The limit is on emails: the two tasks and the SMS are sent, and the email is alone in
    its rank, 1 ≤ 1, so sent too. (Were the limit applied to the other actions' own ranking,
    the second task and the SMS — ranks 2 and 3 — would be deferred.)
    """
    con, ws = outbox.con, outbox.workspace(alice_limit=1)
    calls = [
        add_action(con, c, "call", T0 - HOUR + i * MINUTE, action="call_reminder", day=5)
        for i, c in enumerate(("c1", "c3"))
    ]
    sms = add_action(con, "c1", "text", T0 - HOUR + 2 * MINUTE, action="sms", day=6)
    email = add_action(con, "c4", "intro", T0)

    report = outbox.send(ws)

    assert [statuses(con)[k] for k in (*calls, sms, email)] == ["sent"] * 4
    assert (report.tasks, report.sent, report.deferred) == (2, 2, 0)
    assert [t["task_id"] for t in list_tasks(con, "alice")] == calls


# --- retries (pipelines/outbox/transitions.py) ---------------------------------------------


def test_default_retries_are_three_after_the_first_attempt_waiting_2_8_32_seconds(
    outbox, monkeypatch
):
    """Row: c1 text (SMS) due. The gateway answers 503 (transient) to every POST. The send
    runs with the defaults of ``send_due`` (no ``max_retries``, no ``backoff``).

    Expected (SPEC 6: ``failed`` after retries): 1 attempt + 3 retries = 4 POSTs, attempts 4,
    ``failed`` with "SMS gateway HTTP 503"; the waits between them are 2 s, 8 s, 32 s
    (2·4^(n-1), capped at 300 s: the 5th and later wait 5 minutes).
    """
    waits: list[float] = []
    monkeypatch.setattr(
        transitions, "time", SimpleNamespace(monotonic=time.monotonic, sleep=waits.append)
    )
    con, ws = outbox.con, outbox.workspace()
    outbox.gateway.replies = [503] * 10
    key = add_action(con, "c1", "text", T0, action="sms", day=6)

    report = send_due(con, ws, AS_OF, env=ENV)

    row = action_rows(con)[key]
    assert (row["status"], row["attempts"], row["error"]) == ("failed", 4, "SMS gateway HTTP 503")
    assert len(outbox.gateway.requests) == 4
    assert waits == [2.0, 8.0, 32.0]
    assert [default_backoff(n) for n in range(1, 7)] == [2.0, 8.0, 32.0, 128.0, 300.0, 300.0]
    assert report.failed == 1


# --- what the receivers get -------------------------------------------------------------------


def test_a_deferred_email_and_its_reply_step_thread_within_one_send(outbox):
    """Rows: c1 intro ``deferred`` (decided two days ago, 2026-02-28 14:30Z, held back by the
    limit), c1 bump (``thread: reply``) due 09:30 today. Deferred go first, so intro is sent
    first in this same send; bump must reply to it although intro was not sent when the
    send began.

    Expected: bump's Subject "Re: Quick question, Ann" (intro's subject), In-Reply-To and
    References = intro's Message-ID; the ``email_sent`` activities carry each subject in
    their detail: ``{"subject": "Quick question, Ann"}`` and
    ``{"subject": "Re: Quick question, Ann"}``.
    """
    con, ws = outbox.con, outbox.workspace()
    intro = add_action(con, "c1", "intro", T0 - 2 * DAY, status="deferred")
    bump = add_action(con, "c1", "bump", T0, day=3)

    report = outbox.send(ws)

    first, second = (m.message for m in outbox.sink.messages)
    assert (first["Message-ID"], second["Message-ID"]) == (msg_id(intro), msg_id(bump))
    assert second["Subject"] == "Re: Quick question, Ann"
    assert second["In-Reply-To"] == second["References"] == msg_id(intro)
    details = con.execute(
        "select message_id, detail from activities where type = 'email_sent' order by 1"
    ).fetchall()
    assert sorted((m, json.loads(d)) for m, d in details) == sorted(
        [
            (msg_id(intro), {"subject": "Quick question, Ann"}),
            (msg_id(bump), {"subject": "Re: Quick question, Ann"}),
        ]
    )
    assert report.sent == 2


def test_the_sms_gateway_receives_json(outbox):
    """Row: c1 text (SMS) due. The gateway receives one POST with ``Content-Type:
    application/json`` (without it urllib would announce a form body), the bearer token, and
    the JSON payload."""
    con, ws = outbox.con, outbox.workspace()
    key = add_action(con, "c1", "text", T0, action="sms", day=6)

    outbox.send(ws)

    [req] = outbox.gateway.requests
    assert req["content_type"] == "application/json"
    assert req["auth"] == "Bearer sms-token"
    assert req["json"] == {"to": "+15550001", "body": "Hi Ann, Alice Smith", "idempotency_key": key}


def test_an_sms_to_a_contact_without_phone_is_held_and_the_operator_is_told(outbox, caplog):
    """Row: c2 text (SMS) due; c2 has no phone. Expected: ``held`` with the error "contact has
    no phone (custom column `phone`)", nothing posted, the report's problem, and one debug
    line in the log naming the key, the status and that error (per action at debug level
    only: the CLI prints the reasons grouped with counts, issue 9)."""
    con, ws = outbox.con, outbox.workspace()
    key = add_action(con, "c2", "text", T0, action="sms", day=6)
    error = "contact has no phone (custom column `phone`)"

    with caplog.at_level(logging.DEBUG, logger="pipelines.outbox.transitions"):
        report = outbox.send(ws)

    row = action_rows(con)[key]
    assert (row["status"], row["error"]) == ("held", error)
    assert outbox.gateway.requests == []
    logged = [r.getMessage() for r in caplog.records if r.name == "pipelines.outbox.transitions"]
    assert logged == [f"action {key} held: {error}"]
    assert report.problems == [(key, "held", error)]


def test_task_titles_and_bodies(outbox):
    """Sequence ``tasks`` (owner alice): step ``who`` is a call reminder whose note reads
    ``{{ owner.id }}: {{ step.action }} on day {{ step.day }}``; step ``draft`` is an email
    reminder with subject "Hello" and neither template nor body. Contact c9 has no name and
    no email. Rows, all due today:

    =======  =====  =============  =============================================
    contact  step   title          body
    =======  =====  =============  =============================================
    c9       who    Call c9        alice: call_reminder on day 1
    c1       draft  Email Ann Lee:  ``To: ann@example.com`` / ``Subject: Hello`` /
                    Hello          blank line / an empty draft
    c9       draft  Email c9:      ``To: `` (no address) / ``Subject: Hello`` / …
                    Hello
    =======  =====  =============  =============================================

    The title falls back from the name to the email to the contact id.
    """
    con = outbox.con
    ws = workspace_with(outbox, {"tasks": TASKS})
    con.execute("insert into contacts (contact_id, owner_id) values ('c9', 'alice')")
    who = add_action(con, "c9", "who", T0, action="call_reminder", sequence="tasks")
    draft = add_action(con, "c1", "draft", T0, action="email_reminder", sequence="tasks")
    bare = add_action(con, "c9", "draft", T0, action="email_reminder", sequence="tasks")

    report = outbox.send(ws)

    tasks = {t["task_id"]: (t["title"], t["body"]) for t in list_tasks(con, "alice")}
    assert tasks == {
        who: ("Call c9", "alice: call_reminder on day 1"),
        draft: ("Email Ann Lee: Hello", "To: ann@example.com\nSubject: Hello\n\n"),
        bare: ("Email c9: Hello", "To: \nSubject: Hello\n\n"),
    }
    assert report.tasks == 3 and report.problems == []
