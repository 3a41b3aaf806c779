"""Outbox rules of the send step (SPEC 6 "Sending"), on given rows against real parts: a DuckDB
file under tmp_path, an SMTP server (aiosmtpd, plain or TLS) and an SMS gateway on 127.0.0.1.

Every test states its rows and derives the expected outcome by hand in its docstring. Times:
T0 = 2026-03-02 14:30Z is Monday 09:30 for alice (America/New_York, the owner of
``outbound``); the send runs at AS_OF = 10:30 New York, so alice's local day is
[2026-03-02 05:00Z, 2026-03-03 05:00Z).
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import trustme

from pipelines.channels import message
from pipelines.db import connect
from pipelines.demo.smtp_sink import SmtpSink
from pipelines.outbox.send import SendReport, send_due
from pipelines.workspace import Workspace, load_workspace
from tests.delivery_fixtures import (
    ENV,
    Gateway,
    action_rows,
    add_action,
    seed_contacts,
    statuses,
    write_workspace,
)

T0 = dt.datetime(2026, 3, 2, 14, 30)
MINUTE, HOUR, DAY = dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1)
AS_OF = T0 + HOUR
LIMIT_NOTE = "daily email limit reached; sent first on the next local day"


def no_wait(attempt: int) -> float:
    return 0.0


def msg_id(key: str) -> str:
    return message.message_id(key, "acme.example")


@dataclass
class Outbox:
    con: duckdb.DuckDBPyConnection
    sink: SmtpSink
    gateway: Gateway
    root: Path
    mode: str = "plain"  # the server's TLS: plain, starttls or ssl

    def workspace(self, **kw) -> Workspace:
        root = write_workspace(self.root / "ws", self.sink.port, sms_url=self.gateway.url, **kw)
        return load_workspace(root)

    def send(self, ws: Workspace, as_of: dt.datetime = AS_OF, **kw) -> SendReport:
        return send_due(self.con, ws, as_of, env=ENV, backoff=no_wait, **kw)

    def set_row(self, key: str, **cols) -> None:
        """Put an action row in the state an earlier send left it in."""
        names = ", ".join(f"{c} = ?" for c in cols)
        self.con.execute(
            f"update actions set {names} where idempotency_key = ?", [*cols.values(), key]
        )


@pytest.fixture
def outbox(tmp_path) -> Iterator[Outbox]:
    with SmtpSink() as sink, Gateway() as gateway:
        con = connect(tmp_path / "db.duckdb")
        seed_contacts(con)
        yield Outbox(con, sink, gateway, tmp_path)
        con.close()


# --- the daily limit (sql/send/int_send_batch.sql) ------------------------------------------------


def test_in_flight_unknown_emails_count_against_the_daily_limit(outbox):
    """alice's limit is 3. Rows (all alice's ``intro`` emails):

    ==========  =======  ===========================  =====================
    contact     status   claimed / finished           counts at AS_OF?
    ==========  =======  ===========================  =====================
    c5          unknown  claimed 09:40 today          yes: in flight
    c6          sent     finished 09:35 today         yes
    c4          unknown  claimed 09:40 yesterday      no: another local day
    c2          sent     finished 09:35 yesterday     no: another local day
    c1          due      occurrence 09:30             rank 1
    c3          due      occurrence 09:31             rank 2
    ==========  =======  ===========================  =====================

    Used today = 2, so 3 - 2 = 1 slot: c1 is sent, c3 deferred. The unknown rows are never
    sent again. (Counting only ``sent``, used = 1 and both due emails would go out.)
    """
    con, ws = outbox.con, outbox.workspace(alice_limit=3)
    keys = {c: add_action(con, c, "intro", T0 - DAY) for c in ("c5", "c6", "c4", "c2")}
    today, yesterday = T0 + 10 * MINUTE, T0 - DAY + 10 * MINUTE
    outbox.set_row(keys["c5"], status="unknown", claimed_at=today, sender_id="alice", attempts=1)
    outbox.set_row(keys["c4"], status="unknown", claimed_at=yesterday, sender_id="alice")
    for contact, at in (("c6", today - 5 * MINUTE), ("c2", yesterday - 5 * MINUTE)):
        outbox.set_row(keys[contact], status="sent", claimed_at=at, finished_at=at)
        outbox.set_row(keys[contact], sender_id="alice", message_id=msg_id(keys[contact]))
    keys["c1"] = add_action(con, "c1", "intro", T0)
    keys["c3"] = add_action(con, "c3", "intro", T0 + MINUTE)

    report = outbox.send(ws)

    st = statuses(con)
    assert {c: st[k] for c, k in keys.items()} == {
        "c5": "unknown",
        "c6": "sent",
        "c4": "unknown",
        "c2": "sent",
        "c1": "sent",
        "c3": "deferred",
    }
    assert action_rows(con)[keys["c3"]]["error"] == LIMIT_NOTE
    assert (report.sent, report.deferred) == (1, 1)
    assert outbox.sink.message_ids() == [msg_id(keys["c1"])]


def test_tasks_and_sms_neither_rank_with_nor_use_email_limit_slots(outbox):
    """alice's limit is 2. Rows, all due, in batch order (oldest first):

    =======  ================  ==========  =======================================
    contact  step (action)     occurrence  expected
    =======  ================  ==========  =======================================
    c1       call (task)       08:30       sent: a task has no limit
    c3       text (sms)        08:45       sent: an SMS has no limit
    c4       intro (email)     09:30       email rank 1 → sent
    c5       intro (email)     09:31       email rank 2 → sent
    c6       intro (email)     09:32       email rank 3 → deferred
    =======  ================  ==========  =======================================

    Ranked together with the task and the SMS, the emails would be 3rd, 4th and 5th and all
    three deferred.
    """
    con, ws = outbox.con, outbox.workspace(alice_limit=2)
    task = add_action(con, "c1", "call", T0 - HOUR, action="call_reminder", day=5)
    sms = add_action(con, "c3", "text", T0 - 45 * MINUTE, action="sms", day=6)
    emails = [
        add_action(con, c, "intro", T0 + i * MINUTE) for i, c in enumerate(("c4", "c5", "c6"))
    ]

    report = outbox.send(ws)

    st = statuses(con)
    assert [st[task], st[sms]] == ["sent", "sent"]
    assert [st[k] for k in emails] == ["sent", "sent", "deferred"]
    assert (report.sent, report.tasks, report.deferred) == (3, 1, 1)
    assert outbox.sink.message_ids() == [msg_id(k) for k in emails[:2]]
    assert [r["json"]["to"] for r in outbox.gateway.requests] == ["+15550003"]


# --- claim, send, record ----------------------------------------------------------------------


@pytest.mark.parametrize("taken_as", ["unknown", "sent"])
def test_the_claim_takes_only_a_due_or_deferred_action(outbox, taken_as):
    """Rows: c1 intro due 09:30, c3 intro due 09:31 — both in the batch this send selected.
    Right after c1's claim (the ``after_claim`` fault point), another send process takes c3:
    its row becomes ``taken_as`` with attempts 1 (``unknown``: in flight there; ``sent``:
    done there).

    Expected: our claim of c3 changes nothing and nothing is sent for it — c1 sent, c3 still
    ``taken_as`` with attempts 1, and the server holds c1's message only. (A claim without
    its status guard would take c3 back and send it a second time.)
    """
    con, ws = outbox.con, outbox.workspace()
    k1 = add_action(con, "c1", "intro", T0)
    k3 = add_action(con, "c3", "intro", T0 + MINUTE)

    def other_process_takes_c3(point: str, key: str) -> None:
        if (point, key) == ("after_claim", k1):
            outbox.set_row(k3, status=taken_as, claimed_at=AS_OF, attempts=1)

    report = outbox.send(ws, faults=other_process_takes_c3)

    rows = action_rows(con)
    assert (rows[k1]["status"], rows[k1]["attempts"]) == ("sent", 1)
    assert (rows[k3]["status"], rows[k3]["attempts"]) == (taken_as, 1)
    assert outbox.sink.message_ids() == [msg_id(k1)]
    assert report.sent == 1


def test_a_message_reaches_the_server_only_after_its_claim_is_committed(outbox):
    """Rows: c1 intro due 09:30, c3 intro due 09:31. When a message's DATA arrives, the SMTP
    server reads the outbox through its own DuckDB connection.

    Expected at that instant, for the arriving message's action: ``unknown`` (claimed),
    ``claimed_at`` set, attempts 1, the message's own Message-ID — the claim was committed
    before the message left. Afterwards both are ``sent``. (Sending before claiming, the
    server would see ``due`` with no claim.)
    """
    con, ws = outbox.con, outbox.workspace()
    keys = [add_action(con, "c1", "intro", T0), add_action(con, "c3", "intro", T0 + MINUTE)]
    reader = con.cursor()  # used only from the server's thread
    seen: list[tuple] = []

    def read_outbox(envelope) -> None:
        header = next(
            line for line in envelope.content.split(b"\r\n") if line.startswith(b"Message-ID:")
        )
        mid = header.split(b":", 1)[1].strip().decode()
        [key] = [k for k in keys if msg_id(k) == mid]
        seen.append(
            reader.execute(
                "select idempotency_key, status, claimed_at is not null, attempts, message_id"
                " from actions where idempotency_key = ?",
                [key],
            ).fetchone()
        )

    outbox.sink.on_data = read_outbox
    outbox.send(ws)

    assert seen == [(k, "unknown", True, 1, msg_id(k)) for k in keys]
    assert [statuses(con)[k] for k in keys] == ["sent", "sent"]


class Crash(Exception):
    """The process dies here (in-process stand-in for the SIGKILL of test_send_crash.py)."""


def test_a_crash_right_after_the_send_leaves_it_unknown_and_never_sends_it_again(outbox):
    """Rows: c1 intro due 09:30, c3 intro due 09:31. The send dies at c1's ``after_send``
    fault point: c1 reached the server, its result was never recorded.

    Expected: c1 ``unknown`` (delivered, for review), c3 still ``due``. A second send at
    10:31: c3 sent, c1 still ``unknown``; the server holds c1 once and c3 once.
    """
    con, ws = outbox.con, outbox.workspace()
    k1 = add_action(con, "c1", "intro", T0)
    k3 = add_action(con, "c3", "intro", T0 + MINUTE)

    def die_after_sending_c1(point: str, key: str) -> None:
        if (point, key) == ("after_send", k1):
            raise Crash

    with pytest.raises(Crash):
        outbox.send(ws, faults=die_after_sending_c1)
    assert [statuses(con)[k] for k in (k1, k3)] == ["unknown", "due"]
    assert outbox.sink.message_ids() == [msg_id(k1)]

    report = outbox.send(ws, AS_OF + MINUTE)

    assert [statuses(con)[k] for k in (k1, k3)] == ["unknown", "sent"]
    assert outbox.sink.message_ids() == [msg_id(k1), msg_id(k3)]
    assert report.sent == 1


# --- opt-outs --------------------------------------------------------------------------------


@pytest.mark.parametrize("opt_out", ["unsubscribed", "email_complained"])
def test_an_email_bounce_suppresses_email_but_not_sms(outbox, opt_out):
    """Between the tick (09:30) and the send (10:30): ann (c1) bounced at 09:40, cy (c3)
    unsubscribed (or complained: a spam report counts as an unsubscribe, SPEC 10) at 09:40.
    Rows, all due at 09:30:

    =======  =============  ==========================================================
    contact  step (action)  expected
    =======  =============  ==========================================================
    c1       intro (email)  skipped: the address bounced
    c1       text (sms)     sent to +15550001: a bounce says nothing about the phone
    c3       text (sms)     skipped: an unsubscribe covers every channel
    =======  =============  ==========================================================
    """
    con, ws = outbox.con, outbox.workspace()
    for contact, email, kind in (
        ("c1", "ann@example.com", "email_bounced"),
        ("c3", "cy@example.com", opt_out),
    ):
        con.execute(
            "insert into activities (activity_id, contact_id, email, type, occurred_at)"
            " values (?, ?, ?, ?, ?)",
            [f"{kind}-{contact}", contact, email, kind, T0 + 10 * MINUTE],
        )
    email = add_action(con, "c1", "intro", T0)
    sms = add_action(con, "c1", "text", T0, action="sms", day=6)
    unsubscribed_sms = add_action(con, "c3", "text", T0, action="sms", day=6)

    report = outbox.send(ws)

    rows = action_rows(con)
    assert {k: rows[k]["status"] for k in (email, sms, unsubscribed_sms)} == {
        email: "skipped",
        sms: "sent",
        unsubscribed_sms: "skipped",
    }
    reason = "contact unsubscribed or bounced before send"
    assert rows[email]["error"] == rows[unsubscribed_sms]["error"] == reason
    assert [r["json"]["to"] for r in outbox.gateway.requests] == ["+15550001"]
    assert outbox.sink.messages == []
    assert (report.sent, report.skipped) == (1, 2)


# --- SMTP: partial refusal and TLS ----------------------------------------------------------


def test_refused_cc_and_bcc_are_noted_and_the_email_still_counts_as_sent(outbox):
    """c1 intro goes to ann, cc manager@acme.example, bcc bob@acme.example. The server
    accepts ann, refuses the cc for good (550) and the bcc for now (450).

    Expected: one delivery, to ann only; the action is ``sent`` at its first attempt (a retry
    for the cc would send ann a second copy), with its ``email_sent`` activity, and its error
    names each refused recipient with the server's reply, in envelope order.
    """
    con, ws = outbox.con, outbox.workspace()
    outbox.sink.reject["manager@acme.example"] = "550 5.1.1 no such user"
    outbox.sink.reject["bob@acme.example"] = "450 4.2.1 mailbox busy"
    key = add_action(con, "c1", "intro", T0)

    report = outbox.send(ws)

    [received] = outbox.sink.messages
    assert received.rcpt_tos == ["ann@example.com"]
    assert received.message["Cc"] == "manager@acme.example"  # the header is what was written
    row = action_rows(con)[key]
    assert (row["status"], row["attempts"]) == ("sent", 1)
    assert row["error"] == (
        "refused cc/bcc: {'manager@acme.example': (550, '5.1.1 no such user'),"
        " 'bob@acme.example': (450, '4.2.1 mailbox busy')}"
    )
    activities = con.execute("select type, message_id from activities").fetchall()
    assert activities == [("email_sent", msg_id(key))]
    assert (report.sent, report.failed) == (1, 0)


@pytest.fixture(scope="module")
def tls_server():
    """A CA made in the test, a server certificate for 127.0.0.1, and a second CA that never
    signed anything: (server context, trusted CA file, unrelated CA file)."""
    ca, stranger = trustme.CA(), trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with ca.cert_pem.tempfile() as trusted, stranger.cert_pem.tempfile() as untrusted:
        yield context, trusted, untrusted


def tls_workspace(outbox: Outbox, mode: str) -> Workspace:
    """alice's and bob's mailbox with ``starttls: true`` or ``ssl: true``."""
    ws_root = write_workspace(outbox.root / "ws", outbox.sink.port)
    users = ws_root / "users.yaml"
    users.write_text(users.read_text().replace("starttls: false", f"{mode}: true"))
    return load_workspace(ws_root)


@pytest.fixture(params=["starttls", "ssl"])
def tls_outbox(request, tmp_path, tls_server) -> Iterator[Outbox]:
    """The outbox with a server that requires STARTTLS, or speaks implicit TLS."""
    with SmtpSink(**{request.param: tls_server[0]}) as sink, Gateway() as gateway:
        con = connect(tmp_path / "db.duckdb")
        seed_contacts(con)
        yield Outbox(con, sink, gateway, tmp_path, request.param)
        con.close()


def test_tls_mailbox_delivers_over_tls(tls_outbox, tls_server, monkeypatch):
    """alice's mailbox says ``starttls: true`` (server requires STARTTLS) or ``ssl: true``
    (server speaks TLS from the first byte), and the machine trusts the test CA through
    ``SSL_CERT_FILE`` (OpenSSL's default verify paths). Row: c1 intro due.

    Expected: ``sent``, and the server received the message over TLS.
    """
    monkeypatch.setenv("SSL_CERT_FILE", tls_server[1])
    con, ws = tls_outbox.con, tls_workspace(tls_outbox, tls_outbox.mode)
    key = add_action(con, "c1", "intro", T0)

    report = tls_outbox.send(ws)

    [received] = tls_outbox.sink.messages
    assert received.tls in ("TLSv1.2", "TLSv1.3")
    assert received.message["Message-ID"] == msg_id(key)
    assert statuses(con)[key] == "sent" and report.sent == 1


def test_tls_mailbox_refuses_a_certificate_it_cannot_verify(tls_outbox, tls_server, monkeypatch):
    """As above, but the machine trusts only an unrelated CA: the server's certificate cannot
    be verified. Row: c1 intro due; max_retries 1.

    Expected: nothing reaches the server (the password and the message never cross an
    unverified connection); the action is ``failed`` after 2 attempts, the error names the
    verification failure.
    """
    monkeypatch.setenv("SSL_CERT_FILE", tls_server[2])
    con, ws = tls_outbox.con, tls_workspace(tls_outbox, tls_outbox.mode)
    key = add_action(con, "c1", "intro", T0)

    report = tls_outbox.send(ws, max_retries=1)

    assert tls_outbox.sink.messages == []
    row = action_rows(con)[key]
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert "CERTIFICATE_VERIFY_FAILED" in row["error"]
    assert report.failed == 1


def test_starttls_mailbox_never_falls_back_to_plain_text(outbox):
    """alice's mailbox says ``starttls: true`` but the server does not offer STARTTLS.
    Row: c1 intro due; max_retries 1.

    Expected: nothing is sent in plain text; ``failed`` after 2 attempts.
    """
    con, ws = outbox.con, tls_workspace(outbox, "starttls")
    key = add_action(con, "c1", "intro", T0)

    outbox.send(ws, max_retries=1)

    assert outbox.sink.messages == []
    row = action_rows(con)[key]
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert "STARTTLS" in row["error"]
