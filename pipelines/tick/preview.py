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
    labelled = [(f"view {name}", c.sql) for name, c in compiled.views.items()]
    labelled += [(f"where: {c.source}", c.sql) for c in compiled.where]
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
