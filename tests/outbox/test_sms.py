"""SMS steps through a real HTTP gateway on 127.0.0.1 (http.server in a thread)."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.db import connect
from pipelines.demo.smtp_sink import free_port
from pipelines.outbox.send import send_due
from pipelines.workspace import load_workspace
from tests.delivery_fixtures import (
    ENV,
    Gateway,
    action_rows,
    add_action,
    seed_contacts,
    write_workspace,
)

T0 = dt.datetime(2026, 3, 2, 14, 30)
AS_OF = T0 + dt.timedelta(hours=1)


@pytest.fixture
def sms_env(tmp_path):
    with Gateway() as gateway:
        con = connect(tmp_path / "db.duckdb")
        seed_contacts(con)
        ws = load_workspace(write_workspace(tmp_path / "ws", free_port(), sms_url=gateway.url))
        yield con, ws, gateway
        con.close()


def send(con, ws, **kw):
    return send_due(con, ws, AS_OF, env=ENV, backoff=lambda n: 0, **kw)


def test_sms_is_posted_with_bearer_token_and_recorded(sms_env):
    con, ws, gateway = sms_env
    key = add_action(con, "c1", "text", T0, action="sms", day=6)
    report = send(con, ws)
    assert report.sent == 1
    [req] = gateway.requests
    assert req["path"] == "/send" and req["auth"] == "Bearer sms-token"
    assert req["json"] == {"to": "+15550001", "body": "Hi Ann, Alice Smith", "idempotency_key": key}
    row = action_rows(con)[key]
    assert row["status"] == "sent" and row["message_id"] == "gw-1"
    act = con.execute("select type, contact_id, message_id, step from activities").fetchall()
    assert act == [("sms_sent", "c1", "gw-1", "text")]
    send(con, ws)  # replay: nothing posted again
    assert len(gateway.requests) == 1


def test_contact_without_phone_is_held(sms_env):
    con, ws, gateway = sms_env
    key = add_action(con, "c2", "text", T0, action="sms", day=6)
    send(con, ws)
    row = action_rows(con)[key]
    assert row["status"] == "held" and "phone" in row["error"]
    assert not gateway.requests


def test_gateway_5xx_is_retried_with_the_same_key(sms_env):
    con, ws, gateway = sms_env
    gateway.replies = [503, 502]
    key = add_action(con, "c1", "text", T0, action="sms", day=6)
    send(con, ws, max_retries=3)
    assert action_rows(con)[key]["status"] == "sent"
    assert [r["json"]["idempotency_key"] for r in gateway.requests] == [key] * 3


def test_gateway_4xx_fails_that_sms_only(sms_env):
    con, ws, gateway = sms_env
    gateway.replies = [400]
    bad = add_action(con, "c1", "text", T0, action="sms", day=6)
    good = add_action(con, "c3", "text", T0 + dt.timedelta(minutes=1), action="sms", day=6)
    report = send(con, ws)
    rows = action_rows(con)
    assert rows[bad]["status"] == "failed" and "400" in rows[bad]["error"]
    assert rows[good]["status"] == "sent" and report.failed == 1


def test_gateway_down_fails_after_retries(tmp_path):
    con = connect(tmp_path / "db.duckdb")
    seed_contacts(con)
    url = f"http://127.0.0.1:{free_port()}/send"
    ws = load_workspace(write_workspace(tmp_path / "ws", free_port(), sms_url=url))
    key = add_action(con, "c1", "text", T0, action="sms", day=6)
    send(con, ws, max_retries=2)
    row = action_rows(con)[key]
    assert row["status"] == "failed" and row["attempts"] == 3
    con.close()


def test_missing_token_is_held(sms_env):
    con, ws, gateway = sms_env
    key = add_action(con, "c1", "text", T0, action="sms", day=6)
    send_due(con, ws, AS_OF, env={"TRACKING_SECRET": "x"}, backoff=lambda n: 0)
    row = action_rows(con)[key]
    assert row["status"] == "held" and "SMS_TOKEN" in row["error"]
    assert not gateway.requests


@pytest.mark.parametrize("code", [408, 429])
def test_gateway_timeout_and_rate_limit_answers_are_retried_then_sent(sms_env, code):
    """The gateway answers ``code`` (408 Request Timeout / 429 Too Many Requests) twice, then
    200. Row: c1 text due; max_retries 3.

    Expected: 3 POSTs, all with the same idempotency key (the gateway dedupes on it); the SMS
    is ``sent`` with the third answer's id gw-3 and attempts 3 (claim + 2 retries).
    """
    con, ws, gateway = sms_env
    gateway.replies = [code, code]
    key = add_action(con, "c1", "text", T0, action="sms", day=6)
    report = send(con, ws, max_retries=3)
    assert [r["json"]["idempotency_key"] for r in gateway.requests] == [key] * 3
    row = action_rows(con)[key]
    assert (row["status"], row["message_id"], row["attempts"]) == ("sent", "gw-3", 3)
    assert (report.sent, report.failed) == (1, 0)


@pytest.mark.parametrize("code", [408, 429])
def test_gateway_timeout_and_rate_limit_answers_fail_after_the_retries(sms_env, code):
    """The gateway answers ``code`` four times. Row: c1 text due; max_retries 3.

    Expected: 1 + 3 = 4 POSTs, then ``failed`` with attempts 4 and the last answer as error.
    """
    con, ws, gateway = sms_env
    gateway.replies = [code] * 4
    key = add_action(con, "c1", "text", T0, action="sms", day=6)
    report = send(con, ws, max_retries=3)
    assert len(gateway.requests) == 4
    row = action_rows(con)[key]
    assert (row["status"], row["attempts"]) == ("failed", 4)
    assert row["error"] == f"SMS gateway HTTP {code}"
    assert report.failed == 1


def test_sms_older_than_stale_after_expires_unsent(sms_env):
    """stale_after_hours 24; this send runs at 2026-03-03 15:30Z. Rows:

    =======  =============  ====================  ====  ==================================
    contact  step (action)  occurrence_at         age   expected
    =======  =============  ====================  ====  ==================================
    c1       text (sms)     2026-03-02 14:30Z     25 h  expired, not posted
    c3       text (sms)     2026-03-02 15:30Z     24 h  sent: not older than 24 h
    c4       call (task)    2026-03-02 14:30Z     25 h  sent: tasks never expire
    =======  =============  ====================  ====  ==================================
    """
    con, ws, gateway = sms_env
    old = add_action(con, "c1", "text", T0, action="sms", day=6)
    edge = add_action(con, "c3", "text", T0 + dt.timedelta(hours=1), action="sms", day=6)
    task = add_action(con, "c4", "call", T0, action="call_reminder", day=5)
    report = send_due(con, ws, T0 + dt.timedelta(hours=25), env=ENV, backoff=lambda n: 0)
    rows = action_rows(con)
    assert [rows[k]["status"] for k in (old, edge, task)] == ["expired", "sent", "sent"]
    assert rows[old]["error"] == "stale: occurrence older than stale_after_hours at send time"
    assert [r["json"]["to"] for r in gateway.requests] == ["+15550003"]
    assert (report.expired, report.sent, report.tasks) == (1, 1, 1)
