"""``sequencer why SEQUENCE CONTACT`` (SPEC 11 "Why"): one contact's story in one sequence.

Read from the ledgers (``occurrences``, ``enrollments``, ``actions``, ``tasks``,
``manual_requests``) and re-evaluated where the ledgers keep no reason: at the contact's
eligible occurrences before it entered, which audience condition (the compiled conditions,
evaluated as :func:`pipelines.tick.preview.contact_conditions` does for preview) or entry
rule (``sql/why/int_entry_rules.sql``, the rules of ``tick/int_entries.sql``) kept it out;
at each step decision, the value of each ``when`` (``sql/why/int_step_when.sql``).

Re-evaluated *now* over the recorded history: activities as recorded now at or before each
occurrence, the contact's and account's properties as they are now (SPEC 6: an occurrence
sees the current properties), the sequence file as it is now. When the history or the file
changed since, a re-evaluated value can differ from the decision the tick recorded; the
story flags it (``recorded decision differs``) instead of hiding it. Nothing is written: the
caller uses a read-only connection (temp tables only).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from pipelines import sqlrun
from pipelines.compile.sequence import CompiledSequence
from pipelines.errors import SequencerError
from pipelines.tick.occurrences import first_occurrence, first_on_or_after, instant_on
from pipelines.tick.pause import AUTO_REPLY_DAYS
from pipelines.tick.preview import contact_conditions
from pipelines.tick.properties import materialize_contact_state

SHOWN = 5  # eligible occurrences listed before entry (the latest), plus the next pending one
CONTACT_TABLE = "why_contact"
REEVALUATED = (
    "conditions re-evaluated now over the recorded history (activities at or before each "
    "occurrence, contact and account properties and the sequence file as they are now)"
)


@dataclass
class Eligibility:
    """One occurrence at which the contact had not entered: what kept it out."""

    occurrence_on: dt.date
    occurrence_at: dt.datetime
    processed: bool  # in the ledger; else the next pending occurrence
    outcome: (
        str  # created_after | before_starts_on | no_audience | audience | an entry rule | enters
    )
    conditions: dict[str, bool] = field(default_factory=dict)
    detail: str = ""


@dataclass
class StepDecision:
    """One actions row of the enrolment, with its ``when`` re-evaluated."""

    step: str
    day: int
    action: str
    occurrence_on: dt.date
    occurrence_at: dt.datetime
    decided: str  # due | skipped, as the tick decided
    status: str
    when: dict[str, bool] = field(default_factory=dict)
    differs: bool = False  # the re-evaluated `when` disagrees with the recorded decision
    idempotency_key: str = ""
    message_id: str | None = None
    error: str | None = None
    attempts: int = 0
    claimed_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    task: dict[str, Any] | None = None


@dataclass
class Story:
    sequence: str
    contact_id: str
    as_of: dt.datetime
    created_at: dt.datetime | None
    eligible: list[Eligibility] = field(default_factory=list)
    earlier_not_shown: int = 0
    manual_requests: list[dict[str, Any]] = field(default_factory=list)
    entered: dict[str, Any] | None = None
    steps: list[StepDecision] = field(default_factory=list)
    pauses: list[dict[str, Any]] = field(default_factory=list)
    exit: dict[str, Any] | None = None
    note: str = REEVALUATED

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: instants as ISO-8601 (naive UTC, suffixed Z), dates as YYYY-MM-DD."""
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat() + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> dict[str, Any] | None:
    found = sqlrun.dicts(con.execute(sql, params))
    return found[0] if found else None


def tell(
    con: duckdb.DuckDBPyConnection, compiled: CompiledSequence, contact_id: str, as_of: dt.datetime
) -> Story:
    """The story of ``contact_id`` in ``compiled``'s sequence up to ``as_of`` (naive UTC)."""
    seq = compiled.sequence
    contact = _one(con, "select created_at from contacts where contact_id = ?", [contact_id])
    if contact is None:
        raise SequencerError(f"no contact {contact_id!r}")
    story = Story(seq.name, contact_id, as_of, contact["created_at"])
    enrolled = _one(
        con,
        "select * from enrollments where sequence = ? and contact_id = ? and enrolled_at <= ?",
        [seq.name, contact_id, as_of],
    )
    story.manual_requests = sqlrun.dicts(
        con.execute(
            "select requested_at, status, reason, resolved_on, resolved_at from manual_requests"
            " where sequence = ? and contact_id = ? and requested_at <= ? order by requested_at",
            [seq.name, contact_id, as_of],
        )
    )
    _eligibility(con, compiled, story, enrolled)
    if enrolled is not None:
        story.entered = {
            k: enrolled[k] for k in ("enrolled_on", "enrolled_at", "manual", "enrollment_id")
        }
        story.entered["how"] = "manual" if enrolled["manual"] else "audience"
        story.entered["holdout"] = enrolled["status"] == "holdout"  # never contacted (SPEC 11)
        story.steps = _steps(con, compiled, enrolled, as_of)
        story.pauses = _pauses(con, seq.name, contact_id, enrolled, as_of)
        story.exit = _exit(con, enrolled, as_of)
    return story


