"""The send step against a real SMTP server on 127.0.0.1 (pipelines/demo/smtp_sink.py)."""

from __future__ import annotations

import datetime as dt
import html
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.channels import message, tracking
from pipelines.cli import main
from pipelines.db import connect
from pipelines.demo.smtp_sink import SmtpSink
from pipelines.outbox.send import list_unknown, resolve_unknown, send_due
from pipelines.outbox.tasks import complete_task, list_tasks
from pipelines.workspace import load_workspace
from tests.delivery_fixtures import (
    ENV,
    SECRET,
    action_rows,
    add_action,
    key_of,
    seed_contacts,
    write_workspace,
)
from tests.delivery_fixtures import statuses as statuses_of

T0 = dt.datetime(2026, 3, 2, 14, 30)  # Monday 09:30 in New York
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def no_wait(attempt: int) -> float:
    return 0.0


@pytest.fixture
def env(tmp_path, smtp_sink):
    con = connect(tmp_path / "db.duckdb")
    seed_contacts(con)
    ws = load_workspace(write_workspace(tmp_path / "ws", smtp_sink.port))
    yield con, ws, smtp_sink
    con.close()


def send(con, ws, as_of, **kw):
    return send_due(con, ws, as_of, env=ENV, backoff=no_wait, **kw)


def by_to(sink):
    return {m.message["To"].addresses[0].addr_spec: m for m in sink.messages}


def test_email_headers_body_tracking_and_activity(env):
    con, ws, sink = env
    key = add_action(con, "c1", "intro", T0)
    report = send(con, ws, T0 + HOUR)
    assert report.sent == 1 and not report.problems
    [received] = sink.messages
    msg = received.message
    assert msg["Message-ID"] == message.message_id(key, "acme.example")
    assert msg["From"] == "Alice Smith <alice@acme.example>"
    assert msg["To"] == "Ann Lee <ann@example.com>"
    assert msg["Cc"] == "manager@acme.example"
    assert msg["Reply-To"] == "Bob Jones <bob@acme.example>"
    assert msg["Bcc"] is None and "bob@acme.example" in received.rcpt_tos
    assert received.rcpt_tos[0] == "ann@example.com" and received.mail_from == "alice@acme.example"
    assert msg["Subject"] == "Quick question, Ann"
    assert msg["In-Reply-To"] is None
    # RFC 8058 one-click unsubscribe, with a signed https URL, also in the body
    unsub = msg["List-Unsubscribe"]
    assert unsub.startswith("<https://t.acme.example/u/") and unsub.endswith(">")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = unsub[1:-1].rsplit("/", 1)[1]
    payload = tracking.verify_token([SECRET.encode()], token, "u")
    assert payload["c"] == "c1" and payload["m"] == msg["Message-ID"]
    assert (payload["s"], payload["t"]) == ("outbound", "intro")
    with pytest.raises(ValueError):
        tracking.verify_token([b"other-secret"], token, "u")
    with pytest.raises(ValueError):  # an unsubscribe token is no pixel, and vice versa
        tracking.verify_token([SECRET.encode()], token, "o")
    text = msg.get_body(("plain",)).get_content()
    markup = msg.get_body(("html",)).get_content()
    assert "Hi Ann," in text and "our deck (https://acme.example/deck?a=1&b=2)" in text
    assert unsub[1:-1] in text and "Acme Corp" in text
    # click tracking: the deck link points at the signed redirect; unsubscribe stays direct
    assert "https://acme.example/deck" not in markup
    click = markup.split('href="https://t.acme.example/c/')[1].split('"')[0]
    clicked = tracking.verify_token([SECRET.encode()], html.unescape(click), "c")
    assert clicked["u"] == "https://acme.example/deck?a=1&b=2" and clicked["t"] == "intro"
    assert f'href="{unsub[1:-1]}"' in markup
    assert '<img src="https://t.acme.example/o/' in markup  # open pixel
    row = action_rows(con)[key]
    assert row["status"] == "sent" and row["message_id"] == msg["Message-ID"]
    assert row["sender_id"] == "alice" and row["attempts"] == 1
    act = con.execute(
        "select activity_id, contact_id, type, occurred_at, sequence, step, message_id"
        " from activities"
    ).fetchall()
    assert len(act) == 1
    assert act[0][1:3] == ("c1", "email_sent") and act[0][4:] == (
        "outbound",
        "intro",
        row["message_id"],
    )
    assert T0 + HOUR <= act[0][3] < T0 + HOUR + dt.timedelta(minutes=1)


