"""Pause and resume (SPEC 11, issue 12 item 1): per enrolment, per sequence, and automatic on
an out-of-office reply.

A pause is an interval, not a flag, so that every run sees the same thing at a given
occurrence whatever it processes late (a catch-up after the pause decides as the daily runs
did): ``pauses`` rows from ``sequencer pause`` (from ``paused_at``, until the first
occurrence on or after ``until_on``, a local date of the sequence, and before
``resumed_at``), and every ``email_auto_replied`` activity, which pauses all the contact's
enrolments from its ``occurred_at`` until its ``detail.until`` date, else for 7 days.

At an occurrence inside a pause an enrolment decides no step, does not complete and the
occurrence does not count in its day index, so it resumes at the step where it stopped;
exits (reply, unsubscribe, bounce, condition) still apply. A paused sequence also takes no
entries (manual requests wait). The tick reads the run's intervals once (:func:`load`,
``tick_pauses``); with none the phases render exactly as before (``Pauses.any``).
``enrollments.paused_until`` shows the date a paused enrolment resumes ('infinity': until
``resume``); a past date means it is no longer paused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb

from pipelines.db import transaction
from pipelines.errors import ConfigError, Location, SequencerError
from pipelines.instants import local_date, to_naive_utc
from pipelines.tick.occurrences import Occurrence
from pipelines.workspace import Workspace

AUTO_REPLY_DAYS = 7  # an out-of-office without a stated return date pauses this long
WHOLE = "(whole sequence)"  # the outcome key of a pause or resume of the whole sequence
INFINITY = "infinity"


@dataclass(frozen=True)
class Pauses:
    """The run's pause intervals: whether there are any (else the phases ignore pauses) and
    the whole-sequence ones, which also stop entries."""

    any: bool = False
    sequences: dict[str, list[tuple]] = field(default_factory=dict)

    def stops_entries(self, occ: Occurrence) -> bool:
        """Whether ``occ``'s sequence is paused as a whole at ``occ``."""
        return any(
            start <= occ.at
            and (until_on is None or occ.on < until_on)
            and (until_at is None or occ.at < until_at)
            for start, until_on, until_at in self.sequences.get(occ.sequence, [])
        )


NO_PAUSES = Pauses()


def load(con: duckdb.DuckDBPyConnection, to_at: dt.datetime) -> Pauses:
    """``tick_pauses``: every pause interval that starts by ``to_at`` (the run's last
    instant), manual and out-of-office; the run's :class:`Pauses`."""
    con.execute(
        """
        create or replace temp table tick_pauses as
        select
            sequence,
            contact_id,
            paused_at as from_at,
            until_on,
            resumed_at as until_at,
            coalesce(until_on, $infinity::date) as resume_on,
        from pauses
        where paused_at <= $to_at
        union all
        select
            null as sequence,
            contact_id,
            occurred_at as from_at,
            stated as until_on,
            case when stated is null then occurred_at + to_days($days) end as until_at,
            coalesce(stated, (occurred_at + to_days($days))::date) as resume_on,
        from (
            select
                contact_id,
                occurred_at,
                case when json_valid(detail)
                     then try_cast(json_extract_string(detail, '$.until') as date)
                end as stated,
            from activities
            where type = 'email_auto_replied'
              and contact_id is not null
              and occurred_at <= $to_at
        )
        """,
        {"to_at": to_at, "days": AUTO_REPLY_DAYS, "infinity": INFINITY},
    )
    rows = con.execute(
        "select sequence, from_at, until_on, until_at from tick_pauses where contact_id is null"
        " and sequence is not null"
    ).fetchall()
    any_pause = con.execute("select count(*) > 0 from tick_pauses").fetchone()[0]
    sequences: dict[str, list[tuple]] = {}
    for sequence, start, until_on, until_at in rows:
        sequences.setdefault(sequence, []).append((start, until_on, until_at))
    return Pauses(any=bool(any_pause), sequences=sequences)


def paused_now(con: duckdb.DuckDBPyConnection) -> None:
    """Show the pause in ``enrollments.paused_until`` for the enrolments paused at this
    occurrence (``tick_paused``: an out-of-office pause has no command that would)."""
    con.execute(
        """
        update enrollments set paused_until = tick_paused.resume_on
        from tick_paused
        where tick_paused.paused_now
          and enrollments.sequence = tick_paused.sequence
          and enrollments.contact_id = tick_paused.contact_id
          and enrollments.paused_until is distinct from tick_paused.resume_on
        """
    )


def _sequence(ws: Workspace, sequence: str):
    seq = ws.sequences.get(sequence)
    if seq is None:
        raise ConfigError("unknown sequence", Location(sequence=sequence))
    return seq


_GIVEN = """
with given as (select distinct unnest($contact_ids::varchar[]) as contact_id)
select
    given.contact_id,
    contacts.contact_id is not null as known,
    enrollments.status = 'active' as active,
    open.contact_id is not null as paused,
from given
left join contacts using (contact_id)
left join enrollments
    on enrollments.sequence = $sequence and enrollments.contact_id = given.contact_id
left join (
    select distinct contact_id from pauses
    where sequence = $sequence and resumed_at is null and coalesce(until_on > $on, true)
) as open on open.contact_id = given.contact_id
"""


