"""The outbox transitions of one action (SPEC 6 "Sending"), in this order:

``due``/``deferred`` → CLAIM (one committed UPDATE to ``unknown``) → SEND (with retries of
transient failures) → RECORD (one transaction: ``sent`` + the ``email_sent`` activity, or
``failed``). An action that cannot be prepared becomes ``held`` before any claim; a task is
recorded without a claim (inserting it is idempotent). A crash between CLAIM and RECORD
leaves the action ``unknown``; nothing here ever sends an ``unknown`` action again
(:mod:`pipelines.outbox.review`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Literal

from pipelines.channels.message import MailConfigError
from pipelines.channels.render import RenderError
from pipelines.channels.sms import post_sms
from pipelines.channels.smtp import SendError, SmtpPool
from pipelines.db import transaction
from pipelines.outbox.batch import enrolment
from pipelines.outbox.compose import Composer, Held, Prepared, sha
from pipelines.outbox.tasks import insert_task
from pipelines.workspace import Workspace

log = logging.getLogger(__name__)


class ActionStatus(StrEnum):
    """The ``actions.status`` values; the outbox moves an action along them."""

    DUE = "due"
    DEFERRED = "deferred"
    UNKNOWN = "unknown"
    SENT = "sent"
    FAILED = "failed"
    HELD = "held"
    SKIPPED = "skipped"
    EXPIRED = "expired"


FaultPoint = Literal["after_claim", "after_send", "after_record"]
FaultHook = Callable[[FaultPoint, str], None]
"""Called as ``hook(point, idempotency_key)`` right after an action's claim, its send and its
record. The crash tests pass one that kills the process there; production passes none."""


def no_faults(point: FaultPoint, key: str) -> None:
    """The default fault hook: nothing happens."""


class Clock:
    """Send time: ``as_of`` plus the wall-clock time elapsed since the send began, so a send
    with ``as_of = now`` records real times and a test's as_of stays consistent."""

    def __init__(self, as_of: dt.datetime) -> None:
        self.as_of, self.t0 = as_of, time.monotonic()

    def now(self) -> dt.datetime:
        return self.as_of + dt.timedelta(seconds=time.monotonic() - self.t0)


