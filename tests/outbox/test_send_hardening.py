"""Send hardening (issue 9): never early, weekends hold deferred emails, held actions can be
requeued after a fix, and the send's output groups its problems.

Times as in test_outbox_rules: T0 = Monday 2026-03-02 14:30Z (09:30 New York for alice, the
owner of ``outbound``). Each test drives the real CLI (``pipelines.cli.main``) against a DuckDB
file and the real SMTP sink of the ``outbox`` fixture.
"""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.cli import main
from pipelines.db import connect
from tests.delivery_fixtures import ENV, add_action, statuses
from tests.outbox.test_outbox_rules import (
    DAY,
    HOUR,
    T0,
    Outbox,
    outbox,  # noqa: F401  (the fixture)
)

FRIDAY = T0 + 4 * DAY  # 2026-03-06 14:30Z, 09:30 Friday New York
WEEKEND_SEQUENCE = "schedule:\n  timezone: America/New_York\n  exclude_weekends: true\n"


def cli(outbox: Outbox, *argv: str) -> int:  # noqa: F811
    """Run ``sequencer`` on the fixture's workspace and database (closing the test's
    connection meanwhile: one writer per file), then reopen it."""
    outbox.con.close()
    try:
        return main([*argv, "--project", str(outbox.root / "ws"), "--db", db_file(outbox)])
    finally:
        outbox.con = connect(db_file(outbox))


def db_file(outbox: Outbox) -> str:  # noqa: F811
    return str(outbox.root / "db.duckdb")