# --- before it entered -----------------------------------------------------------------------


def _eligibility(con, compiled: CompiledSequence, story: Story, enrolled: dict | None) -> None:
    """The latest :data:`SHOWN` processed occurrences before entry (or up to as_of), and, when
    the contact has not entered, the next pending one."""
    seq = compiled.sequence
    until = enrolled["enrolled_at"] if enrolled else story.as_of
    below = "<" if enrolled else "<="
    rows = con.execute(
        f"select occurrence_on, occurrence_at from occurrences where sequence = ?"
        f" and occurrence_at {below} ? order by occurrence_on desc",
        [seq.name, until],
    ).fetchall()
    story.earlier_not_shown = max(0, len(rows) - SHOWN)
    occurrences = [(on, at, True) for on, at in reversed(rows[:SHOWN])]
    if enrolled is None:
        on = _next_pending(con, compiled, story.as_of)
        occurrences.append((on, instant_on(on, seq.schedule), False))
    for on, at, processed in occurrences:
        story.eligible.append(_at_occurrence(con, compiled, story, on, at, processed))


def _next_pending(con, compiled: CompiledSequence, as_of: dt.datetime) -> dt.date:
    seq = compiled.sequence
    last, first = con.execute(
        "select (select max(occurrence_on) from occurrences"
        "        where sequence = $s and occurrence_at <= $as_of),"
        " (select first_occurrence_on from sequence_state where sequence = $s)",
        {"s": seq.name, "as_of": as_of},
    ).fetchone()
    if last is not None:
        return first_on_or_after(seq.schedule, last + dt.timedelta(days=1))
    return first or first_occurrence(seq.schedule, seq.starts_on, as_of)


def _manual_pending(story: Story, at: dt.datetime) -> bool:
    return any(
        r["requested_at"] <= at and (r["resolved_at"] is None or r["resolved_at"] >= at)
        for r in story.manual_requests
    )


def _at_occurrence(con, compiled, story: Story, on, at, processed: bool) -> Eligibility:
    """Why the contact did not enter at this occurrence, first rule first (SPEC 6, step 2)."""
    seq, found = compiled.sequence, Eligibility(on, at, processed, "enters")
    if story.created_at is not None and story.created_at > at:
        found.outcome = "created_after"
        found.detail = f"the contact was created at {story.created_at:%Y-%m-%d %H:%M}Z"
        return found
    if seq.starts_on is not None and on < seq.starts_on:
        found.outcome, found.detail = "before_starts_on", f"starts_on is {seq.starts_on}"
        return found
    materialize_contact_state(con, at, table=CONTACT_TABLE, contact_id=story.contact_id)
    values = contact_conditions(con, compiled, at, story.contact_id, CONTACT_TABLE)
    in_audience = values.pop("audience", False)
    found.conditions = values
    manual = _manual_pending(story, at)
    if not (in_audience or manual):
        found.outcome = "audience" if compiled.audience_sql else "no_audience"
        found.detail = "; ".join(label for label, v in values.items() if not v) or (
            "the contact has no primary account" if seq.audience.record == "account" else ""
        )
        return found
    rule = _entry_rule(con, compiled, story.contact_id, on, at)
    if rule["reason"]:
        found.outcome = rule["reason"]
        found.detail = ", ".join(rule["exclusive_active"] or rule["same_email_enrolled"] or [])
    elif processed:
        found.detail = "the ledger says it did not enter here: the history changed since"
    elif manual:
        found.detail = "manual request pending"
    return found


def _entry_rule(con, compiled: CompiledSequence, contact_id: str, on, at) -> dict[str, Any]:
    seq = compiled.sequence
    sql = sqlrun.render(
        "why/int_entry_rules.sql",
        exit_sql=compiled.exit_sql,
        needs_email=seq.has_email_steps,
        prevent_duplicate_emails=seq.audience.prevent_duplicate_emails,
    )
    params = {
        "sequence": seq.name,
        "contact_id": contact_id,
        "occurrence_at": at,
        "occurrence_on": on,
        "exclusive_with": list(seq.exclusive_with),
    }
    return sqlrun.dicts(sqlrun.run(con, sql, params))[0]


# --- after it entered ------------------------------------------------------------------------


def _steps(con, compiled: CompiledSequence, enrolled: dict, as_of) -> list[StepDecision]:
    rows = sqlrun.dicts(
        con.execute(
            """
            select a.*, t.task_id, t.owner_id, t.due_on, t.created_at as task_created_at,
                   t.done, t.done_at, t.snoozed_until
            from actions as a
            left join tasks as t on t.task_id = a.idempotency_key
            where a.sequence = ? and a.enrollment_id = ? and a.occurrence_at <= ?
            order by a.occurrence_at, a.step_index, a.step
            """,
            [compiled.name, enrolled["enrollment_id"], as_of],
        )
    )
    return [_decision(con, compiled, enrolled, row) for row in rows]