def test_thread_reply_across_two_steps(env):
    con, ws, sink = env
    add_action(con, "c1", "intro", T0)
    send(con, ws, T0 + HOUR)
    add_action(con, "c1", "bump", T0 + 2 * DAY, day=3)
    send(con, ws, T0 + 2 * DAY + HOUR)
    first, second = (m.message for m in sink.messages)
    assert second["Subject"] == "Re: Quick question, Ann"
    assert second["In-Reply-To"] == first["Message-ID"]
    assert second["References"] == first["Message-ID"]
    assert first["Message-ID"] != second["Message-ID"]


def test_reply_without_a_sent_predecessor_starts_a_new_thread(env):
    con, ws, sink = env
    add_action(con, "c1", "bump", T0, day=3)
    send(con, ws, T0 + HOUR)
    [msg] = (m.message for m in sink.messages)
    assert msg["In-Reply-To"] is None and msg["Subject"] == "unused"


def test_script_in_first_name_is_escaped_in_html(env):
    con, ws, sink = env
    add_action(con, "c2", "intro", T0)
    add_action(con, "c2", "html", T0, day=8)
    send(con, ws, T0 + HOUR)
    assert len(sink.messages) == 2
    for received in sink.messages:
        markup = received.message.get_body(("html",)).get_content()
        assert "<script>" not in markup
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup


def test_header_injection_through_data_is_held(env):
    con, ws, sink = env
    con.execute(
        "update contacts set last_name = 'Lee\r\nBcc: evil@x.example' where contact_id='c1'"
    )
    key = add_action(con, "c1", "intro", T0)
    send(con, ws, T0 + HOUR)
    row = action_rows(con)[key]
    assert row["status"] == "held" and "linefeed" in row["error"] and not sink.messages


def test_missing_field_is_held_and_rest_is_sent(env):
    con, ws, sink = env
    held = add_action(con, "c1", "broken", T0, day=7)
    ok = add_action(con, "c3", "intro", T0)
    report = send(con, ws, T0 + HOUR)
    rows = action_rows(con)
    assert rows[held]["status"] == "held" and "nickname" in rows[held]["error"]
    assert rows[held]["claimed_at"] is None  # never claimed: nothing could have gone out
    assert rows[ok]["status"] == "sent"
    assert report.held == 1 and report.sent == 1 and len(sink.messages) == 1


def test_send_twice_sends_nothing_twice(env):
    con, ws, sink = env
    for c in ("c1", "c3", "c4"):
        add_action(con, c, "intro", T0)
    first = send(con, ws, T0 + HOUR)
    second = send(con, ws, T0 + HOUR)
    again = send(con, ws, T0 + 2 * HOUR)
    assert first.sent == 3 and second.sent == 0 and again.sent == 0
    ids = sink.message_ids()
    assert len(ids) == 3 and len(set(ids)) == 3
    assert con.execute("select count(*) from activities").fetchone()[0] == 3


def test_permanent_rejection_fails_only_that_action(env):
    con, ws, sink = env
    sink.reject["bo@example.com"] = "550 5.1.1 <bo@example.com>: no such user"
    keys = {c: add_action(con, c, "intro", T0) for c in ("c1", "c2", "c3")}
    report = send(con, ws, T0 + HOUR, max_retries=3)
    rows = action_rows(con)
    assert rows[keys["c2"]]["status"] == "failed" and "550" in rows[keys["c2"]]["error"]
    assert rows[keys["c2"]]["attempts"] == 1  # permanent: no retry
    assert rows[keys["c1"]]["status"] == rows[keys["c3"]]["status"] == "sent"
    assert set(by_to(sink)) == {"ann@example.com", "cy@example.com"}
    assert report.failed == 1 and report.sent == 2


