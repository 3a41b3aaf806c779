"""``preview SEQUENCE``: the audience and what each condition keeps, without writing anything.

Conditions are evaluated over the same aliases the tick uses (``contact``, ``account``,
``occurrence``), on a connection locked against file access, at a chosen instant.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb

from pipelines import sqlrun
from pipelines.compile.sequence import CompiledSequence
from pipelines.instants import local_date
from pipelines.tick.properties import materialize_contact_state


@dataclass
class AudiencePreview:
    sequence: str
    record: str
    occurrence_at: dt.datetime
    occurrence_on: dt.date
    contacts: int
    audience: int | None
    kept_by: dict[str, int] = field(default_factory=dict)
    sample: list[dict] = field(default_factory=list)
    # audience members by outcome at the next occurrence (entry_gap); empty when not known
    gap: dict[str, int] = field(default_factory=dict)


def _frame(record: str, contacts: str = "contact_state") -> str:
    """The FROM clause every audience condition is evaluated in."""
    join = "join" if record == "account" else "left join"
    return f"""
        from {contacts} as contact
        {join} accounts as account on account.account_id = contact.account_id
        cross join (select $occurrence_at as occurrence_at, $occurrence_on as occurrence_on)
            as occurrence
        where (contact.created_at is null or contact.created_at <= occurrence.occurrence_at)
    """


def audience_conditions(compiled: CompiledSequence) -> list[tuple[str, str]]:
    """(label, SQL) of each view and each ``where`` line, as preview and ``why`` print them."""
    labelled = [(f"view {name}", c.sql) for name, c in compiled.views.items()]
    return labelled + [(f"where: {c.source}", c.sql) for c in compiled.where]


def contact_conditions(
    con: duckdb.DuckDBPyConnection,
    compiled: CompiledSequence,
    occurrence_at: dt.datetime,
    contact_id: str,
    table: str,
) -> dict[str, bool | None]:
    """The value of each audience condition (and ``audience``) for one contact of ``table``
    (its state at ``occurrence_at``): the per-condition evaluation of :func:`preview_audience`
    for one row. Empty when the contact did not exist at that instant."""
    labelled = audience_conditions(compiled)
    audience = compiled.audience_sql or "false"
    values = [f"coalesce(({sql_}), false)" for _, sql_ in labelled] + [
        f"coalesce({audience}, false)"
    ]
    params = {
        "occurrence_at": occurrence_at,
        "occurrence_on": local_date(occurrence_at, compiled.sequence.schedule.timezone),
        "contact_id": contact_id,
    }
    features = compiled.activity_features("audience")
    if features:  # the activity functions' columns, as the tick adds them
        sql = sqlrun.render("tick/int_contact_activity.sql", relation=table, features=features)
        sqlrun.materialize(con, f"{table}_activity", sql, params)
        table = f"{table}_activity"
    row = con.execute(
        f"select {', '.join(values)} {_frame(compiled.sequence.audience.record, table)}"
        " and contact.contact_id = $contact_id",
        params,
    ).fetchone()
    if row is None:
        return {}
    return {**{label: row[i] for i, (label, _) in enumerate(labelled)}, "audience": row[-1]}


def _contacts(con, compiled: CompiledSequence, params: dict) -> str:
    """The contacts with their derived properties at the occurrence (and the columns of the
    activity functions the audience calls, as the tick adds them); the table's name."""
    materialize_contact_state(con, params["occurrence_at"])
    features = compiled.activity_features("audience")
    if not features:
        return "contact_state"
    sql = sqlrun.render(
        "tick/int_contact_activity.sql", relation="contact_state", features=features
    )
    sqlrun.materialize(con, "contact_state_activity", sql, params)
    return "contact_state_activity"


