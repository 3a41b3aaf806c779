"""The set-based phases of a send, one statement each over the ``actions`` table. Each sees
only actions whose occurrence has come (``occurrence_at <= as_of``): a send never acts early.

1. *expire* — ``due`` emails/SMS older than their sequence's ``stale_after_hours``;
2. *opt-outs* — emails/SMS to contacts unsubscribed (or bounced, for email) since the tick
   decided them become ``skipped``; so do actions whose step left the sequence file;
3. *limits* — ``sql/send/int_send_batch.sql`` ranks every sender's emails (deferred oldest
   first, then due oldest first) and one UPDATE defers what exceeds today's daily limit, the
   emails an owner's weekend holds (``exclude_weekends``) and the emails and SMS outside the
   recipient's send window (SPEC 11);
4. *batch* — one query for the actions, one for their contacts, accounts and email history.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from pipelines import sqlrun
from pipelines.instants import local_date, local_day_bounds
from pipelines.models import SendWindow, Sequence, User
from pipelines.workspace import Workspace


def load_workspace_tables(con: duckdb.DuckDBPyConnection, ws: Workspace, as_of: dt.datetime):
    """Temp tables the set-based SQL joins: steps with senders and staleness, user limits."""
    con.execute(
        "create or replace temp table _send_steps (sequence varchar, step varchar,"
        " action varchar, sender_id varchar, stale_hours double, weekend_hold boolean,"
        " window_from integer, window_to integer, window_days integer[], window_tz varchar,"
        " owner_tz varchar)"
    )
    con.execute(
        "create or replace temp table _send_limits (sender_id varchar, daily_limit bigint,"
        " day_start timestamp, day_end timestamp)"
    )
    steps = [
        (
            seq.name,
            s.id,
            s.action,
            seq.owner if s.from_ == "owner" else s.from_,
            seq.stale_after_hours,
            weekend_hold(ws, seq, as_of),
            *_window(ws, seq),
        )
        for seq in ws.sequences.values()
        for s in seq.steps
    ]
    if steps:
        con.executemany("insert into _send_steps values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", steps)
    limits = [(u.id, u.daily_email_limit, *_local_day(u, as_of)) for u in ws.users.users]
    if limits:
        con.executemany("insert into _send_limits values (?, ?, ?, ?)", limits)


def weekend_hold(ws: Workspace, seq: Sequence, as_of: dt.datetime) -> bool:
    """SPEC 11: a sequence with ``exclude_weekends`` sends no email on its owner's Saturday or
    Sunday (the owner's timezone, else the schedule's), deferred ones included."""
    if not seq.schedule.exclude_weekends:
        return False
    return local_date(as_of, owner_timezone(ws, seq)).weekday() >= 5


def send_window(ws: Workspace, seq: Sequence) -> SendWindow | None:
    """The sequence's send window: its own, else users.yaml's default, else none."""
    return seq.send_window or ws.users.send_window


def owner_timezone(ws: Workspace, seq: Sequence) -> str:
    """The owner's timezone (users.yaml), else the schedule's."""
    owner = ws.users.user(seq.owner)
    return owner.timezone if owner and owner.timezone else seq.schedule.timezone


def _window(ws: Workspace, seq: Sequence) -> tuple:
    """_send_steps' window columns: [from, to) in local minutes, ISO weekdays, whose
    timezone (``contact`` or ``owner``) and the owner's; all null without a window."""
    window = send_window(ws, seq)
    if window is None:
        return (None, None, None, None, owner_timezone(ws, seq))
    return (*window.minutes, window.isodows, window.timezone, owner_timezone(ws, seq))


