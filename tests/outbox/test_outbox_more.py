# ruff: noqa: F811  (`outbox`, the imported fixture, is every test's argument)
"""More outbox rules pinned by the mutation run (issue 14): each test kills a survivor of
``pipelines/deliver.py`` (or of the instants it relies on) on given rows against real parts
(a DuckDB file, the SMTP sink, the HTTP SMS gateway, a real socket that never answers).

Times as in ``test_outbox_rules.py``: T0 = 2026-03-02 14:30Z is Monday 09:30 for alice
(America/New_York); AS_OF = 15:30Z.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time

import pytest

from pipelines.channels.sms import post_sms
from pipelines.channels.smtp import SendError
from pipelines.workspace import load_workspace
from tests.delivery_fixtures import action_rows, add_action, statuses
from tests.outbox.test_outbox_rules import (  # noqa: F401  (`outbox` is the fixture)
    HOUR,
    T0,
    outbox,
)
from tests.outbox.test_outbox_survivors import workspace_with

OWNER = """\
name: owner
owner: alice
steps:
  - {id: text, day: 1, action: sms, body: "Reply to {{ owner.email }}"}
"""

PLAIN_TASKS = """\
name: plain
owner: alice
steps:
  - {id: follow, day: 1, action: follow_up}
  - {id: ring, day: 1, action: call_reminder}
"""


def tasks_table(con) -> dict[str, tuple]:
    rows = con.execute("select task_id, kind, title, body from tasks order by task_id").fetchall()
    return {r[0]: r[1:] for r in rows}


def test_a_due_action_whose_contact_is_gone_is_held_naming_the_contact(outbox):
    """Row: c404 intro due; no contact c404 exists (deleted since the tick decided it).
    Expected: ``held`` with the error "contact 'c404' not found", nothing sent, no crash."""
    con, ws = outbox.con, outbox.workspace()
    key = add_action(con, "c404", "intro", T0)

    report = outbox.send(ws)

    row = action_rows(con)[key]
    assert (row["status"], row["error"]) == ("held", "contact 'c404' not found")
    assert outbox.sink.messages == []
    assert report.problems == [(key, "held", "contact 'c404' not found")]


def test_templates_see_the_owner_email(outbox):
    """Sequence ``owner`` (owner alice) texts "Reply to {{ owner.email }}". Row: c1 text
    due. The gateway receives "Reply to alice@acme.example"."""
    con = outbox.con
    ws = workspace_with(outbox, {"owner": OWNER})
    key = add_action(con, "c1", "text", T0, action="sms", sequence="owner")

    outbox.send(ws)

    assert statuses(con)[key] == "sent"
    [req] = outbox.gateway.requests
    assert req["json"]["body"] == "Reply to alice@acme.example"


def test_an_sms_without_a_gateway_is_held_with_the_reason(outbox):
    """users.yaml without ``sms_gateway``. Row: c1 text (SMS) due. Expected: ``held`` with
    the error "sms step but no sms_gateway in users.yaml", nothing posted."""
    con = outbox.con
    outbox.workspace()
    users = outbox.root / "ws" / "users.yaml"
    text = users.read_text()
    users.write_text("".join(ln for ln in text.splitlines(True) if "sms_gateway" not in ln))
    ws = load_workspace(outbox.root / "ws")
    assert ws.users.sms_gateway is None
    key = add_action(con, "c1", "text", T0, action="sms", day=6)

    report = outbox.send(ws)

    error = "sms step but no sms_gateway in users.yaml"
    row = action_rows(con)[key]
    assert (row["status"], row["error"]) == ("held", error)
    assert outbox.gateway.requests == []
    assert report.problems == [(key, "held", error)]


def test_tasks_without_a_note_store_no_body_and_name_the_contact_by_email(outbox):
    """Sequence ``plain`` (owner alice): ``follow`` is a follow_up and ``ring`` a
    call_reminder, neither with a note. Contact c8 has an email but no name. Rows, all due:

    =======  ======  ==================================  =====
    contact  step    title                               body
    =======  ======  ==================================  =====
    c8       follow  Follow up with gus@example.com      NULL
    c1       ring    Call Ann Lee                        NULL
    =======  ======  ==================================  =====
    """
    con = outbox.con
    ws = workspace_with(outbox, {"plain": PLAIN_TASKS})
    con.execute(
        "insert into contacts (contact_id, email, owner_id) values ('c8', 'gus@example.com',"
        " 'alice')"
    )
    follow = add_action(con, "c8", "follow", T0, action="follow_up", sequence="plain")
    ring = add_action(con, "c1", "ring", T0, action="call_reminder", sequence="plain")

    report = outbox.send(ws)

    assert tasks_table(con) == {
        follow: ("follow_up", "Follow up with gus@example.com", None),
        ring: ("call_reminder", "Call Ann Lee", None),
    }
    assert report.tasks == 2 and report.problems == []


def test_an_sms_sent_activity_has_no_detail(outbox):
    """Row: c1 text (SMS) due. Its ``sms_sent`` activity stores ``detail`` NULL (an SMS has
    no subject; an empty detail is not stored as '{}'), and the email_sent of c3 intro stores
    its subject."""
    con, ws = outbox.con, outbox.workspace()
    add_action(con, "c1", "text", T0, action="sms", day=6)
    add_action(con, "c3", "intro", T0)

    outbox.send(ws)

    rows = con.execute(
        "select contact_id, type, detail from activities order by contact_id"
    ).fetchall()
    assert rows == [
        ("c1", "sms_sent", None),
        ("c3", "email_sent", '{"subject": "Quick question, Cy"}'),
    ]


@pytest.fixture
def silent_gateway():
    """A real TCP server on 127.0.0.1 that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []

    def accept():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/send"
    server.close()
    for conn in accepted:  # lets a client stuck without a timeout see EOF and end
        conn.close()