@pytest.fixture
def secrets(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


# --- item 5: send never acts early --------------------------------------------------------


def test_send_never_executes_an_action_of_a_later_occurrence(outbox, secrets, capsys):  # noqa: F811
    """A typo ticked 2027-06-01: c1's intro was decided for that occurrence. A send at
    2026-03-02 15:30Z must not send it (nothing reaches the sink, the action stays ``due``,
    not deferred, skipped or expired); the send at 2027-06-01 15:30Z sends it."""
    outbox.workspace()
    later = dt.datetime(2027, 6, 1, 13, 30)
    key = add_action(outbox.con, "c1", "intro", later)
    assert cli(outbox, "send", "--as-of", "2026-03-02T15:30:00Z") == 0
    assert outbox.sink.messages == [] and statuses(outbox.con) == {key: "due"}
    assert "sent 0" in capsys.readouterr().out
    assert cli(outbox, "send", "--as-of", "2027-06-01T15:30:00Z") == 0
    assert [m.rcpt_tos[0] for m in outbox.sink.messages] == ["ann@example.com"]
    assert statuses(outbox.con) == {key: "sent"}


def test_an_early_send_neither_skips_nor_defers_a_later_action(outbox, secrets):  # noqa: F811
    """alice's limit is 1 and c1 unsubscribed at T0; c1's and c3's intros belong to a later
    occurrence (T0 + 1 day). A send at T0 + 1 h leaves both ``due``: skipping (c1) and
    deferring (c3 beyond the limit) are decisions of the send at their occurrence."""
    outbox.workspace(alice_limit=1)
    k1 = add_action(outbox.con, "c1", "intro", T0 + DAY)
    k3 = add_action(outbox.con, "c3", "intro", T0 + DAY)
    k4 = add_action(outbox.con, "c4", "intro", T0 + DAY)
    outbox.con.execute("update contacts set unsubscribed = true where contact_id = 'c1'")
    assert cli(outbox, "send", "--as-of", (T0 + HOUR).isoformat()) == 0
    assert statuses(outbox.con) == {k1: "due", k3: "due", k4: "due"}
    assert outbox.sink.messages == []


# --- item 5: deferred emails wait for a weekday under exclude_weekends --------------------


def weekend_workspace(outbox: Outbox, limit: int):  # noqa: F811
    outbox.workspace(alice_limit=limit)
    path = outbox.root / "ws" / "sequences" / "outbound.yaml"
    path.write_text(path.read_text().replace("steps:\n", WEEKEND_SEQUENCE + "steps:\n", 1))


def test_limit_deferred_emails_wait_over_the_weekend(outbox, secrets):  # noqa: F811
    """alice's limit is 1, ``outbound`` excludes weekends. Friday: c1's and c3's intros are
    due, c1 goes, c3 is deferred. Saturday 15:30Z (10:30 New York): c3 stays deferred and
    nothing is sent; Sunday too; Monday 15:30Z it is sent."""
    weekend_workspace(outbox, limit=1)
    k1 = add_action(outbox.con, "c1", "intro", FRIDAY)
    k3 = add_action(outbox.con, "c3", "intro", FRIDAY)
    assert cli(outbox, "send", "--as-of", (FRIDAY + HOUR).isoformat()) == 0
    assert statuses(outbox.con) == {k1: "sent", k3: "deferred"}
    for day in (1, 2):  # Saturday, Sunday
        assert cli(outbox, "send", "--as-of", (FRIDAY + day * DAY + HOUR).isoformat()) == 0
        assert statuses(outbox.con) == {k1: "sent", k3: "deferred"}
    assert len(outbox.sink.messages) == 1
    assert cli(outbox, "send", "--as-of", (FRIDAY + 3 * DAY + HOUR).isoformat()) == 0
    assert statuses(outbox.con) == {k1: "sent", k3: "sent"}
    assert [m.rcpt_tos[0] for m in outbox.sink.messages] == ["ann@example.com", "cy@example.com"]


def test_a_due_email_found_on_a_weekend_is_deferred_not_sent_nor_expired(outbox, secrets):  # noqa: F811
    """Friday's intro to c1 was not sent on Friday (no send ran). The Saturday send defers it
    (the weekend holds it, naming the rule) instead of sending it: Saturday 10:30Z is 05:30
    in New York, 20 h after the occurrence, so it is not yet stale. The Monday send, more than
    24 h after its occurrence, sends it rather than expiring it (it waited for the rule)."""
    weekend_workspace(outbox, limit=500)
    key = add_action(outbox.con, "c1", "intro", FRIDAY)
    assert cli(outbox, "send", "--as-of", (FRIDAY + 20 * HOUR).isoformat()) == 0
    row = outbox.con.execute("select status, error from actions").fetchone()
    assert row[0] == "deferred" and "weekend" in row[1]
    assert outbox.sink.messages == []
    assert cli(outbox, "send", "--as-of", (FRIDAY + 3 * DAY + HOUR).isoformat()) == 0
    assert statuses(outbox.con) == {key: "sent"}


def test_without_exclude_weekends_a_deferred_email_goes_out_on_saturday(outbox, secrets):  # noqa: F811
    """The same rows on ``outbound`` as shipped (no exclude_weekends): Saturday sends c3."""
    outbox.workspace(alice_limit=1)
    add_action(outbox.con, "c1", "intro", FRIDAY)
    k3 = add_action(outbox.con, "c3", "intro", FRIDAY)
    assert cli(outbox, "send", "--as-of", (FRIDAY + HOUR).isoformat()) == 0
    assert cli(outbox, "send", "--as-of", (FRIDAY + DAY + HOUR).isoformat()) == 0
    assert statuses(outbox.con)[k3] == "sent"


def test_after_a_tick_run_ahead_an_earlier_send_sends_nothing(outbox, secrets, capsys):  # noqa: F811
    """The issue's case end to end through the CLI: c1 is enrolled by hand, then a typo ticks
    ``run --as-of 2026-06-01T12:00Z`` (meant: 03-02); the tick decides c1's intro for the
    06-01 occurrence (09:00 UTC). ``send --as-of 2026-03-03T12:00Z`` sends nothing and the
    intro stays due; ``send --as-of 2026-06-01T12:00Z`` sends it."""
    outbox.workspace()
    assert cli(outbox, "enroll", "outbound", "c1", "--as-of", "2026-03-01T12:00:00Z") == 0
    assert cli(outbox, "run", "--as-of", "2026-06-01T12:00:00Z") == 0
    (key, at) = outbox.con.execute(
        "select idempotency_key, occurrence_at from actions where step = 'intro'"
    ).fetchone()
    assert at == dt.datetime(2026, 6, 1, 9, 0)
    assert cli(outbox, "send", "--as-of", "2026-03-03T12:00:00Z") == 0
    assert outbox.sink.messages == [] and statuses(outbox.con)[key] == "due"
    assert cli(outbox, "send", "--as-of", "2026-06-01T12:00:00Z") == 0
    assert [m.rcpt_tos[0] for m in outbox.sink.messages] == ["ann@example.com"]
    assert statuses(outbox.con)[key] == "sent"
