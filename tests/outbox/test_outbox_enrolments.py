"""The send identifies an enrolment by (sequence, enrollment_id), never by the id alone.

``enrollment_id`` is ``sequence:contact_id``, and both may contain ``:`` (sequence ``a:b`` with
contact ``c``, sequence ``a`` with contact ``b:c``), so two enrolments of different sequences
can share it. The send must not take one's exit or thread for the other's. In the fixtures the
ids carry no sequence at all (``e-c1`` in every sequence): the collision in its plainest form.
"""

from __future__ import annotations

from pipelines.workspace import Workspace
from tests.delivery_fixtures import SEQUENCE, add_action, statuses
from tests.outbox.test_outbox_rules import (
    MINUTE,
    T0,
    Outbox,
    outbox,  # noqa: F401  (the fixture)
)
from tests.outbox.test_outbox_survivors import workspace_with


def with_twin(outbox: Outbox) -> Workspace:  # noqa: F811
    """``outbound`` and ``twin``: the same steps under another name."""
    twin = SEQUENCE.format(stale=24).replace("name: outbound", "name: twin")
    return workspace_with(outbox, {"twin": twin})


def enrol(outbox: Outbox, sequence: str, status: str, reason: str | None) -> None:  # noqa: F811
    outbox.con.execute(
        "insert into enrollments (sequence, contact_id, enrollment_id, enrolled_on, enrolled_at,"
        " status, exit_reason) values (?, 'c1', 'e-c1', ?, ?, ?, ?)",
        [sequence, T0.date(), T0, status, reason],
    )


def test_another_sequence_exit_under_the_same_id_does_not_skip_the_send(outbox):  # noqa: F811
    """c1 replied in ``twin`` (exited) and is active in ``outbound``; both ids are ``e-c1``.
    outbound's due intro is sent (1 message to ann@example.com), not skipped as exited."""
    ws = with_twin(outbox)
    enrol(outbox, "outbound", "active", None)
    enrol(outbox, "twin", "exited", "replied")
    key = add_action(outbox.con, "c1", "intro", T0)
    outbox.send(ws)
    assert statuses(outbox.con) == {key: "sent"}
    assert [m.rcpt_tos[0] for m in outbox.sink.messages] == ["ann@example.com"]


def test_a_reply_step_threads_only_on_its_own_sequence_emails(outbox):  # noqa: F811
    """``twin`` sent c1 its intro (Message-ID <twin-intro@acme.example>, subject "Twin hello");
    outbound never sent c1 an intro. outbound's ``bump`` (thread: reply) therefore starts a new
    thread: no In-Reply-To, no References, and its own subject "unused", not "Re: Twin hello"."""
    ws = with_twin(outbox)
    enrol(outbox, "outbound", "active", None)
    enrol(outbox, "twin", "active", None)
    twin = add_action(outbox.con, "c1", "intro", T0, sequence="twin", status="sent")
    outbox.set_row(twin, message_id="<twin-intro@acme.example>", subject="Twin hello")
    bump = add_action(outbox.con, "c1", "bump", T0, day=3)
    outbox.send(ws)
    assert statuses(outbox.con)[bump] == "sent"
    (msg,) = [m.message for m in outbox.sink.messages]
    assert msg["In-Reply-To"] is None and msg["References"] is None
    assert msg["Subject"] == "unused"


def test_a_reply_step_does_not_thread_on_another_sequence_email_of_the_same_send(outbox):  # noqa: F811
    """In ONE send: ``twin``'s intro to c1 (decided 14:30) goes first, then outbound's
    ``bump`` (14:31, thread: reply; outbound never sent c1 an intro). The send remembers what it
    sent per enrolment as it goes: bump must not take twin's intro as its thread. Expected: two
    messages to ann@example.com; bump's has no In-Reply-To and its own subject "unused"."""
    ws = with_twin(outbox)
    enrol(outbox, "outbound", "active", None)
    enrol(outbox, "twin", "active", None)
    add_action(outbox.con, "c1", "intro", T0, sequence="twin")
    bump = add_action(outbox.con, "c1", "bump", T0 + MINUTE, day=3)
    outbox.send(ws)
    assert statuses(outbox.con)[bump] == "sent"
    first, second = [m.message for m in outbox.sink.messages]
    assert first["Subject"] != "unused"
    assert second["In-Reply-To"] is None and second["Subject"] == "unused"