def test_transient_failures_retry_then_send(env):
    con, ws, sink = env
    sink.tempfail = 2
    key = add_action(con, "c1", "intro", T0)
    send(con, ws, T0 + HOUR, max_retries=3)
    row = action_rows(con)[key]
    assert row["status"] == "sent" and row["attempts"] == 3
    assert len(sink.messages) == 1


def test_transient_failures_exhaust_retries_then_fail(env):
    con, ws, sink = env
    sink.tempfail = 10
    waits = []
    key = add_action(con, "c1", "intro", T0)
    send_due(con, ws, T0 + HOUR, env=ENV, max_retries=2, backoff=lambda n: waits.append(n) or 0)
    row = action_rows(con)[key]
    assert row["status"] == "failed" and "451" in row["error"] and row["attempts"] == 3
    assert waits == [1, 2] and not sink.messages


def test_connection_refused_is_transient_then_failed(env, tmp_path):
    from pipelines.demo.smtp_sink import free_port

    con, _, _ = env
    ws = load_workspace(write_workspace(tmp_path / "ws2", free_port()))
    key = add_action(con, "c1", "intro", T0)
    send(con, ws, T0 + HOUR, max_retries=1)
    row = action_rows(con)[key]
    assert row["status"] == "failed" and "connect" in row["error"] and row["attempts"] == 2


def test_lost_connection_during_data_is_unknown_and_never_resent(env):
    con, ws, sink = env
    sink.drop = 1
    key = add_action(con, "c1", "intro", T0)
    report = send(con, ws, T0 + HOUR)
    assert report.unknown == 1 and statuses_of(con)[key] == "unknown"
    send(con, ws, T0 + 2 * HOUR)
    assert len(sink.messages) == 1  # delivered once, by the first send
    [pending] = list_unknown(con)
    assert pending["idempotency_key"] == key
    assert pending["message_id"] == sink.messages[0].message["Message-ID"]
    resolve_unknown(con, key, "sent")
    row = action_rows(con)[key]
    assert row["status"] == "sent" and row["finished_at"] == row["claimed_at"]
    assert con.execute("select count(*) from activities where type='email_sent'").fetchone()[0] == 1
    assert list_unknown(con) == []


def test_resolve_unknown_retry_sends_once_more(env):
    con, ws, sink = env
    key = add_action(con, "c1", "intro", T0, status="unknown")
    send(con, ws, T0 + HOUR)
    assert not sink.messages
    resolve_unknown(con, key, "retry")
    send(con, ws, T0 + 2 * HOUR)
    assert len(sink.messages) == 1 and statuses_of(con)[key] == "sent"
    with pytest.raises(Exception, match="unknown"):
        resolve_unknown(con, key, "retry")


def test_daily_limit_defers_and_deferred_go_first_next_local_day(tmp_path):
    with SmtpSink() as sink:
        con = connect(tmp_path / "db.duckdb")
        seed_contacts(con)
        ws = load_workspace(write_workspace(tmp_path / "ws", sink.port, alice_limit=2))
        # day 1: three due emails, limit 2 → the newest one is deferred
        k1 = add_action(con, "c1", "intro", T0)
        k3 = add_action(con, "c3", "intro", T0 + dt.timedelta(minutes=1))
        k4 = add_action(con, "c4", "intro", T0 + dt.timedelta(minutes=2))
        report = send(con, ws, T0 + HOUR)
        assert report.sent == 2 and report.deferred == 1
        assert statuses_of(con)[k4] == "deferred"
        assert [m.message["Message-ID"] for m in sink.messages] == [
            message.message_id(k, "acme.example") for k in (k1, k3)
        ]
        # later the same local day (23:30 New York = 04:30Z next UTC day): still limited
        late = dt.datetime(2026, 3, 3, 4, 30)
        assert send(con, ws, late).sent == 0 and statuses_of(con)[k4] == "deferred"
        # next local day: two new due emails; the deferred one goes first, then the oldest due
        k5 = add_action(con, "c5", "intro", T0 + DAY + dt.timedelta(minutes=5), day=1)
        k6 = add_action(con, "c6", "intro", T0 + DAY, day=1)
        report = send(con, ws, T0 + DAY + HOUR)
        assert report.sent == 2 and report.deferred == 1
        sent_now = [m.message["Message-ID"] for m in sink.messages[2:]]
        assert sent_now == [message.message_id(k, "acme.example") for k in (k4, k6)]
        st = statuses_of(con)
        assert st[k4] == st[k6] == "sent" and st[k5] == "deferred"
        # deferred work does not expire: two days later it still goes out first
        report = send(con, ws, T0 + 3 * DAY + HOUR)
        assert statuses_of(con)[k5] == "sent" and report.expired == 0
        assert len(set(sink.message_ids())) == len(sink.messages) == 5
        con.close()


