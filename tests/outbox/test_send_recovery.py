"""Recovery and output of the send (issue 9 items 5, 6, 8), through the real CLI with the real
SMTP sink: held actions requeued after a fix, problems grouped with counts, the deferred
backlog in the summary, ``--as-of`` on enroll/unenroll/tasks done, refused contacts exit 1."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.delivery_fixtures import ENV, add_action, key_of, statuses
from tests.outbox.test_outbox_rules import (
    HOUR,
    T0,
    outbox,  # noqa: F401  (the fixture)
)
from tests.outbox.test_send_hardening import cli

AS_OF = (T0 + HOUR).isoformat()
NO_SECRET = "tracking secret missing: set tracking.secret_env and its variable (TRACKING_SECRET)"


@pytest.fixture
def no_tracking_secret(monkeypatch):
    """Every secret of ENV but TRACKING_SECRET: the config mistake of the issue."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TRACKING_SECRET")
    return monkeypatch


def test_held_reasons_are_grouped_with_counts(outbox, no_tracking_secret, capsys):  # noqa: F811
    """Three intros (tracked) without TRACKING_SECRET: all three held for the same reason.
    The send prints ONE line for them, with the count, and no line per action anywhere
    (stdout or stderr)."""
    outbox.workspace()
    for contact in ("c1", "c3", "c4"):
        add_action(outbox.con, contact, "intro", T0)
    assert cli(outbox, "send", "--as-of", AS_OF) == 0
    out, err = capsys.readouterr()
    assert f"  held 3: {NO_SECRET}" in out.splitlines()
    assert key_of("c1", "intro") not in out + err
    assert err.count(NO_SECRET) == 0 and out.count(NO_SECRET) == 1


def test_requeue_held_after_the_fix_sends_them_once(outbox, no_tracking_secret, capsys):  # noqa: F811
    """Held for the missing secret: c1's and c3's intros and c4's ``html`` email. The operator
    sets the secret and requeues ``--step intro`` only: 2 requeued, c4's html stays held. The
    next send sends exactly c1 and c3; a second requeue finds nothing, a later send sends
    nothing more."""
    outbox.workspace()
    k1 = add_action(outbox.con, "c1", "intro", T0)
    k3 = add_action(outbox.con, "c3", "intro", T0)
    k4 = add_action(outbox.con, "c4", "html", T0, day=8)
    outbox.con.execute("update actions set status = 'held', error = ?", [NO_SECRET])
    no_tracking_secret.setenv("TRACKING_SECRET", ENV["TRACKING_SECRET"])
    assert cli(outbox, "send", "--requeue-held", "--sequence", "outbound", "--step", "intro") == 0
    assert "requeued 2 held action(s)" in capsys.readouterr().out
    assert statuses(outbox.con) == {k1: "deferred", k3: "deferred", k4: "held"}
    assert cli(outbox, "send", "--as-of", AS_OF) == 0
    assert statuses(outbox.con) == {k1: "sent", k3: "sent", k4: "held"}
    assert sorted(m.rcpt_tos[0] for m in outbox.sink.messages) == [
        "ann@example.com",
        "cy@example.com",
    ]
    assert cli(outbox, "send", "--requeue-held", "--step", "intro") == 0
    assert "requeued 0 held action(s)" in capsys.readouterr().out
    assert cli(outbox, "send", "--as-of", AS_OF) == 0
    assert len(outbox.sink.messages) == 2


def test_requeue_a_day_later_is_not_expired(outbox, no_tracking_secret):  # noqa: F811
    """The fix took two days: the requeued intro goes out rather than expiring as stale (it
    was held by a config mistake, not by a late run)."""
    outbox.workspace()
    key = add_action(outbox.con, "c1", "intro", T0)
    outbox.con.execute("update actions set status = 'held', error = ?", [NO_SECRET])
    no_tracking_secret.setenv("TRACKING_SECRET", ENV["TRACKING_SECRET"])
    assert cli(outbox, "send", "--requeue-held") == 0
    assert cli(outbox, "send", "--as-of", (T0 + dt.timedelta(days=2)).isoformat()) == 0
    assert statuses(outbox.con) == {key: "sent"}


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_requeue_held_is_for_the_operator_or_an_admin(outbox, capsys, user):  # noqa: F811
    outbox.workspace()
    key = add_action(outbox.con, "c1", "intro", T0, status="held")
    assert cli(outbox, "send", "--requeue-held", "--user", user) == 4
    assert "operator or an admin" in capsys.readouterr().err
    assert statuses(outbox.con) == {key: "held"}


def test_the_summary_shows_the_deferred_backlog(outbox, no_tracking_secret, capsys):  # noqa: F811
    """alice's limit is 1; c1 and c3 were deferred by an earlier send, c4 is due now. This
    send sends c1 (deferred first); c3 stays deferred and c4 is newly deferred: the summary
    says ``deferred 1 (backlog 2)``, the backlog being every action deferred after the send."""
    no_tracking_secret.setenv("TRACKING_SECRET", ENV["TRACKING_SECRET"])
    outbox.workspace(alice_limit=1)
    add_action(outbox.con, "c1", "intro", T0, status="deferred")
    add_action(outbox.con, "c3", "intro", T0, status="deferred")
    add_action(outbox.con, "c4", "intro", T0 + HOUR / 2)
    assert cli(outbox, "send", "--as-of", AS_OF) == 0
    summary = capsys.readouterr().out.splitlines()[0]
    assert "sent 1" in summary and "deferred 1 (backlog 2)" in summary


# --- enroll / unenroll / tasks done: --as-of, and refusals exit 1 --------------------------


def test_enroll_and_unenroll_stamp_their_as_of(outbox, capsys):  # noqa: F811
    outbox.workspace()
    at = "2026-03-02T10:00:00Z"
    assert cli(outbox, "enroll", "outbound", "c1", "--as-of", at) == 0
    requested = outbox.con.execute("select requested_at from manual_requests").fetchone()[0]
    assert requested == dt.datetime(2026, 3, 2, 10, 0)
    assert cli(outbox, "unenroll", "outbound", "c1", "--as-of", "2026-03-02T11:00:00Z") == 0
    resolved = outbox.con.execute("select status, resolved_at from manual_requests").fetchone()
    assert resolved == ("cancelled", dt.datetime(2026, 3, 2, 11, 0))


def test_enroll_of_an_unknown_contact_exits_1_after_printing_every_outcome(outbox, capsys):  # noqa: F811
    outbox.workspace()
    assert cli(outbox, "enroll", "outbound", "c1", "C99999", "--as-of", AS_OF) == 1
    out, err = capsys.readouterr()
    assert "pending" in out and "unknown_contact" in out
    assert "1 contact(s) refused" in err
    assert outbox.con.execute("select contact_id from manual_requests").fetchall() == [("c1",)]
    assert cli(outbox, "unenroll", "outbound", "C99999", "--as-of", AS_OF) == 1


def test_tasks_done_stamps_its_as_of(outbox):  # noqa: F811
    outbox.workspace()
    key = add_action(outbox.con, "c1", "call", T0, action="call_reminder", day=5)
    assert cli(outbox, "send", "--as-of", AS_OF) == 0
    assert cli(outbox, "tasks", "done", key, "--as-of", "2026-03-03T09:00:00Z") == 0
    row = outbox.con.execute(
        "select t.done_at, a.occurred_at from tasks as t join activities as a"
        " on a.activity_id = 'task_completed:' || t.task_id"
    ).fetchone()
    assert row == (dt.datetime(2026, 3, 3, 9, 0), dt.datetime(2026, 3, 3, 9, 0))