def preview_audience(
    con: duckdb.DuckDBPyConnection,
    compiled: CompiledSequence,
    occurrence_at: dt.datetime,
    *,
    sample_size: int = 10,
) -> AudiencePreview:
    """Count the audience at ``occurrence_at`` (naive UTC) and how many each condition keeps."""
    seq = compiled.sequence
    local_on = local_date(occurrence_at, seq.schedule.timezone)
    params = {"occurrence_at": occurrence_at, "occurrence_on": local_on}
    frame = _frame(seq.audience.record, _contacts(con, compiled, params))
    labelled = audience_conditions(compiled)
    audience = compiled.audience_sql
    counts = [f"count(*) filter (where {sql_}) as c{i}" for i, (_, sql_) in enumerate(labelled)]
    counts.append(f"count(*) filter (where {audience or 'false'}) as audience")
    row = con.execute(
        f"select count(*) as contacts, {', '.join(counts)} {frame}", params
    ).fetchone()
    sample = []
    if audience:
        cursor = con.execute(
            f"""select contact.contact_id, contact.email, contact.first_name, contact.last_name,
                       account.name as account {frame} and ({audience})
                order by contact.contact_id limit {int(sample_size)}""",
            params,
        )
        sample = sqlrun.dicts(cursor)
    return AudiencePreview(
        sequence=seq.name,
        record=seq.audience.record,
        occurrence_at=occurrence_at,
        occurrence_on=local_on,
        contacts=row[0],
        audience=row[-1] if audience else None,
        kept_by={label: row[i + 1] for i, (label, _) in enumerate(labelled)},
        sample=sample,
    )


# The outcomes an audience member can have at an occurrence, in int_entries.sql's order of
# reasons; `enters` last. "already"/"previously" enrolled: enrolled before the occurrence
# and still active / exited after it (an exit at that very occurrence counts as previously).
GAP_ORDER = (
    "already_enrolled", "previously_enrolled", "unsubscribed", "bounced", "exit_condition",
    "exclusive_with", "no_email", "duplicate_email", "before_starts_on", "other", "enters",
)  # fmt: skip


def entry_gap(
    con: duckdb.DuckDBPyConnection, compiled: CompiledSequence, occurrence_at: dt.datetime
) -> dict[str, int]:
    """How many audience members (``contact_state``, as :func:`preview_audience` left it) got
    each outcome at the occurrence just processed in this transaction: set-based, from the
    ``reason`` column int_entries.sql wrote to ``tick_entries``. Empty without an audience."""
    seq = compiled.sequence
    if not compiled.audience_sql:
        return {}
    local_on = local_date(occurrence_at, seq.schedule.timezone)
    params = {"occurrence_at": occurrence_at, "occurrence_on": local_on, "sequence": seq.name}
    audience = compiled.audience_sql
    contacts = "contact_state_activity" if compiled.activity_features("audience") else None
    frame = _frame(seq.audience.record, contacts or "contact_state")  # as _contacts left it
    members = f"select contact.contact_id {frame} and ({audience})"
    # before starts_on no entries phase ran: tick_entries is not this occurrence's
    started = seq.starts_on is None or local_on >= seq.starts_on
    decided = (
        "select contact_id, reason from tick_entries where not manual"
        if started
        else "select null::varchar as contact_id, null::varchar as reason where false"
    )
    missing = "other" if started else "before_starts_on"
    rows = con.execute(
        f"""
        with members as ({members}),
        prior as (
            select contact_id, status from enrollments
            where sequence = $sequence and enrolled_at < $occurrence_at
        ),
        decided as ({decided})
        select
            case
                when prior.status = 'active' then 'already_enrolled'
                when prior.status is not null then 'previously_enrolled'
                when decided.contact_id is null then '{missing}'
                else coalesce(decided.reason, 'enters')
            end as outcome,
            count(*),
        from members
        left join prior using (contact_id)
        left join decided using (contact_id)
        group by 1
        """,
        params,
    ).fetchall()
    found = dict(rows)
    return {k: found[k] for k in (*GAP_ORDER, *sorted(set(found) - set(GAP_ORDER))) if k in found}


def audience_inspector(compiled: CompiledSequence, sample_size: int):
    """For :func:`pipelines.tick.run.preview_occurrence`: the audience at the occurrence and
    its gap to the entries, read inside the preview transaction right after it."""

    def inspect(con: duckdb.DuckDBPyConnection, occurrence) -> AudiencePreview:
        found = preview_audience(con, compiled, occurrence.at, sample_size=sample_size)
        found.gap = entry_gap(con, compiled, occurrence.at)
        return found

    return inspect
