"""The send step (SPEC 6 "Sending"): an exactly-once outbox over the ``actions`` table.

Set-based first, row-at-a-time only where the work is per message:

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
import hashlib
import json
import logging
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb

from pipelines import mail, sqlrun
from pipelines.db import transaction
from pipelines.errors import SequencerError
from pipelines.instants import as_aware_utc, local_day_bounds, to_naive_utc, utc_now
from pipelines.models import TASK_ACTIONS, Sequence, Step, User
from pipelines.render import Renderer, RenderError, record
from pipelines.tasks import insert_task
from pipelines.workspace import Workspace

log = logging.getLogger(__name__)


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
    problems: list[tuple[str, str, str]] = field(default_factory=list)

    def stats(self) -> dict[str, int]:
        names = ("sent", "tasks", "held", "failed", "unknown", "deferred", "expired", "skipped")
        return {n: getattr(self, n) for n in names}


class _Clock:
    """Send time: ``as_of`` plus the wall-clock time elapsed since the send began, so a send
    with ``as_of = now`` records real times and a test's as_of stays consistent."""

    def __init__(self, as_of: dt.datetime) -> None:
        self.as_of, self.t0 = as_of, time.monotonic()

    def now(self) -> dt.datetime:
        return self.as_of + dt.timedelta(seconds=time.monotonic() - self.t0)


FaultPoint = Literal["after_claim", "after_send", "after_record"]
FaultHook = Callable[[FaultPoint, str], None]
"""Called as ``hook(point, idempotency_key)`` right after an action's claim, its send and its
record. The crash tests pass one that kills the process there; production passes none."""


def no_faults(point: FaultPoint, key: str) -> None:
    """The default fault hook: nothing happens."""


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# --- set-based phases ----------------------------------------------------------------------


def _load_workspace_tables(con: duckdb.DuckDBPyConnection, ws: Workspace, as_of: dt.datetime):
    """Temp tables the set-based SQL joins: steps with senders and staleness, user limits."""
    con.execute(
        "create or replace temp table _send_steps (sequence varchar, step varchar,"
        " action varchar, sender_id varchar, stale_hours double)"
    )
    con.execute(
        "create or replace temp table _send_limits (sender_id varchar, daily_limit bigint,"
        " day_start timestamp, day_end timestamp)"
    )
    steps = [
        (
            seq.name,
            s.id,
            s.action,
            seq.owner if s.from_ == "owner" else s.from_,
            seq.stale_after_hours,
        )
        for seq in ws.sequences.values()
        for s in seq.steps
    ]
    if steps:
        con.executemany("insert into _send_steps values (?, ?, ?, ?, ?)", steps)
    limits = [(u.id, u.daily_email_limit, *_local_day(u, as_of)) for u in ws.users.users]
    if limits:
        con.executemany("insert into _send_limits values (?, ?, ?, ?)", limits)


