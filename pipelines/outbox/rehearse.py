"""``preview SEQUENCE --render CONTACT``: compose one decided action exactly as the send step
would (:class:`~pipelines.outbox.compose.Composer`, the records of
:func:`~pipelines.outbox.batch.fetch_records`), with no transport: no SMTP connection is
opened, no SMS posted, nothing claimed or recorded. The caller runs it inside the rolled-back
transaction of :func:`pipelines.tick.run.preview_occurrence`, where the action exists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb

from pipelines import sqlrun
from pipelines.channels.message import MailConfigError
from pipelines.channels.render import RenderError
from pipelines.channels.smtp import SmtpPool
from pipelines.outbox import batch
from pipelines.outbox.compose import Composer, Held, Prepared
from pipelines.workspace import Workspace


@dataclass
class Rehearsal:
    """One action as the send step would prepare it; ``held`` says why it could not be."""

    action: dict[str, Any]
    prepared: Prepared | None = None
    held: str | None = None


def rehearse(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    key: str,
    now: dt.datetime,
    env: dict[str, str],
) -> Rehearsal:
    """Prepare the action ``key`` as a send at ``now`` (naive UTC: the Date header and the
    tracking tokens' day) would. Creates the send's temp table ``_send_batch`` (one row)."""
    sqlrun.materialize(con, "_send_batch", "select $key::varchar as idempotency_key", {"key": key})
    action = sqlrun.dicts(con.execute("select * from actions where idempotency_key = ?", [key]))[0]
    contacts, accounts, history = batch.fetch_records(con)
    contact = contacts.get(action["contact_id"], {})
    account = accounts.get(contact.get("account_id"), {})
    composer = Composer(ws, env, SmtpPool(env), lambda: now)  # the pool only checks mailboxes
    try:
        prepared = composer.prepare(action, contact, account, history)
    except (Held, RenderError, MailConfigError, ValueError) as exc:  # as Sender.process
        return Rehearsal(action, held=str(exc))
    return Rehearsal(action, prepared)
