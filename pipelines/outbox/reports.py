"""Operational reports of what the send step did (issue 12): read-only queries over
``actions``, run through :mod:`pipelines.sqlrun` (``sql/send/rpt_*.sql``).

- :func:`action_groups` — actions in chosen statuses, grouped by (sequence, step, status,
  reason = ``actions.error``) with counts and the oldest and newest occurrence; optionally the
  first actions of each group (``sequencer actions``);
- :func:`daily_volume` — emails per sender per local day against the daily limit, and what
  waits deferred (``sequencer actions --volume``).

Permissions are the caller's (:class:`pipelines.desk.Desk`): these take the sequences and
users a user may see.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

import duckdb

from pipelines import sqlrun
from pipelines.errors import UsageError
from pipelines.models import User
from pipelines.outbox.transitions import ActionStatus
from pipelines.workspace import Workspace

# What an operator on call must look at after a send: every action not in a final good state.
NEEDS_ATTENTION = (
    ActionStatus.HELD,
    ActionStatus.FAILED,
    ActionStatus.DEFERRED,
    ActionStatus.UNKNOWN,
    ActionStatus.EXPIRED,
)
LIST_LIMIT = 50  # actions listed per group with --list
KEY_PREFIX = 12  # characters of an idempotency key shown per listed action


@dataclass(frozen=True)
class ListedAction:
    """One action of a group, as ``--list`` shows it."""

    idempotency_key: str
    contact_id: str
    action: str
    occurrence_at: dt.datetime
    attempts: int

    @property
    def short_key(self) -> str:
        return self.idempotency_key[:KEY_PREFIX]


@dataclass
class ActionGroup:
    """Actions of one (sequence, step, status, reason): how many, the oldest and newest
    occurrence; ``listed`` holds the first ones when asked (``more`` = how many were not)."""

    sequence: str
    step: str
    status: ActionStatus
    reason: str | None
    actions: int
    oldest: dt.datetime
    newest: dt.datetime
    listed: list[ListedAction] = field(default_factory=list)

    @property
    def more(self) -> int:
        return self.actions - len(self.listed)

    @property
    def key(self) -> tuple[str, str, str, str | None]:
        return self.sequence, self.step, self.status, self.reason


def parse_statuses(statuses: Iterable[str] | None) -> tuple[ActionStatus, ...]:
    """The statuses to report: the given ones (each an :class:`ActionStatus`), else
    :data:`NEEDS_ATTENTION`.

    >>> [str(s) for s in parse_statuses(["failed", "held", "failed"])]
    ['failed', 'held']
    >>> len(parse_statuses(None))
    5
    """
    if not statuses:
        return NEEDS_ATTENTION
    chosen = []
    for text in statuses:
        try:
            status = ActionStatus(text)
        except ValueError:
            names = "|".join(ActionStatus)
            raise UsageError(f"--status {text!r}: not an action status ({names})") from None
        if status not in chosen:
            chosen.append(status)
    return tuple(chosen)


def action_groups(
    con: duckdb.DuckDBPyConnection,
    statuses: Collection[ActionStatus],
    *,
    only: Collection[str] | None = None,
    sequence: str | None = None,
    step: str | None = None,
    list_limit: int = 0,
) -> list[ActionGroup]:
    """Groups of actions in ``statuses``, most frequent first; ``only`` limits them to those
    sequences (None: all); ``list_limit`` > 0 lists that many actions of each group."""
    params = {
        "statuses": [str(s) for s in statuses],
        "sequences": None if only is None else sorted(only),
        "sequence": sequence,
        "step": step,
        "list_limit": list_limit,
    }
    groups = [
        ActionGroup(**{**row, "status": ActionStatus(row["status"])})
        for row in sqlrun.rows(con, "send/rpt_actions.sql", params)
    ]
    if list_limit > 0 and groups:
        by_key = {g.key: g for g in groups}
        for row in sqlrun.rows(con, "send/rpt_actions.sql", params, members=True):
            group = by_key[row["sequence"], row["step"], row["status"], row["reason"]]
            group.listed.append(
                ListedAction(
                    row["idempotency_key"],
                    row["contact_id"],
                    row["action"],
                    row["occurrence_at"],
                    row["attempts"],
                )
            )
    return groups


@dataclass(frozen=True)
class VolumeDay:
    """One sender's emails on one local day, against the limit; ``deferred_now`` is what
    waits for the sender at present (the same on each of the sender's days)."""

    sender_id: str
    timezone: str
    local_day: dt.date
    sent: int
    daily_limit: int
    deferred_now: int


def daily_volume(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    users: Iterable[User],
    as_of: dt.datetime,
    days: int,
) -> list[VolumeDay]:
    """Per sender in ``users``, per local day of the last ``days`` days up to ``as_of``'s:
    emails sent (as the daily limit counts them) and the limit; senders with nothing sent
    in the window and nothing deferred are left out (``sql/send/rpt_volume.sql``)."""
    if days < 1:
        raise UsageError(f"--days {days}: give at least 1 day")
    con.execute(
        "create or replace temp table _rpt_senders"
        " (sender_id varchar, timezone varchar, daily_limit bigint)"
    )
    con.execute(
        "create or replace temp table _rpt_steps (sequence varchar, step varchar,"
        " sender_id varchar)"
    )
    senders = [(u.id, u.timezone, u.daily_email_limit) for u in users]
    steps = [
        (seq.name, s.id, seq.owner if s.from_ == "owner" else s.from_)
        for seq in ws.sequences.values()
        for s in seq.steps
    ]
    if senders:
        con.executemany("insert into _rpt_senders values (?, ?, ?)", senders)
    if steps:
        con.executemany("insert into _rpt_steps values (?, ?, ?)", steps)
    rows = sqlrun.rows(con, "send/rpt_volume.sql", {"as_of": as_of, "days": days})
    con.execute("drop table _rpt_senders")
    con.execute("drop table _rpt_steps")
    return [VolumeDay(**row) for row in rows]
