"""Manual enrolment (SPEC 6.2, 8 ``enroll``/``unenroll``), set-based over the given contacts.

``enroll`` records a pending request in ``manual_requests``; the sequence's next occurrence
at or after ``at`` enrols the contact "the same way, without the audience filter": never
enrolled in the sequence before, not unsubscribed or bounced, not matching an exit
condition, not active in an ``exclusive_with`` sequence, an email when the sequence has email
steps, duplicate emails. The tick marks the request ``enrolled`` or ``rejected`` (with the
rule it failed) — see ``sql/tick/int_entries.sql``.

``unenroll`` exits an active enrolment at ``at`` with reason ``manual`` and cancels pending
requests. It acts at ``at``, not at an occurrence: a later catch-up run does not revisit it.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from pipelines.db import transaction
from pipelines.errors import ConfigError, Location
from pipelines.instants import local_date, to_naive_utc
from pipelines.workspace import Workspace

_STATUS = """
with

given as (
    select distinct unnest($contact_ids::varchar[]) as contact_id
),

final as (
    select
        given.contact_id,
        case
            when contacts.contact_id is null then 'unknown_contact'
            when enrollments.status = 'active' then 'already_enrolled'
            when enrollments.status is not null then 'previously_enrolled'
            when pending.contact_id is not null then 'already_pending'
        end as outcome,
    from given
    left join contacts using (contact_id)
    left join enrollments
        on enrollments.sequence = $sequence and enrollments.contact_id = given.contact_id
    left join (
        select distinct contact_id from manual_requests
        where sequence = $sequence and status = 'pending'
    ) as pending on pending.contact_id = given.contact_id
)

select * from final
"""


def _sequence(ws: Workspace, sequence: str):
    seq = ws.sequences.get(sequence)
    if seq is None:
        raise ConfigError("unknown sequence", Location(sequence=sequence))
    return seq


def enroll(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    sequence: str,
    contact_ids: list[str],
    at: dt.datetime,
) -> dict[str, str]:
    """Request manual enrolment; return per contact what happened.

    Outcomes: ``pending`` (request recorded, resolved at the next occurrence),
    ``already_pending``, ``already_enrolled`` (active), ``previously_enrolled`` (a contact is
    never enrolled twice in a sequence), ``unknown_contact``.
    """
    _sequence(ws, sequence)
    at = to_naive_utc(at)
    with transaction(con):
        con.execute(
            f"create or replace temp table enroll_outcomes as {_STATUS}",
            {"sequence": sequence, "contact_ids": list(contact_ids)},
        )
        con.execute(
            """
            insert into manual_requests (sequence, contact_id, requested_at, status)
            select $sequence, contact_id, $at, 'pending'
            from enroll_outcomes where outcome is null
            """,
            {"sequence": sequence, "at": at},
        )
        rows = con.execute("select contact_id, outcome from enroll_outcomes").fetchall()
    return {cid: outcome or "pending" for cid, outcome in rows}


def unenroll(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    sequence: str,
    contact_ids: list[str],
    at: dt.datetime,
) -> dict[str, str]:
    """Exit active enrolments now (reason ``manual``); cancel pending requests.

    Outcomes: ``unenrolled``, ``request_cancelled``, ``not_enrolled`` (known contact, nothing
    active or pending), ``unknown_contact``.
    """
    seq = _sequence(ws, sequence)
    at = to_naive_utc(at)
    params = {
        "sequence": sequence,
        "contact_ids": list(contact_ids),
        "at": at,
        "on": local_date(at, seq.schedule.timezone),
    }
    with transaction(con):
        con.execute(
            f"create or replace temp table unenroll_outcomes as {_STATUS}",
            {"sequence": sequence, "contact_ids": list(contact_ids)},
        )
        con.execute(
            """
            update enrollments set
                status = 'exited', exit_reason = 'manual', exited_on = $on, exited_at = $at
            from unenroll_outcomes as given
            where enrollments.sequence = $sequence
              and enrollments.contact_id = given.contact_id
              and enrollments.status = 'active'
            """,
            {k: params[k] for k in ("sequence", "on", "at")},
        )
        con.execute(
            """
            update manual_requests set
                status = 'cancelled', reason = 'unenrolled', resolved_at = $at
            from unenroll_outcomes as given
            where manual_requests.sequence = $sequence
              and manual_requests.contact_id = given.contact_id
              and manual_requests.status = 'pending'
            """,
            {k: params[k] for k in ("sequence", "at")},
        )
        rows = con.execute("select contact_id, outcome from unenroll_outcomes").fetchall()
    mapping = {
        "already_enrolled": "unenrolled",
        "already_pending": "request_cancelled",
        "unknown_contact": "unknown_contact",
    }
    return {cid: mapping.get(outcome, "not_enrolled") for cid, outcome in rows}
