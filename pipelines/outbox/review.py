"""Review of ``unknown`` actions (SPEC 6): a crash between CLAIM and RECORD leaves an action
``unknown``, and nothing ever sends it again on its own. An operator lists them and settles
each: it went out (``sent``) or it did not (``retry``).

Recovery of ``held`` actions (issue 9): a held action was never claimed nor sent (it could not
be prepared: a missing secret, a template error). After the fix, :func:`requeue_held` puts
them back in the queue.
"""

from __future__ import annotations

from typing import Any

import duckdb

from pipelines import sqlrun
from pipelines.db import transaction
from pipelines.errors import SequencerError
from pipelines.outbox.transitions import append_sent_activity


def list_unknown(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Actions whose delivery is uncertain (claimed, then crashed or lost the connection).
    ``message_id`` is what to look for in the mailbox's sent folder or the ESP's log."""
    return sqlrun.dicts(
        con.execute(
            "select idempotency_key, sequence, contact_id, step, action, message_id, subject,"
            " sender_id, claimed_at, attempts, error from actions where status = 'unknown'"
            " order by claimed_at, idempotency_key"
        )
    )


def resolve_unknown(con: duckdb.DuckDBPyConnection, key: str, outcome: str) -> None:
    """Settle an ``unknown`` action after review: ``sent`` (it went out: recorded as sent at
    its claim time, with its activity) or ``retry`` (it did not: ``deferred``, so it goes
    first at the next send and does not expire)."""
    if outcome not in ("sent", "retry"):
        raise SequencerError(f"outcome must be 'sent' or 'retry', not {outcome!r}")
    rows = sqlrun.dicts(
        con.execute(
            "select a.*, c.email from actions as a left join contacts as c using (contact_id)"
            " where a.idempotency_key = ? and a.status = 'unknown'",
            [key],
        )
    )
    if not rows:
        raise SequencerError(f"no action {key!r} in status 'unknown'")
    action = rows[0]
    with transaction(con):
        if outcome == "retry":
            # deferred, not due: a reviewed retry goes first at the next send and does not
            # expire for being older than stale_after (the review took the time)
            con.execute(
                "update actions set status = 'deferred', error = 'released for retry by review'"
                " where idempotency_key = ?",
                [key],
            )
            return
        con.execute(
            "update actions set status = 'sent', finished_at = claimed_at,"
            " error = 'confirmed sent by review' where idempotency_key = ?",
            [key],
        )
        append_sent_activity(
            con,
            action,
            action["email"],
            action["claimed_at"],
            action["message_id"],
            {"subject": action["subject"]} if action["action"] == "email" else {},
        )


REQUEUED_NOTE = "requeued after held: "


def requeue_held(
    con: duckdb.DuckDBPyConnection, sequence: str | None = None, step: str | None = None
) -> int:
    """Put ``held`` actions (of ``sequence``, of ``step``, or all) back in the queue; return
    how many. They become ``deferred``, like a reviewed retry: they go first at the next send
    and do not expire for the time the fix took. Exactly-once is untouched: a held action was
    never claimed, so no key here was ever handed to a transport."""
    return len(
        con.execute(
            """
            update actions set status = 'deferred', finished_at = null,
                error = $note || coalesce(error, '')
            where status = 'held'
              and ($sequence::varchar is null or sequence = $sequence)
              and ($step::varchar is null or step = $step)
            returning idempotency_key
            """,
            {"note": REQUEUED_NOTE, "sequence": sequence, "step": step},
        ).fetchall()
    )