def _decision(con, compiled: CompiledSequence, enrolled: dict, row: dict) -> StepDecision:
    decided = row["decided_status"] or ("skipped" if row["status"] == "skipped" else "due")
    found = StepDecision(
        step=row["step"], day=row["day"], action=row["action"],
        occurrence_on=row["occurrence_on"], occurrence_at=row["occurrence_at"],
        decided=decided, status=row["status"], idempotency_key=row["idempotency_key"],
        message_id=row["message_id"], error=row["error"], attempts=row["attempts"],
        claimed_at=row["claimed_at"], finished_at=row["finished_at"],
    )  # fmt: skip
    if row["task_id"] is not None:
        keys = ("task_id", "owner_id", "due_on", "done", "done_at", "snoozed_until")
        found.task = {k: row[k] for k in keys} | {"created_at": row["task_created_at"]}
    conditions = compiled.steps.get(row["step"], [])
    if conditions:
        found.when = _when(con, compiled, enrolled, row, conditions)
        holds = all(found.when.values())
        found.differs = holds != (decided == "due")
    return found


def _when(con, compiled, enrolled: dict, row: dict, conditions) -> dict[str, bool]:
    materialize_contact_state(
        con, row["occurrence_at"], table=CONTACT_TABLE, contact_id=enrolled["contact_id"]
    )
    sql = sqlrun.render("why/int_step_when.sql", conditions=[c.sql for c in conditions])
    params = {
        "sequence": compiled.name,
        "contact_id": enrolled["contact_id"],
        "enrollment_id": enrolled["enrollment_id"],
        "enrolled_on": enrolled["enrolled_on"],
        "enrolled_at": enrolled["enrolled_at"],
        "min_enrolled_at": enrolled["enrolled_at"],
        "day": row["day"],
        "occurrence_at": row["occurrence_at"],
        "occurrence_on": row["occurrence_on"],
    }
    values = sqlrun.run(con, sql, params).fetchone()
    if values is None:  # the contact row is gone
        return {c.source: False for c in conditions}
    return {c.source: bool(v) for c, v in zip(conditions, values, strict=True)}


EXIT_ACTIVITY = {
    "replied": ("email_replied",),
    "unsubscribed": ("unsubscribed", "email_complained"),
    "bounced": ("email_bounced",),
}


def _pauses(con, sequence: str, contact_id: str, enrolled: dict, as_of) -> list[dict[str, Any]]:
    """The pauses that began while it was enrolled, up to ``as_of`` (SPEC 11: pipelines/tick/
    pause.py): ``sequencer pause`` of the contact or of the whole sequence, and out-of-office
    replies (until their stated date, else AUTO_REPLY_DAYS)."""
    end = min(as_of, enrolled["exited_at"] or as_of)
    return sqlrun.dicts(
        con.execute(
            """
            select paused_at as "from", until_on, resumed_at,
                case when contact_id is null then 'the whole sequence' else 'pause' end as kind,
            from pauses
            where sequence = $sequence and coalesce(contact_id = $contact, true)
              and paused_at >= $enrolled and paused_at <= $end
            union all
            select occurred_at, coalesce(
                case when json_valid(detail)
                     then try_cast(json_extract_string(detail, '$.until') as date) end,
                (occurred_at + to_days($days))::date), null, 'out of office'
            from activities
            where contact_id = $contact and type = 'email_auto_replied'
              and occurred_at >= $enrolled and occurred_at <= $end
            order by 1
            """,
            {"sequence": sequence, "contact": contact_id, "enrolled": enrolled["enrolled_at"],
             "end": end, "days": AUTO_REPLY_DAYS},
        )
    )  # fmt: skip


def _exit(con, enrolled: dict, as_of: dt.datetime) -> dict[str, Any] | None:
    """The exit, with the activity behind a replied/unsubscribed/bounced one (the latest at
    or before the exit's instant)."""
    if enrolled["status"] == "active" or enrolled["exited_at"] is None:
        return None
    if enrolled["exited_at"] > as_of:
        return None
    found = {k: enrolled[k] for k in ("exit_reason", "exited_on", "exited_at")}
    types = EXIT_ACTIVITY.get(enrolled["exit_reason"])
    if types:
        found["activity"] = _one(
            con,
            "select activity_id, type, occurred_at, message_id from activities"
            " where contact_id = ? and list_contains(?, type) and occurred_at <= ?"
            " order by occurred_at desc, activity_id desc limit 1",
            [enrolled["contact_id"], list(types), enrolled["exited_at"]],
        )
    return found
