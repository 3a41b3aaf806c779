"""The send step (SPEC 6 "Sending"): an exactly-once outbox over the ``actions`` table.

Set-based first (:mod:`pipelines.outbox.batch`), row-at-a-time only where the work is per
message (:mod:`pipelines.outbox.compose`, :mod:`pipelines.outbox.transitions`):

1. *expire* — one UPDATE: ``due`` emails/SMS older than their sequence's ``stale_after_hours``;
2. *opt-outs* — one UPDATE: emails/SMS to contacts unsubscribed (or bounced, for email) since
   the tick decided them become ``skipped``; so do actions whose step left the sequence file;
3. *limits* — one query (``sql/send/int_send_batch.sql``) ranks every sender's emails
   (deferred oldest first, then due oldest first) and one UPDATE defers what exceeds today's
   daily limit;
4. *batch* — one query for the actions, one for their contacts, accounts and email history;
5. per action: render → CLAIM (one committed UPDATE to ``unknown``) → SEND → RECORD (one
   transaction: ``sent`` + the ``email_sent`` activity, or ``failed``).

A crash between CLAIM and RECORD leaves the action ``unknown``; nothing here ever sends an
``unknown`` action again. :func:`list_unknown` and :func:`resolve_unknown` are the review.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb

from pipelines.instants import to_naive_utc, utc_now
from pipelines.outbox import batch
from pipelines.outbox.review import list_unknown, requeue_held, resolve_unknown
from pipelines.outbox.transitions import Clock, FaultHook, Sender, no_faults
from pipelines.workspace import Workspace

__all__ = [
    "FaultHook",
    "SendReport",
    "default_backoff",
    "list_unknown",
    "requeue_held",
    "resolve_unknown",
    "send_due",
]


def default_backoff(attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): 2, 8, 32, … capped at 5 minutes."""
    return min(2.0 * 4 ** (attempt - 1), 300.0)


@dataclass
class SendReport:
    """What one send did; ``problems`` lists (key, status, error) of everything not sent."""

    as_of: dt.datetime
    sent: int = 0
    tasks: int = 0
    held: int = 0
    failed: int = 0
    unknown: int = 0
    deferred: int = 0
    expired: int = 0
    skipped: int = 0
    backlog: int = 0  # every action deferred after the send (waiting for a slot or a weekday)
    problems: list[tuple[str, str, str]] = field(default_factory=list)

    def stats(self) -> dict[str, int]:
        names = ("sent", "tasks", "held", "failed", "unknown", "deferred", "expired", "skipped")
        return {**{n: getattr(self, n) for n in names}, "deferred_backlog": self.backlog}

    def grouped(self) -> list[tuple[str, str, int]]:
        """(status, reason, count) of the problems, most frequent first: 314 emails held for
        one missing secret are one line.

        >>> r = SendReport(dt.datetime(2026, 3, 2))
        >>> r.problems = [("k1", "held", "no secret"), ("k2", "held", "no secret"),
        ...               ("k3", "failed", "550 no such user")]
        >>> r.grouped()
        [('held', 'no secret', 2), ('failed', '550 no such user', 1)]
        """
        counts = Counter((status, error) for _, status, error in self.problems)
        return [(s, e, n) for (s, e), n in sorted(counts.items(), key=lambda i: (-i[1], i[0]))]


def send_due(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    as_of: dt.datetime,
    *,
    max_retries: int = 3,
    backoff: Callable[[int], float] = default_backoff,
    env: dict[str, str] | None = None,
    faults: FaultHook = no_faults,
) -> SendReport:
    """Send every due and deferred action that may go out at ``as_of``; see the module doc.

    ``max_retries`` counts retries after the first attempt of a transient failure (default 3:
    four attempts in all); ``backoff(n)`` is the wait before retry n (default 2, 8, 32 s).
    ``env`` (default ``os.environ``) holds the secrets named in users.yaml.
    ``faults`` is called at each outbox transition (see :data:`FaultHook`); tests only.
    """
    as_of = to_naive_utc(as_of)
    env = dict(os.environ) if env is None else env
    report = SendReport(as_of=as_of)
    started = utc_now()
    batch.load_workspace_tables(con, ws, as_of)
    report.expired = batch.expire(con, as_of)
    report.skipped = batch.skip_unsendable(con, as_of)
    report.deferred = batch.apply_limits(con, as_of)
    actions = batch.fetch_batch(con)
    contacts, accounts, history = batch.fetch_records(con)
    sender = Sender(con, ws, env, Clock(as_of), max_retries, backoff, report, faults)
    try:
        for action in actions:
            contact = contacts.get(action["contact_id"], {})
            account = accounts.get(contact.get("account_id"), {})
            sender.process(action, contact, account, history)
    finally:
        sender.pool.close()
    report.backlog = con.execute(
        "select count(*) from actions where status = 'deferred'"
    ).fetchone()[0]
    _record_run(con, report, started)
    return report


def _record_run(con: duckdb.DuckDBPyConnection, report: SendReport, started: dt.datetime):
    con.execute(
        "insert into runs (run_id, kind, as_of, started_at, finished_at, stats)"
        " values (?, 'send', ?, ?, ?, ?)",
        [
            f"send-{uuid.uuid4().hex[:12]}",
            report.as_of,
            started,
            utc_now(),
            json.dumps(report.stats()),
        ],
    )