def pause(
    con: duckdb.DuckDBPyConnection, ws: Workspace, sequence: str, contact_ids: list[str],
    at: dt.datetime, until: dt.date | None = None, by: str | None = None,
) -> dict[str, str]:  # fmt: skip
    """Pause the contacts' active enrolments (none given: the whole sequence) from ``at``
    until the local date ``until`` (None: until resumed). Outcomes per contact: ``paused``,
    ``pause extended`` (it was paused: the new date stands), ``not_enrolled``,
    ``unknown_contact``."""
    seq = _sequence(ws, sequence)
    at = to_naive_utc(at)
    on = local_date(at, seq.schedule.timezone)
    if until is not None and until <= on:
        raise SequencerError(f"--until {until}: must be after today ({on}, {sequence}'s timezone)")
    params = {"sequence": sequence, "at": at, "on": on, "until": until, "by": by}
    with transaction(con):
        if not contact_ids:
            _end_open(con, params, whole=True, contacts=None)
            con.execute(
                "insert into pauses (sequence, contact_id, paused_at, until_on, paused_by)"
                " values ($sequence, null, $at, $until, $by)",
                {k: params[k] for k in ("sequence", "at", "until", "by")},
            )
            _show(con, sequence, None, until)
            return {WHOLE: "paused"}
        rows = _given(con, params, contact_ids)
        live = [cid for cid, known, active, _ in rows if known and active]
        _end_open(con, params, whole=False, contacts=live)
        con.execute(
            "insert into pauses (sequence, contact_id, paused_at, until_on, paused_by)"
            " select $sequence, unnest($live::varchar[]), $at, $until, $by",
            {**{k: params[k] for k in ("sequence", "at", "until", "by")}, "live": live},
        )
        _show(con, sequence, live, until)
    return {
        cid: "unknown_contact" if not known else "not_enrolled" if not active
        else "pause extended" if was else "paused"
        for cid, known, active, was in rows
    }  # fmt: skip


def resume(
    con: duckdb.DuckDBPyConnection, ws: Workspace, sequence: str, contact_ids: list[str],
    at: dt.datetime, by: str | None = None,
) -> dict[str, str]:  # fmt: skip
    """End the pauses of the contacts (none given: of the whole sequence and every contact
    in it) at ``at``; the next occurrence decides their next step. Outcomes: ``resumed``,
    ``not_paused``, ``still paused with the sequence``, ``unknown_contact``."""
    seq = _sequence(ws, sequence)
    at = to_naive_utc(at)
    params = {"sequence": sequence, "at": at, "on": local_date(at, seq.schedule.timezone),
              "by": by}  # fmt: skip
    with transaction(con):
        if not contact_ids:
            ended = _end_open(con, params, whole=True, contacts=None, everyone=True)
            con.execute("update enrollments set paused_until = null where sequence = ?", [sequence])
            return {WHOLE: "resumed" if ended else "not_paused"}
        rows = _given(con, params, contact_ids)
        _end_open(con, params, whole=False, contacts=[r[0] for r in rows if r[3]])
        whole = _whole_open(con, params)
        if not whole:
            con.execute(
                "update enrollments set paused_until = null where sequence = ?"
                " and list_contains(?, contact_id)",
                [sequence, [r[0] for r in rows if r[3]]],
            )
    return {
        cid: "unknown_contact" if not known else "still paused with the sequence" if whole
        else "resumed" if was else "not_paused"
        for cid, known, _, was in rows
    }  # fmt: skip


def _given(con, params, contact_ids: list[str]) -> list[tuple]:
    """(contact_id, known, active, paused) of each given contact (_GIVEN)."""
    args = {"sequence": params["sequence"], "on": params["on"], "contact_ids": list(contact_ids)}
    return con.execute(_GIVEN, args).fetchall()


def _end_open(con, params, *, whole: bool, contacts, everyone: bool = False) -> int:
    """End the open pauses: the sequence's own (``whole``), the given contacts', or, with
    ``everyone``, every pause of the sequence. How many ended."""
    if everyone:
        scope = "true"
    elif whole:
        scope = "contact_id is null"
    else:
        scope = "list_contains($contacts::varchar[], contact_id)"
    return len(
        con.execute(
            "update pauses set resumed_at = $at, resumed_by = $by"
            f" where sequence = $sequence and ({scope}) and resumed_at is null"
            " and coalesce(until_on > $on, true) returning 1",
            {**{k: params[k] for k in ("sequence", "at", "on", "by")},
             **({"contacts": contacts} if not whole and not everyone else {})},
        ).fetchall()
    )  # fmt: skip


def _whole_open(con, params) -> bool:
    return con.execute(
        "select count(*) > 0 from pauses where sequence = $sequence and contact_id is null"
        " and resumed_at is null and coalesce(until_on > $on, true)",
        {k: params[k] for k in ("sequence", "on")},
    ).fetchone()[0]


def _show(con, sequence: str, contacts: list[str] | None, until: dt.date | None) -> None:
    """``enrollments.paused_until`` of the paused active enrolments."""
    con.execute(
        "update enrollments set paused_until = coalesce($until, $infinity::date)"
        " where sequence = $sequence and status = 'active'"
        " and ($contacts::varchar[] is null or list_contains($contacts::varchar[], contact_id))",
        {"sequence": sequence, "until": until, "infinity": INFINITY, "contacts": contacts},
    )