def test_limit_is_per_sending_user(tmp_path, smtp_sink):
    """Alice may send 1 email a day, Bob 2. Five due emails of Alice's sequence, one minute
    apart: `intro` goes from Alice's mailbox, `html` (from: bob) from Bob's.

        c1 intro alice  rank 1 of alice -> sent
        c3 html  bob    rank 1 of bob   -> sent
        c4 intro alice  rank 2 of alice -> deferred (over Alice's 1)
        c5 html  bob    rank 2 of bob   -> sent
        c6 html  bob    rank 3 of bob   -> deferred (over Bob's 2)

    One limit for the sequence's owner would send only c1; one ranking across senders would
    defer c5. A second send the same day sends nothing more: both have used their limit."""
    con = connect(tmp_path / "db.duckdb")
    seed_contacts(con)
    ws = load_workspace(
        write_workspace(tmp_path / "ws", smtp_sink.port, alice_limit=1, bob_limit=2)
    )
    steps = [("c1", "intro", 1), ("c3", "html", 8), ("c4", "intro", 1), ("c5", "html", 8),
             ("c6", "html", 8)]  # fmt: skip
    keys = {
        c: add_action(con, c, step, T0 + i * dt.timedelta(minutes=1), day=day)
        for i, (c, step, day) in enumerate(steps)
    }
    report = send(con, ws, T0 + HOUR)
    assert (report.sent, report.deferred) == (3, 2)
    rows = action_rows(con)
    assert {c: (rows[k]["status"], rows[k]["sender_id"]) for c, k in keys.items()} == {
        "c1": ("sent", "alice"),
        "c3": ("sent", "bob"),
        "c4": ("deferred", None),
        "c5": ("sent", "bob"),
        "c6": ("deferred", None),
    }
    assert sorted((m.mail_from, m.rcpt_tos[0]) for m in smtp_sink.messages) == [
        ("alice@acme.example", "ann@example.com"),
        ("bob@acme.example", "cy@example.com"),
        ("bob@acme.example", "ed@example.com"),
    ]
    again = send(con, ws, T0 + 2 * HOUR)
    assert (again.sent, again.deferred) == (0, 0) and len(smtp_sink.messages) == 3
    assert statuses_of(con)[keys["c4"]] == statuses_of(con)[keys["c6"]] == "deferred"
    con.close()


def test_stale_due_actions_expire(tmp_path):
    with SmtpSink() as sink:
        con = connect(tmp_path / "db.duckdb")
        seed_contacts(con)
        ws = load_workspace(write_workspace(tmp_path / "ws", sink.port, stale=24))
        stale = add_action(con, "c1", "intro", T0)
        fresh = add_action(con, "c3", "intro", T0 + 2 * DAY)
        task = add_action(con, "c4", "call", T0, action="call_reminder", day=5)
        report = send(con, ws, T0 + 2 * DAY + HOUR)
        st = statuses_of(con)
        assert st[stale] == "expired" and st[fresh] == "sent" and st[task] == "sent"
        assert report.expired == 1 and len(sink.messages) == 1
        con.close()
        # a longer stale_after_hours keeps a 49-hour-old action sendable
        con = connect(tmp_path / "db2.duckdb")
        seed_contacts(con)
        ws = load_workspace(write_workspace(tmp_path / "ws2", sink.port, stale=72))
        key = add_action(con, "c1", "intro", T0)
        send(con, ws, T0 + 2 * DAY + HOUR)
        assert statuses_of(con)[key] == "sent"
        con.close()


