"""Derived contact properties (SPEC 5) as of any instant, from ``sql/int_contact_properties.sql``.

``contact_state_sql`` is the relation every condition is evaluated over: contacts with their
derived properties, where a contact without activity is 'Not yet contacted'.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from pipelines import sqlrun


def contact_properties(
    con: duckdb.DuckDBPyConnection, as_of: dt.datetime
) -> duckdb.DuckDBPyRelation:
    """The derived properties of every contact with activity at or before ``as_of`` (UTC)."""
    return con.sql(sqlrun.render("int_contact_properties.sql"), params={"as_of": as_of})


def materialize_contact_state(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.datetime,
    *,
    table: str = "contact_state",
    contact_id: str | None = None,
) -> None:
    """Create temp table ``table``: every contact row plus its derived properties at ``as_of``.

    ``sequences`` (the sequences the contact is active in) is filled from ``enrollments``;
    callers that evaluate several occurrences at once recompute it per occurrence. With
    ``contact_id`` (``sequencer why``) only that contact's row, and ``sequences`` as of
    ``as_of`` too: the enrolments entered at or before it and not exited by then.
    """
    properties = sqlrun.render("int_contact_properties.sql")
    active = "status = 'active'"
    only = ""
    if contact_id is not None:
        active = "enrolled_at <= $as_of and (exited_at is null or exited_at > $as_of)"
        only = "where contacts.contact_id = $contact_id"
    sqlrun.run(
        con,
        f"""
        create or replace temp table {table} as
        with properties as ({properties}),
        active as (
            select contact_id, list(sequence order by sequence) as sequences
            from enrollments where {active} group by contact_id
        )
        select
            contacts.*,
            properties.last_activity_type,
            properties.last_activity_at,
            coalesce(properties.last_contacted_mode, 'Not yet contacted') as last_contacted_mode,
            properties.last_contacted_at,
            coalesce(active.sequences, []::varchar[]) as sequences,
        from contacts
        left join properties using (contact_id)
        left join active using (contact_id)
        {only}
        """,
        {"as_of": as_of, "contact_id": contact_id},
    )
