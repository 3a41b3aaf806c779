"""The send identifies an enrolment by (sequence, enrollment_id), never by the id alone.

``enrollment_id`` is ``sequence:contact_id``, and both may contain ``:`` (sequence ``a:b`` with
contact ``c``, sequence ``a`` with contact ``b:c``), so two enrolments of different sequences
can share it. The send must not take one's exit or thread for the other's.
"""

from __future__ import annotations

import datetime as dt

from pipelines.db import connect
from pipelines.outbox.send import send_due
from pipelines.workspace import load_workspace
from tests.delivery_fixtures import (
    ENV,
    add_action,
    seed_contacts,
    statuses,
    write_workspace,
)

T0 = dt.datetime(2026, 3, 2, 14, 30)


def outbox_with_twin(tmp_path, port: int):
    """Workspace: ``outbound`` and ``twin`` (the same steps). In both, c1's enrolment id is
    ``e-c1`` (the fixtures' ids carry no sequence: the collision in its plainest form)."""
    root = write_workspace(tmp_path / "ws", port)
    text = (root / "sequences" / "outbound.yaml").read_text()
    (root / "sequences" / "twin.yaml").write_text(text.replace("name: outbound", "name: twin"))
    con = connect(tmp_path / "db.duckdb")
    seed_contacts(con)
    return root, con


def enrol(con, sequence: str, status: str, reason: str | None) -> None:
    con.execute(
        "insert into enrollments (sequence, contact_id, enrollment_id, enrolled_on, enrolled_at,"
        " status, exit_reason) values (?, 'c1', 'e-c1', ?, ?, ?, ?)",
        [sequence, T0.date(), T0, status, reason],
    )


def test_another_sequence_exit_under_the_same_id_does_not_skip_the_send(tmp_path, smtp_sink):
    """c1 replied in ``twin`` (exited) and is active in ``outbound``; both ids are ``e-c1``.
    outbound's due intro is sent (1 message to ann@example.com), not skipped as exited."""
    root, con = outbox_with_twin(tmp_path, smtp_sink.port)
    enrol(con, "outbound", "active", None)
    enrol(con, "twin", "exited", "replied")
    key = add_action(con, "c1", "intro", T0)
    send_due(con, load_workspace(root), T0 + dt.timedelta(hours=1), env=ENV)
    assert statuses(con) == {key: "sent"}
    assert [m.rcpt_tos[0] for m in smtp_sink.messages] == ["ann@example.com"]
    con.close()


def test_a_reply_step_threads_only_on_its_own_sequence_emails(tmp_path, smtp_sink):
    """``twin`` sent c1 its intro (Message-ID <twin-intro@acme.example>, subject "Twin hello");
    outbound never sent c1 an intro. outbound's ``bump`` (thread: reply) therefore starts a new
    thread: no In-Reply-To, no References, and its own subject "unused", not "Re: Twin hello"."""
    root, con = outbox_with_twin(tmp_path, smtp_sink.port)
    enrol(con, "outbound", "active", None)
    enrol(con, "twin", "active", None)
    twin = add_action(con, "c1", "intro", T0, sequence="twin", status="sent")
    con.execute(
        "update actions set message_id = '<twin-intro@acme.example>', subject = 'Twin hello'"
        " where idempotency_key = ?",
        [twin],
    )
    bump = add_action(con, "c1", "bump", T0, day=3)
    send_due(con, load_workspace(root), T0 + dt.timedelta(hours=1), env=ENV)
    assert statuses(con)[bump] == "sent"
    (msg,) = [m.message for m in smtp_sink.messages]
    assert msg["In-Reply-To"] is None and msg["References"] is None
    assert msg["Subject"] == "unused"
    con.close()