def test_unsubscribed_contact_and_removed_step_are_skipped(env):
    con, ws, sink = env
    con.execute("update contacts set unsubscribed = true where contact_id = 'c1'")
    a = add_action(con, "c1", "intro", T0)
    b = add_action(con, "c3", "gone-step", T0)
    report = send(con, ws, T0 + HOUR)
    assert statuses_of(con)[a] == statuses_of(con)[b] == "skipped"
    assert report.skipped == 2 and not sink.messages


def test_actions_of_an_enrolment_that_exited_since_the_tick_are_skipped(env):
    con, ws, sink = env
    for contact, reason in (("c1", "manual"), ("c3", "replied"), ("c4", "completed")):
        con.execute(
            "insert into enrollments (sequence, contact_id, enrollment_id, enrolled_on,"
            " enrolled_at, status, exit_reason, exited_on, exited_at) values"
            " ('outbound', ?, ?, ?, ?, 'exited', ?, ?, ?)",
            [contact, f"e-{contact}", T0.date(), T0, reason, T0.date(), T0 + HOUR / 2],
        )
    unenrolled = add_action(con, "c1", "intro", T0)
    replied = add_action(con, "c3", "intro", T0, status="deferred")  # held back by the limit
    last_step = add_action(con, "c4", "intro", T0)  # completed on its last step's day: sent
    report = send(con, ws, T0 + HOUR)
    st = statuses_of(con)
    assert st[unenrolled] == st[replied] == "skipped" and st[last_step] == "sent"
    assert "exited (replied)" in action_rows(con)[replied]["error"]
    assert report.skipped == 2 and list(by_to(sink)) == ["di@example.com"]


def test_an_address_that_unsubscribed_is_not_emailed_under_another_contact(env):
    con, ws, sink = env
    con.execute("update contacts set email = 'ANN@example.com' where contact_id = 'c5'")
    con.execute(
        "insert into activities (activity_id, contact_id, type, occurred_at)"
        " values ('u1', 'c1', 'unsubscribed', ?)",
        [T0 - HOUR],
    )
    key = add_action(con, "c5", "intro", T0)  # c5 shares c1's address, in another case
    send(con, ws, T0 + HOUR)
    assert statuses_of(con)[key] == "skipped" and not sink.messages


def test_a_reviewed_retry_does_not_expire(env):
    con, ws, sink = env
    key = add_action(con, "c1", "intro", T0, status="unknown")
    resolve_unknown(con, key, "retry")  # reviewed two days later: older than stale_after
    send(con, ws, T0 + 2 * DAY)
    assert statuses_of(con)[key] == "sent" and len(sink.messages) == 1