def _local_day(user: User, as_of: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """UTC bounds of the user's local calendar day that contains ``as_of``."""
    return local_day_bounds(as_of, user.timezone)


def expire(con: duckdb.DuckDBPyConnection, as_of: dt.datetime) -> int:
    """``due`` emails/SMS older than the sequence's stale_after_hours (default 24) expire.
    Deferred actions do not: the daily limit deferred them, not a late run."""
    return _changed(
        con,
        """
        update actions as a
        set status = 'expired', finished_at = $as_of,
            error = 'stale: occurrence older than stale_after_hours at send time'
        where a.status = 'due' and a.action in ('email', 'sms') and a.occurrence_at <= $as_of
          and a.occurrence_at + to_seconds(3600 * coalesce(
                (select max(s.stale_hours) from _send_steps as s
                 where s.sequence = a.sequence), 24)) < $as_of
        returning idempotency_key
        """,
        {"as_of": as_of},
    )


def _changed(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> int:
    """Run an UPDATE ... RETURNING and count the rows it changed."""
    return len(con.execute(sql, params).fetchall())


def skip_unsendable(con: duckdb.DuckDBPyConnection, as_of: dt.datetime) -> int:
    """Skip actions whose step left the sequence file, whose enrolment exited since the tick
    decided them (replied, unsubscribed, bounced, condition, manual — a deferred email must
    not reach someone who replied meanwhile), and emails/SMS to an address that unsubscribed
    (or, for email, bounced): any contact with the same lower(email) counts."""
    return len(
        con.execute(
            """
            with suppressed_emails as (
                select distinct lower(c.email) as email_key, v.type
                from activities as v
                join contacts as c on c.contact_id = v.contact_id
                where v.occurred_at <= $as_of
                  and v.type in ('unsubscribed', 'email_complained', 'email_bounced')
                  and c.email is not null
                union
                select distinct lower(email), 'unsubscribed' from contacts
                where coalesce(unsubscribed, false) and email is not null
            ),
            reasons as (
                select
                    a.idempotency_key,
                    case
                        when not exists (select 1 from _send_steps as s
                                         where s.sequence = a.sequence and s.step = a.step)
                            then 'step no longer in the sequence file'
                        when e.status = 'exited' and e.exit_reason <> 'completed'
                            then 'enrolment exited (' || e.exit_reason || ') before send'
                        when a.action in ('email', 'sms') and exists (
                            select 1 from suppressed_emails as x
                            where x.email_key = lower(c.email)
                              and (x.type <> 'email_bounced' or a.action = 'email'))
                            then 'contact unsubscribed or bounced before send'
                    end as reason,
                from actions as a
                left join enrollments as e
                    on e.sequence = a.sequence and e.enrollment_id = a.enrollment_id
                left join contacts as c on c.contact_id = a.contact_id
                where a.status in ('due', 'deferred') and a.occurrence_at <= $as_of
            )
            update actions as a
            set status = 'skipped', finished_at = $as_of, error = reasons.reason
            from reasons
            where reasons.idempotency_key = a.idempotency_key and reasons.reason is not null
            returning a.idempotency_key
            """,
            {"as_of": as_of},
        ).fetchall()
    )


WEEKEND_NOTE = "exclude_weekends: waits for the owner's next weekday"
WINDOW_NOTE = "send_window: outside the recipient's local sending hours; waits for them"
LIMIT_NOTE = "daily email limit reached; sent first on the next local day"


def apply_limits(con: duckdb.DuckDBPyConnection, as_of: dt.datetime) -> int:
    """Rank the batch (sql/send/int_send_batch.sql) of the actions whose occurrence has come;
    defer every email beyond its sender's limit, every due email a weekend holds and every
    email or SMS outside its send window. A deferred action still waiting gets the current
    reason when the window is or was it (other reasons keep their text, e.g. a requeue's);
    the count is of the actions deferred now (due before)."""
    sqlrun.materialize(
        con, "_send_batch", sqlrun.render("send/int_send_batch.sql"), {"as_of": as_of}
    )
    con.execute(
        """
        update actions as a set status = 'deferred', finished_at = null,
            error = case when b.weekend_hold then $weekend
                         when b.window_hold then $window else $limit end
        from _send_batch as b
        where a.status in ('due', 'deferred') and b.idempotency_key = a.idempotency_key
          and not b.within_limit
          and (a.status = 'due'  -- a waiting one: when the window is, or was, the reason
               or (b.window_hold and not b.weekend_hold and a.error is distinct from $window)
               or (not b.window_hold and a.error = $window))
        """,
        {"weekend": WEEKEND_NOTE, "window": WINDOW_NOTE, "limit": LIMIT_NOTE},
    )
    return con.execute(
        "select count(*) from _send_batch where status = 'due' and not within_limit"
    ).fetchone()[0]


def fetch_batch(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return sqlrun.dicts(
        con.execute(
            """
            select a.*,
            from actions as a
            inner join _send_batch as b using (idempotency_key)
            where b.within_limit and a.status in ('due', 'deferred')
            order by a.status = 'deferred' desc, a.occurrence_at, a.idempotency_key
            """
        )
    )


def fetch_records(con: duckdb.DuckDBPyConnection) -> tuple[dict, dict, dict]:
    """Contacts, accounts and sent-email history of the batch, three queries in all."""
    contacts = {
        r["contact_id"]: r
        for r in sqlrun.dicts(
            con.execute(
                "select c.* from contacts as c where c.contact_id in"
                " (select a.contact_id from actions as a"
                "  inner join _send_batch as b using (idempotency_key))"
            )
        )
    }
    accounts = {
        r["account_id"]: r
        for r in sqlrun.dicts(
            con.execute(
                "select a.* from accounts as a where a.account_id in"
                " (select c.account_id from contacts as c where c.contact_id in"
                "  (select a.contact_id from actions as a"
                "   inner join _send_batch as b using (idempotency_key)))"
            )
        )
    }
    history: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in sqlrun.dicts(
        con.execute(
            "select sequence, enrollment_id, step, message_id, subject from actions"
            " where action = 'email' and status = 'sent' and message_id is not null"
            " and (sequence, enrollment_id) in (select (a.sequence, a.enrollment_id)"
            "  from actions as a inner join _send_batch as b using (idempotency_key))"
        )
    ):
        history.setdefault(enrolment(r), {})[r["step"]] = r
    return contacts, accounts, history


def enrolment(row: dict) -> tuple[str, str]:
    """An enrolment's identity: ``enrollment_id`` alone can collide across sequences (``a:b``
    + contact ``c`` and ``a`` + contact ``b:c``), so the sequence always goes with it."""
    return row["sequence"], row["enrollment_id"]