def test_a_gateway_that_never_answers_fails_transient_after_the_timeout(silent_gateway):
    """``post_sms`` with ``timeout=0.3`` to a gateway that accepts and hangs: it raises a
    transient SendError (so the action is retried) within a second or so; it does not hang.

    (``send_due`` always uses the default of 15 s: the timeout is not configurable there.)"""
    outcome: list[BaseException | None] = []

    def call():
        try:
            post_sms(silent_gateway, None, {"to": "+1", "body": "x"}, timeout=0.3)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001  (the test inspects it)
            outcome.append(exc)

    started = time.monotonic()
    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(timeout=3)

    assert not worker.is_alive(), "post_sms hung past its timeout"
    assert time.monotonic() - started < 3
    [exc] = outcome
    assert isinstance(exc, SendError) and exc.kind == "transient"


@pytest.fixture
def tokyo_machine():
    """The process's local zone is Asia/Tokyo (UTC+9) for the test."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_a_naive_as_of_is_utc_whatever_the_machine_zone(outbox, tokyo_machine):
    """alice's limit is 1; the machine runs in Asia/Tokyo. Rows:

    =======  ======  ======================================
    contact  status  finished / occurrence
    =======  ======  ======================================
    c5       sent    2026-03-02 06:00Z (01:00 NY Monday)
    c1       due     occurrence 2026-03-02 12:30Z
    =======  ======  ======================================

    The send runs at as_of = 2026-03-02 13:00 (naive, so UTC): 08:00 NY Monday. c5 used
    Monday's one slot: c1 is deferred. Read in the machine's zone, 13:00 Tokyo would be 04:00Z,
    23:00 NY Sunday: a day with no send, and c1 would go.
    """
    con, ws = outbox.con, outbox.workspace(alice_limit=1)
    as_of = dt.datetime(2026, 3, 2, 13, 0)
    k5 = add_action(con, "c5", "intro", as_of - 10 * HOUR)
    sent_at = dt.datetime(2026, 3, 2, 6, 0)
    outbox.set_row(k5, status="sent", claimed_at=sent_at, finished_at=sent_at, sender_id="alice")
    k1 = add_action(con, "c1", "intro", as_of - HOUR / 2)

    outbox.send(ws, as_of=as_of)

    assert statuses(con)[k1] == "deferred"
    assert outbox.sink.messages == []


def test_an_email_to_a_contact_without_address_is_held_with_the_reason(outbox):
    """Row: c7 intro due; c7 exists with no email (an SMS-only record). Expected: ``held``
    with the error "contact has no email address", nothing sent (outbox/compose.py)."""
    con, ws = outbox.con, outbox.workspace()
    con.execute(
        "insert into contacts (contact_id, email, first_name, owner_id) values"
        " ('c7', null, 'Gil', 'alice')"
    )
    key = add_action(con, "c7", "intro", T0)

    outbox.send(ws)

    row = action_rows(con)[key]
    assert (row["status"], row["error"]) == ("held", "contact has no email address")
    assert outbox.sink.messages == []


SMS_FILE = """\
name: smsfile
owner: alice
steps:
  - {id: ping, day: 1, action: sms, template: ping.txt.j2}
"""


def test_an_sms_from_a_template_file_sees_its_step_and_claims_under_its_own_id(outbox):
    """Sequence ``smsfile`` texts from the template file ``ping.txt.j2``:
    "{{ step.id }} for {{ contact.first_name }}". Row: c1 ping due. The gateway receives
    "ping for Ann". The claim records our Message-ID ``<sms-H@sequencer>`` (H: the first 32
    hex characters of sha256(key)), so an SMS left ``unknown`` by a crash can be traced; once
    the gateway answers with its id ("gw-1"), the action and its ``sms_sent`` activity carry
    that id."""
    import hashlib

    con = outbox.con
    ws = workspace_with(outbox, {"smsfile": SMS_FILE})
    (outbox.root / "ws" / "sequences" / "templates" / "ping.txt.j2").write_text(
        "{{ step.id }} for {{ contact.first_name }}\n"
    )
    key = add_action(con, "c1", "ping", T0, action="sms", sequence="smsfile")
    at_claim = []

    def hook(point: str, claimed: str) -> None:
        if point == "after_claim":
            at_claim.append(action_rows(con)[claimed]["message_id"])

    outbox.send(ws, faults=hook)

    assert statuses(con)[key] == "sent"
    [req] = outbox.gateway.requests
    assert req["json"]["body"] == "ping for Ann"
    assert at_claim == [f"<sms-{hashlib.sha256(key.encode()).hexdigest()[:32]}@sequencer>"]
    assert action_rows(con)[key]["message_id"] == "gw-1"
    assert con.execute("select message_id from activities where type = 'sms_sent'").fetchall() == [
        ("gw-1",)
    ]