def test_tasks_created_for_the_owner(env):
    con, ws, sink = env
    remind = add_action(con, "c1", "remind", T0, action="email_reminder", day=4)
    call = add_action(con, "c1", "call", T0 + DAY, action="call_reminder", day=5)
    report = send(con, ws, T0 + DAY + HOUR)
    assert report.tasks == 2 and not sink.messages
    assert statuses_of(con)[remind] == statuses_of(con)[call] == "sent"
    tasks = {t["task_id"]: t for t in list_tasks(con, "alice")}
    assert set(tasks) == {remind, call}
    assert tasks[remind]["kind"] == "email_reminder" and tasks[remind]["due_on"] == T0.date()
    assert "Subject: Checking in" in tasks[remind]["body"]
    assert "Just bumping this, Ann." in tasks[remind]["body"]
    assert tasks[call]["title"] == "Call Ann Lee"
    assert tasks[call]["body"] == "Call Ann at +15550001"
    assert list_tasks(con, "bob") == []
    send(con, ws, T0 + DAY + 2 * HOUR)  # replay: no duplicate tasks
    assert len(list_tasks(con, "alice")) == 2
    complete_task(con, call, T0 + 2 * DAY)
    complete_task(con, call, T0 + 3 * DAY)  # idempotent
    assert [t["task_id"] for t in list_tasks(con, "alice")] == [remind]
    done = [t for t in list_tasks(con, "alice", include_done=True) if t["done"]]
    assert [t["done_at"] for t in done] == [T0 + 2 * DAY]
    act = con.execute("select type, contact_id from activities").fetchall()
    assert act == [("task_completed", "c1")]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_mailbox_login_uses_password_from_env(tmp_path):
    with SmtpSink() as sink, SmtpSink(auth=("bob", "hunter2")) as bob_sink:
        con = connect(tmp_path / "db.duckdb")
        seed_contacts(con)
        ws = load_workspace(
            write_workspace(tmp_path / "ws", sink.port, bob_port=bob_sink.port, bob_login=True)
        )
        key = add_action(con, "c1", "html", T0, day=8)  # from: bob
        send(con, ws, T0 + HOUR)
        assert statuses_of(con)[key] == "sent" and len(bob_sink.messages) == 1
        # without the password variable the action is held, and nothing is logged in
        key2 = add_action(con, "c3", "html", T0, day=8)
        send_due(con, ws, T0 + HOUR, env={"TRACKING_SECRET": SECRET}, backoff=no_wait)
        row = action_rows(con)[key2]
        assert row["status"] == "held" and "BOB_SMTP_PASSWORD" in row["error"]
        assert "hunter2" not in json.dumps(row, default=str)
        con.close()


def test_missing_tracking_secret_holds_email(env):
    con, ws, sink = env
    key = add_action(con, "c1", "intro", T0)
    send_due(con, ws, T0 + HOUR, env={}, backoff=no_wait)
    row = action_rows(con)[key]
    assert row["status"] == "held" and "TRACKING_SECRET" in row["error"]
    assert not sink.messages


def test_send_run_is_recorded(env):
    con, ws, _ = env
    add_action(con, "c1", "intro", T0)
    send(con, ws, T0 + HOUR)
    kind, stats = con.execute("select kind, stats from runs").fetchone()
    assert kind == "send" and json.loads(stats)["sent"] == 1


def test_key_helper_matches_rows(env):
    """``add_action`` returns the key of the row it inserted, and ``key_of`` computes the same
    key without a row. The keys are written out by hand (sequence|contact|step|enrolment, the
    enrolment being ``e-<contact>``) and the rows are read back by contact and step."""
    con, _, _ = env
    returned = add_action(con, "c1", "intro", T0)
    other = add_action(con, "c3", "bump", T0, day=3, sequence="inbound")
    stored = dict(
        con.execute("select contact_id || '/' || step, idempotency_key from actions").fetchall()
    )
    assert stored == {"c1/intro": "outbound|c1|intro|e-c1", "c3/bump": "inbound|c3|bump|e-c3"}
    assert (returned, other) == (stored["c1/intro"], stored["c3/bump"])
    assert key_of("c1", "intro") == "outbound|c1|intro|e-c1"
    assert key_of("c3", "bump", "inbound") == "inbound|c3|bump|e-c3"