def _local_day(user: User, as_of: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """UTC bounds of the user's local calendar day that contains ``as_of``."""
    return local_day_bounds(as_of, user.timezone)


def _expire(con: duckdb.DuckDBPyConnection, as_of: dt.datetime) -> int:
    """``due`` emails/SMS older than the sequence's stale_after_hours (default 24) expire.
    Deferred actions do not: the daily limit deferred them, not a late run."""
    return _changed(
        con,
        """
        update actions as a
        set status = 'expired', finished_at = $as_of,
            error = 'stale: occurrence older than stale_after_hours at send time'
        where a.status = 'due' and a.action in ('email', 'sms')
          and a.occurrence_at + to_seconds(3600 * coalesce(
                (select max(s.stale_hours) from _send_steps as s
                 where s.sequence = a.sequence), 24)) < $as_of
        returning idempotency_key
        """,
        {"as_of": as_of},
    )


def _changed(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> int:
    """Run an UPDATE ... RETURNING and count the rows it changed."""
    return len(con.execute(sql, params).fetchall())


def _skip_unsendable(con: duckdb.DuckDBPyConnection, as_of: dt.datetime) -> int:
    """Skip actions whose step left the sequence file, whose enrolment exited since the tick
    decided them (replied, unsubscribed, bounced, condition, manual — a deferred email must
    not reach someone who replied meanwhile), and emails/SMS to an address that unsubscribed
    (or, for email, bounced): any contact with the same lower(email) counts."""
    return len(
        con.execute(
            """
            with suppressed_emails as (
                select distinct lower(c.email) as email_key, v.type
                from activities as v
                join contacts as c on c.contact_id = v.contact_id
                where v.occurred_at <= $as_of and v.type in ('unsubscribed', 'email_bounced')
                  and c.email is not null
                union
                select distinct lower(email), 'unsubscribed' from contacts
                where coalesce(unsubscribed, false) and email is not null
            ),
            reasons as (
                select
                    a.idempotency_key,
                    case
                        when not exists (select 1 from _send_steps as s
                                         where s.sequence = a.sequence and s.step = a.step)
                            then 'step no longer in the sequence file'
                        when e.status = 'exited' and e.exit_reason <> 'completed'
                            then 'enrolment exited (' || e.exit_reason || ') before send'
                        when a.action in ('email', 'sms') and exists (
                            select 1 from suppressed_emails as x
                            where x.email_key = lower(c.email)
                              and (x.type = 'unsubscribed' or a.action = 'email'))
                            then 'contact unsubscribed or bounced before send'
                    end as reason,
                from actions as a
                left join enrollments as e
                    on e.sequence = a.sequence and e.enrollment_id = a.enrollment_id
                left join contacts as c on c.contact_id = a.contact_id
                where a.status in ('due', 'deferred')
            )
            update actions as a
            set status = 'skipped', finished_at = $as_of, error = reasons.reason
            from reasons
            where reasons.idempotency_key = a.idempotency_key and reasons.reason is not null
            returning a.idempotency_key
            """,
            {"as_of": as_of},
        ).fetchall()
    )


def _apply_limits(con: duckdb.DuckDBPyConnection) -> int:
    """Rank the batch (sql/send/int_send_batch.sql); defer every email beyond its sender's limit."""
    sqlrun.materialize(con, "_send_batch", sqlrun.render("send/int_send_batch.sql"))
    return len(
        con.execute(
            """
            update actions set status = 'deferred', finished_at = null,
                error = 'daily email limit reached; sent first on the next local day'
            where status = 'due' and idempotency_key in
                (select idempotency_key from _send_batch where not within_limit)
            returning idempotency_key
            """
        ).fetchall()
    )


def _fetch_batch(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return sqlrun.dicts(
        con.execute(
            """
            select a.*,
            from actions as a
            inner join _send_batch as b using (idempotency_key)
            where b.within_limit and a.status in ('due', 'deferred')
            order by a.status = 'deferred' desc, a.occurrence_at, a.idempotency_key
            """
        )
    )


def _fetch_records(con: duckdb.DuckDBPyConnection) -> tuple[dict, dict, dict]:
    """Contacts, accounts and sent-email history of the batch, three queries in all."""
    contacts = {
        r["contact_id"]: r
        for r in sqlrun.dicts(
            con.execute(
                "select c.* from contacts as c where c.contact_id in"
                " (select a.contact_id from actions as a"
                "  inner join _send_batch as b using (idempotency_key))"
            )
        )
    }
    accounts = {
        r["account_id"]: r
        for r in sqlrun.dicts(
            con.execute(
                "select a.* from accounts as a where a.account_id in"
                " (select c.account_id from contacts as c where c.contact_id in"
                "  (select a.contact_id from actions as a"
                "   inner join _send_batch as b using (idempotency_key)))"
            )
        )
    }
    history: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in sqlrun.dicts(
        con.execute(
            "select sequence, enrollment_id, step, message_id, subject from actions"
            " where action = 'email' and status = 'sent' and message_id is not null"
            " and (sequence, enrollment_id) in (select (a.sequence, a.enrollment_id)"
            "  from actions as a inner join _send_batch as b using (idempotency_key))"
        )
    ):
        history.setdefault(_enrolment(r), {})[r["step"]] = r
    return contacts, accounts, history


# --- the send ------------------------------------------------------------------------------


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
    _load_workspace_tables(con, ws, as_of)
    report.expired = _expire(con, as_of)
    report.skipped = _skip_unsendable(con, as_of)
    report.deferred = _apply_limits(con)
    batch = _fetch_batch(con)
    contacts, accounts, history = _fetch_records(con)
    sender = _Sender(con, ws, env, _Clock(as_of), max_retries, backoff, report, faults)
    try:
        for action in batch:
            contact = contacts.get(action["contact_id"], {})
            account = accounts.get(contact.get("account_id"), {})
            sender.process(action, contact, account, history)
    finally:
        sender.pool.close()
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


class _Held(SequencerError):
    """The action cannot be prepared (render or configuration): it becomes ``held``."""


@dataclass
class _Prepared:
    kind: str  # email | sms | task
    message_id: str | None = None
    subject: str | None = None
    sender_id: str | None = None
    message: Any = None
    mailbox: Any = None
    envelope_from: str = ""
    recipients: list[str] = field(default_factory=list)
    sms: dict[str, Any] | None = None
    task: dict[str, Any] | None = None


class _Sender:
    """Per-action work of one send: prepare, claim, send with retries, record."""

    def __init__(
        self, con, ws: Workspace, env, clock: _Clock, max_retries, backoff, report, faults
    ):
        self.con, self.ws, self.env, self.clock = con, ws, env, clock
        self.max_retries, self.backoff, self.report = max_retries, backoff, report
        self.renderer = Renderer(ws.templates_dir)
        self.pool = mail.SmtpPool(env)
        self.faults: FaultHook = faults

    def process(self, action: dict, contact: dict, account: dict, history: dict) -> None:
        key = action["idempotency_key"]
        try:
            prep = self.prepare(action, contact, account, history)
        except (_Held, RenderError, mail.MailConfigError, ValueError) as exc:
            self._finish_before_claim(key, "held", str(exc))
            return
        if prep.kind == "task":
            self._record_task(action, prep)
            return
        if not self._claim(key, prep):
            return
        self.faults("after_claim", key)
        try:
            result = self._deliver(key, prep)
        except mail.SendError as exc:
            status = "unknown" if exc.kind == "ambiguous" else "failed"
            self._record_failure(key, status, str(exc))
            return
        self.faults("after_send", key)
        self._record_sent(action, contact, prep, result)
        if prep.kind == "email":
            history.setdefault(_enrolment(action), {})[action["step"]] = {
                "message_id": prep.message_id,
                "subject": prep.subject,
            }
        self.faults("after_record", key)

    # -- preparing (pure: reads only) --

    def prepare(self, action: dict, contact: dict, account: dict, history: dict) -> _Prepared:
        seq = self.ws.sequences[action["sequence"]]  # _skip_unsendable removed unknown ones
        step = seq.step(action["step"])
        owner = self.ws.users.user(seq.owner)
        if step is None:
            raise _Held(f"step {action['step']!r} is no longer in sequence {seq.name!r}")
        if owner is None:
            raise _Held(f"sequence {seq.name!r}: owner {seq.owner!r} is not in users.yaml")
        if not contact:
            raise _Held(f"contact {action['contact_id']!r} not found")
        ctx = self._context(action, seq, step, owner, contact, account)
        if action["action"] == "email":
            return self._prepare_email(action, seq, step, owner, contact, ctx, history)
        if action["action"] == "sms":
            return self._prepare_sms(action, step, contact, ctx)
        return self._prepare_task(action, seq, step, contact, ctx)

    def _context(self, action, seq: Sequence, step: Step, owner: User, contact, account):
        return {
            "contact": record(contact),
            "account": record(account),
            "owner": {
                k: v
                for k, v in owner.model_dump(include={"id", "email", "name", "timezone"}).items()
                if v is not None
            },
            "sequence": {"name": seq.name, "owner": seq.owner, "type": seq.type},
            "step": {"id": step.id, "day": action["day"], "action": step.action},
            "links": {},
        }

    def _tracker(self, key: str, contact_id: str, msg_id: str) -> mail.Tracker:
        return mail.tracker_for(self.ws.users.tracking, key, contact_id, msg_id, self.env)

    def _prepare_email(self, action, seq, step: Step, owner, contact, ctx, history):
        key, users = action["idempotency_key"], self.ws.users
        if not contact.get("email"):
            raise _Held("contact has no email address")
        from_user = mail.sender_user(users, step.from_, owner)
        mailbox = self.pool.check(from_user.mailbox, from_user.id)
        msg_id = mail.message_id(key, mail.domain_of(from_user.email))
        tracker = None
        if step.unsubscribe_link or step.track_opens or step.track_clicks:
            tracker = self._tracker(key, contact["contact_id"], msg_id)
        if step.unsubscribe_link:
            ctx["links"]["unsubscribe_url"] = tracker.unsubscribe_url()
        subject = self.renderer.render_subject(step.subject or "", ctx)
        body = self.renderer.render_file(step.template, ctx)
        text, markup = body.text, body.html
        in_reply_to, refs = _thread(seq, step, history.get(_enrolment(action), {}))
        if in_reply_to:
            prev_subject = history[_enrolment(action)][in_reply_to[1]]["subject"] or ""
            subject = (
                prev_subject if prev_subject.lower().startswith("re:") else (f"Re: {prev_subject}")
            )
        unsub = ctx["links"].get("unsubscribe_url")
        if unsub:
            text, markup = mail.with_unsubscribe_footer(text, markup, unsub)
        if step.track_clicks:
            markup = mail.rewrite_links(markup, tracker, keep={unsub} if unsub else set())
        if step.track_opens:
            markup = mail.add_open_pixel(markup, tracker.open_url())
        name = " ".join(p for p in (contact.get("first_name"), contact.get("last_name")) if p)
        draft = mail.Draft(
            message_id=msg_id,
            sender=(from_user.name or "", from_user.email),
            to=(name, contact["email"]),
            subject=subject,
            text=text,
            html=markup,
            reply_to=mail.resolve_address(users, step.reply_to, owner),
            cc=[mail.resolve_address(users, a, owner) for a in step.cc],
            bcc=[mail.resolve_address(users, a, owner) for a in step.bcc],
            in_reply_to=in_reply_to[0] if in_reply_to else None,
            references=refs,
            unsubscribe_url=unsub,
        )
        message = mail.build_message(draft, as_aware_utc(self.clock.now()))
        return _Prepared(
            kind="email",
            message_id=msg_id,
            subject=subject,
            sender_id=from_user.id,
            message=message,
            mailbox=mailbox,
            envelope_from=from_user.email,
            recipients=draft.recipients,
        )

    def _prepare_sms(self, action, step: Step, contact, ctx) -> _Prepared:
        gateway = self.ws.users.sms_gateway
        if gateway is None:
            raise _Held("sms step but no sms_gateway in users.yaml")
        if gateway.token_env and not self.env.get(gateway.token_env):
            raise _Held(f"sms gateway token variable {gateway.token_env} is not set")
        phone = contact.get("phone")
        if not phone:
            raise _Held("contact has no phone (custom column `phone`)")
        if step.template:
            text = self.renderer.render_file(step.template, ctx).text.strip()
        else:
            text = self.renderer.render_string(step.body or "", ctx).strip()
        key = action["idempotency_key"]
        return _Prepared(
            kind="sms",
            message_id=f"<sms-{_sha(key)}@sequencer>",
            sms={"to": str(phone), "body": text, "idempotency_key": key},
        )

    def _prepare_task(self, action, seq: Sequence, step: Step, contact, ctx) -> _Prepared:
        name = (
            " ".join(str(p) for p in (contact.get("first_name"), contact.get("last_name")) if p)
            or contact.get("email")
            or contact["contact_id"]
        )
        if step.action == "email_reminder":
            subject = self.renderer.render_subject(step.subject or "", ctx)
            draft = (
                self.renderer.render_file(step.template, ctx).text
                if step.template
                else (self.renderer.render_string(step.body or "", ctx))
            )
            title = f"Email {name}: {subject}" if subject else f"Email {name}"
            body = f"To: {contact.get('email') or ''}\nSubject: {subject}\n\n{draft}"
        else:
            verb = "Call" if step.action == "call_reminder" else "Follow up with"
            title = f"{verb} {name}"
            body = self.renderer.render_string(step.note, ctx) if step.note else None
        assert step.action in TASK_ACTIONS
        task = {
            "task_id": action["idempotency_key"],
            "owner_id": seq.owner,
            "sequence": seq.name,
            "contact_id": contact["contact_id"],
            "step": step.id,
            "kind": step.action,
            "due_on": action["occurrence_on"],
            "title": title,
            "body": body,
        }
        return _Prepared(kind="task", task=task)

    # -- the outbox transitions --

    def _finish_before_claim(self, key: str, status: str, error: str) -> None:
        self.con.execute(
            "update actions set status = ?, error = ?, finished_at = ?"
            " where idempotency_key = ? and status in ('due', 'deferred')",
            [status, error, self.clock.now(), key],
        )
        self._note(key, status, error)

    def _note(self, key: str, status: str, error: str) -> None:
        setattr(self.report, status, getattr(self.report, status) + 1)
        self.report.problems.append((key, status, error))
        log.warning("action %s %s: %s", key, status, error)

    def _claim(self, key: str, prep: _Prepared) -> bool:
        """CLAIM: one committed UPDATE; from here on a crash leaves the action ``unknown``."""
        claimed = self.con.execute(
            "update actions set status = 'unknown', claimed_at = ?, attempts = attempts + 1,"
            " message_id = ?, sender_id = ?, subject = ?, error = null"
            " where idempotency_key = ? and status in ('due', 'deferred')"
            " returning idempotency_key",
            [self.clock.now(), prep.message_id, prep.sender_id, prep.subject, key],
        ).fetchall()
        return bool(claimed)

    def _deliver(self, key: str, prep: _Prepared) -> dict:
        attempt = 0
        while True:
            try:
                if prep.kind == "email":
                    refused = self.pool.send(
                        prep.mailbox, prep.envelope_from, prep.message, prep.recipients
                    )
                    return {"refused": refused}
                return post_sms(self.ws.users.sms_gateway.url, self._sms_token(), prep.sms)
            except mail.SendError as exc:
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

    def _record_failure(self, key: str, status: str, error: str) -> None:
        self.con.execute(
            "update actions set status = ?, error = ?, finished_at = ?"
            " where idempotency_key = ? and status = 'unknown'",
            [status, error, self.clock.now() if status == "failed" else None, key],
        )
        self._note(key, status, error)

    def _record_sent(self, action: dict, contact: dict, prep: _Prepared, result: dict) -> None:
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

    def _record_task(self, action: dict, prep: _Prepared) -> None:
        with transaction(self.con) as con:
            insert_task(con, prep.task)
            con.execute(
                "update actions set status = 'sent', finished_at = ?, error = null"
                " where idempotency_key = ? and status in ('due', 'deferred')",
                [self.clock.now(), action["idempotency_key"]],
            )
        self.report.tasks += 1


def _enrolment(row: dict) -> tuple[str, str]:
    """An enrolment's identity: ``enrollment_id`` alone can collide across sequences (``a:b``
    + contact ``c`` and ``a`` + contact ``b:c``), so the sequence always goes with it."""
    return row["sequence"], row["enrollment_id"]


def _thread(seq: Sequence, step: Step, sent: dict[str, dict]) -> tuple[tuple | None, list]:
    """For ``thread: reply``: ((message_id, step id) of the latest earlier email step of this
    enrolment that was sent, References chain). Nothing sent before → a new thread."""
    if step.thread != "reply":
        return None, []
    earlier = [s.id for s in seq.steps[: seq.steps.index(step)] if s.action == "email"]
    chain = [(sent[s]["message_id"], s) for s in earlier if s in sent]
    if not chain:
        return None, []
    return chain[-1], [m for m, _ in chain]


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
            f"{kind}:{_sha(action['idempotency_key'])}",
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


def post_sms(url: str, token: str | None, payload: dict[str, Any], timeout: float = 15.0):
    """POST the SMS as JSON. The gateway dedupes on ``idempotency_key``, so a timeout or a
    dropped connection is retried (transient); 4xx other than 408/429 is permanent."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        kind = "transient" if exc.code in (408, 429) or exc.code >= 500 else "permanent"
        raise mail.SendError(kind, f"SMS gateway HTTP {exc.code}", exc.code) from exc
    except OSError as exc:
        raise mail.SendError("transient", f"SMS gateway: {exc!r}") from exc
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = {}
    gid = body.get("id") or body.get("message_id") if isinstance(body, dict) else None
    return {"gateway_id": str(gid) if gid else None}


# --- review --------------------------------------------------------------------------------


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