class Sender:
    """Per-action work of one send: prepare, claim, send with retries, record."""

    def __init__(self, con, ws: Workspace, env, clock: Clock, max_retries, backoff, report, faults):
        self.con, self.ws, self.env, self.clock = con, ws, env, clock
        self.max_retries, self.backoff, self.report = max_retries, backoff, report
        self.pool = SmtpPool(env)
        self.composer = Composer(ws, env, self.pool, clock.now)
        self.faults: FaultHook = faults

    def process(self, action: dict, contact: dict, account: dict, history: dict) -> None:
        key = action["idempotency_key"]
        try:
            prep = self.composer.prepare(action, contact, account, history)
        except (Held, RenderError, MailConfigError, ValueError) as exc:
            self._finish_before_claim(key, ActionStatus.HELD, str(exc))
            return
        if prep.kind == "task":
            self._record_task(action, prep)
            return
        if not self._claim(key, prep):
            return
        self.faults("after_claim", key)
        try:
            result = self._deliver(key, prep)
        except SendError as exc:
            status = ActionStatus.UNKNOWN if exc.kind == "ambiguous" else ActionStatus.FAILED
            self._record_failure(key, status, str(exc))
            return
        self.faults("after_send", key)
        self._record_sent(action, contact, prep, result)
        if prep.kind == "email":
            history.setdefault(enrolment(action), {})[action["step"]] = {
                "message_id": prep.message_id,
                "subject": prep.subject,
            }
        self.faults("after_record", key)

    def _finish_before_claim(self, key: str, status: ActionStatus, error: str) -> None:
        self.con.execute(
            "update actions set status = ?, error = ?, finished_at = ?"
            " where idempotency_key = ? and status in ('due', 'deferred')",
            [status, error, self.clock.now(), key],
        )
        self._note(key, status, error)

    def _note(self, key: str, status: ActionStatus, error: str) -> None:
        setattr(self.report, status, getattr(self.report, status) + 1)
        self.report.problems.append((key, status, error))
        # per action at debug level only: the send prints the reasons grouped with counts
        log.debug("action %s %s: %s", key, status, error)

    def _claim(self, key: str, prep: Prepared) -> bool:
        """CLAIM: one committed UPDATE; from here on a crash leaves the action ``unknown``."""
        claimed = self.con.execute(
            "update actions set status = 'unknown', claimed_at = ?, attempts = attempts + 1,"
            " message_id = ?, sender_id = ?, subject = ?, error = null"
            " where idempotency_key = ? and status in ('due', 'deferred')"
            " returning idempotency_key",
            [self.clock.now(), prep.message_id, prep.sender_id, prep.subject, key],
        ).fetchall()
        return bool(claimed)

    def _deliver(self, key: str, prep: Prepared) -> dict:
        attempt = 0
        while True:
            try:
                if prep.kind == "email":
                    refused = self.pool.send(
                        prep.mailbox, prep.envelope_from, prep.message, prep.recipients
                    )
                    return {"refused": refused}
                return post_sms(self.ws.users.sms_gateway.url, self._sms_token(), prep.sms)
            except SendError as exc:
                attempt += 1
                if exc.kind != "transient" or attempt > self.max_retries:
                    raise
                self.con.execute(
                    "update actions set attempts = attempts + 1, error = ?"
                    " where idempotency_key = ?",
                    [str(exc), key],
                )
                time.sleep(self.backoff(attempt))

    def _sms_token(self) -> str | None:
        token_env = self.ws.users.sms_gateway.token_env
        return self.env.get(token_env) if token_env else None

    def _record_failure(self, key: str, status: ActionStatus, error: str) -> None:
        self.con.execute(
            "update actions set status = ?, error = ?, finished_at = ?"
            " where idempotency_key = ? and status = 'unknown'",
            [status, error, self.clock.now() if status == ActionStatus.FAILED else None, key],
        )
        self._note(key, status, error)

    def _record_sent(self, action: dict, contact: dict, prep: Prepared, result: dict) -> None:
        """RECORD: ``sent`` and its activity in one transaction."""
        now = self.clock.now()
        refused = result.get("refused") or {}
        note = f"refused cc/bcc: {refused}" if refused else None
        message_id = result.get("gateway_id") or prep.message_id
        with transaction(self.con) as con:
            con.execute(
                "update actions set status = 'sent', finished_at = ?, error = ?,"
                " message_id = ? where idempotency_key = ? and status = 'unknown'",
                [now, note, message_id, action["idempotency_key"]],
            )
            append_sent_activity(
                con,
                action,
                contact.get("email"),
                now,
                message_id,
                {"subject": prep.subject} if prep.kind == "email" else {},
            )
        self.report.sent += 1

    def _record_task(self, action: dict, prep: Prepared) -> None:
        with transaction(self.con) as con:
            insert_task(con, prep.task)
            con.execute(
                "update actions set status = 'sent', finished_at = ?, error = null"
                " where idempotency_key = ? and status in ('due', 'deferred')",
                [self.clock.now(), action["idempotency_key"]],
            )
        self.report.tasks += 1


def append_sent_activity(
    con, action: dict, email: str | None, at: dt.datetime, message_id: str | None, detail: dict
) -> None:
    """The ``email_sent`` / ``sms_sent`` activity of a sent action (id derived from the key).

    Written in the RECORD transaction, which happens once per claimed key, so a plain insert
    cannot duplicate it (``activities`` has no primary key index: see sql/schema.sql)."""
    kind = "email_sent" if action["action"] == "email" else "sms_sent"
    con.execute(
        "insert into activities (activity_id, contact_id, email, type, occurred_at, sequence,"
        " step, message_id, detail) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            f"{kind}:{sha(action['idempotency_key'])}",
            action["contact_id"],
            email,
            kind,
            at,
            action["sequence"],
            action["step"],
            message_id,
            json.dumps(detail) if detail else None,
        ],
    )