def test_cli_review_lists_unknowns_and_mark_settles_each_exactly(
    tmp_path,
    smtp_sink,
    monkeypatch,
    capsys,
):
    """Through `sequencer send`. Due emails to c1 and c3; the sink takes c1's message but drops
    the connection before answering (the product's claim path leaves c1 `unknown`); c3 is
    sent. Then a second send process is SIGKILLed right after claiming c4's email
    (a fault hook killing it after its first claim): c4 is `unknown` and was never delivered.

    `--review` lists exactly c1 and c4, with c1's Message-ID. `--mark` refuses a sent action
    (c3) and an outcome other than sent|retry, changing nothing. `--mark c1 sent` makes it
    `sent` at its claim time with one email_sent activity; `--mark c4 retry` makes it
    `deferred`, and the next send delivers it once. Then nothing is left to review."""
    monkeypatch.setenv("TRACKING_SECRET", SECRET)
    project = write_workspace(tmp_path / "ws", smtp_sink.port)
    db = tmp_path / "db.duckdb"
    con = connect(db)
    seed_contacts(con)
    k1, k3 = add_action(con, "c1", "intro", T0), add_action(con, "c3", "intro", T0 + HOUR / 60)
    con.close()

    def sequencer(*argv: str) -> tuple[int, str, str]:
        code = main(["send", "--project", str(project), "--db", str(db), *argv])
        out, err = capsys.readouterr()
        return code, out, err

    def rows() -> dict:
        con = connect(db)
        try:
            return action_rows(con)
        finally:
            con.close()

    smtp_sink.drop = 1
    assert sequencer("--as-of", (T0 + HOUR).isoformat())[0] == 0
    assert {k: r["status"] for k, r in rows().items()} == {k1: "unknown", k3: "sent"}
    con = connect(db)
    k4 = add_action(con, "c4", "intro", T0 + HOUR)
    con.close()
    # the send the CLI runs, in a process that dies right after its first claim (the injected
    # fault point of the crash tests: production never reads one)
    runner = (
        "import datetime as dt, sys\n"
        "from pipelines.db import connect\n"
        "from pipelines.outbox.send import send_due\n"
        "from pipelines.workspace import load_workspace\n"
        "from tests.delivery_fixtures import kill_at\n"
        "send_due(connect(sys.argv[1]), load_workspace(sys.argv[2]),"
        " dt.datetime.fromisoformat(sys.argv[3]), faults=kill_at('after_claim:1'))\n"
    )
    crashed = subprocess.run(
        [sys.executable, "-c", runner, str(db), str(project), (T0 + 2 * HOUR).isoformat()],
        capture_output=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()
    assert rows()[k4]["status"] == "unknown"
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == [
        "ann@example.com",
        "cy@example.com",
    ]  # c1's message arrived, c4's never left

    code, out, _ = sequencer("--review")
    assert code == 0 and out.splitlines()[0].startswith("2 action(s) in status unknown")
    listed = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert list(listed) == [k1, k4]  # oldest claim first
    assert f"message-id {message.message_id(k1, 'acme.example')}" in listed[k1]

    before = rows()
    code, _, err = sequencer("--mark", k3, "sent")
    assert code == 1 and f"no action {k3!r} in status 'unknown'" in err
    code, _, err = sequencer("--mark", k1, "failed")
    assert code == 1 and "outcome must be 'sent' or 'retry'" in err
    assert rows() == before

    assert sequencer("--mark", k1, "sent")[:2] == (0, f"{k1}: marked sent\n")
    assert sequencer("--mark", k4, "retry")[:2] == (0, f"{k4}: marked retry\n")
    after = rows()
    assert {k: r["status"] for k, r in after.items()} == {k1: "sent", k3: "sent", k4: "deferred"}
    assert after[k1]["finished_at"] == after[k1]["claimed_at"] == before[k1]["claimed_at"]
    con = connect(db)
    logged = con.execute(
        "select message_id from activities where type = 'email_sent' order by occurred_at"
    ).fetchall()
    (detail,) = con.execute(
        "select detail from activities where type = 'email_sent' and message_id = ?",
        [before[k1]["message_id"]],
    ).fetchone()
    con.close()
    assert logged == [(before[k1]["message_id"],), (before[k3]["message_id"],)]
    # the settled email's activity carries the subject it was sent with, as a recorded send's
    assert before[k1]["subject"] and json.loads(detail) == {"subject": before[k1]["subject"]}
    assert sequencer("--mark", k1, "sent")[0] == 1  # settled once only

    assert sequencer("--as-of", (T0 + 3 * HOUR).isoformat())[0] == 0
    assert rows()[k4]["status"] == "sent"
    assert [m.rcpt_tos[0] for m in smtp_sink.messages].count("di@example.com") == 1
    code, out, _ = sequencer("--review")
    assert out.splitlines() == ["0 action(s) in status unknown (claimed, outcome not recorded):"]
