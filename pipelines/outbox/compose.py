"""Compose (reads only): one action with its contact, account and the enrolment's sent emails
→ a ready email (headers, threading, tracking), an SMS payload or a task row. Anything that
cannot be prepared raises :class:`Held` (the action becomes ``held``, nothing is sent).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipelines.channels.message import (
    Draft,
    build_message,
    domain_of,
    message_id,
    resolve_address,
    sender_user,
    with_unsubscribe_footer,
)
from pipelines.channels.render import Renderer, record
from pipelines.channels.smtp import SmtpPool
from pipelines.channels.tracking import Tracker, add_open_pixel, rewrite_links, tracker_for
from pipelines.errors import SequencerError
from pipelines.instants import as_aware_utc
from pipelines.models import TASK_ACTIONS, Sequence, Step, User
from pipelines.outbox.batch import enrolment
from pipelines.workspace import Workspace


def sha(text: str) -> str:
    """32 hex characters of sha256: the SMS Message-ID and the sent activity's id."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Held(SequencerError):
    """The action cannot be prepared (render or configuration): it becomes ``held``."""


@dataclass
class Prepared:
    """A prepared action: what the claim records and the send hands to the transport."""

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


class Composer:
    """Prepares the actions of one send; ``now`` is the send's clock (the Date header)."""

    def __init__(
        self, ws: Workspace, env: dict[str, str], pool: SmtpPool, now: Callable[[], dt.datetime]
    ) -> None:
        self.ws, self.env, self.pool, self.now = ws, env, pool, now
        self.renderer = Renderer(ws.templates_dir)

    def prepare(self, action: dict, contact: dict, account: dict, history: dict) -> Prepared:
        seq = self.ws.sequences[action["sequence"]]  # batch.skip_unsendable removed unknown ones
        step = seq.step(action["step"])
        owner = self.ws.users.user(seq.owner)
        if step is None:
            raise Held(f"step {action['step']!r} is no longer in sequence {seq.name!r}")
        if owner is None:
            raise Held(f"sequence {seq.name!r}: owner {seq.owner!r} is not in users.yaml")
        if not contact:
            raise Held(f"contact {action['contact_id']!r} not found")
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

    def _tracker(self, action, msg_id: str) -> Tracker:
        return tracker_for(
            self.ws.users.tracking, action, msg_id, as_aware_utc(self.now()), self.env
        )

    def _prepare_email(self, action, seq, step: Step, owner, contact, ctx, history):
        key, users = action["idempotency_key"], self.ws.users
        if not contact.get("email"):
            raise Held("contact has no email address")
        from_user = sender_user(users, step.from_, owner)
        mailbox = self.pool.check(from_user.mailbox, from_user.id)
        msg_id = message_id(key, domain_of(from_user.email))
        tracker = None
        if step.unsubscribe_link or step.track_opens or step.track_clicks:
            tracker = self._tracker(action, msg_id)
        if step.unsubscribe_link:
            ctx["links"]["unsubscribe_url"] = tracker.unsubscribe_url()
        subject_text, template = content(step, action.get("variant"))
        subject = self.renderer.render_subject(subject_text, ctx)
        body = self.renderer.render_file(template, ctx)
        text, markup = body.text, body.html
        in_reply_to, refs = thread(seq, step, history.get(enrolment(action), {}))
        if in_reply_to:
            prev_subject = history[enrolment(action)][in_reply_to[1]]["subject"] or ""
            subject = (
                prev_subject if prev_subject.lower().startswith("re:") else (f"Re: {prev_subject}")
            )
        unsub = ctx["links"].get("unsubscribe_url")
        if unsub:
            text, markup = with_unsubscribe_footer(text, markup, unsub)
        if step.track_clicks:
            markup = rewrite_links(markup, tracker, keep={unsub} if unsub else set())
        if step.track_opens:
            markup = add_open_pixel(markup, tracker.open_url())
        name = " ".join(p for p in (contact.get("first_name"), contact.get("last_name")) if p)
        draft = Draft(
            message_id=msg_id,
            sender=(from_user.name or "", from_user.email),
            to=(name, contact["email"]),
            subject=subject,
            text=text,
            html=markup,
            reply_to=resolve_address(users, step.reply_to, owner),
            cc=[resolve_address(users, a, owner) for a in step.cc],
            bcc=[resolve_address(users, a, owner) for a in step.bcc],
            in_reply_to=in_reply_to[0] if in_reply_to else None,
            references=refs,
            unsubscribe_url=unsub,
        )
        message = build_message(draft, as_aware_utc(self.now()))
        return Prepared(
            kind="email",
            message_id=msg_id,
            subject=subject,
            sender_id=from_user.id,
            message=message,
            mailbox=mailbox,
            envelope_from=from_user.email,
            recipients=draft.recipients,
        )

    def _prepare_sms(self, action, step: Step, contact, ctx) -> Prepared:
        gateway = self.ws.users.sms_gateway
        if gateway is None:
            raise Held("sms step but no sms_gateway in users.yaml")
        if gateway.token_env and not self.env.get(gateway.token_env):
            raise Held(f"sms gateway token variable {gateway.token_env} is not set")
        phone = contact.get("phone")
        if not phone:
            raise Held("contact has no phone (custom column `phone`)")
        if step.template:
            text = self.renderer.render_file(step.template, ctx).text.strip()
        else:
            text = self.renderer.render_string(step.body or "", ctx).strip()
        key = action["idempotency_key"]
        return Prepared(
            kind="sms",
            message_id=f"<sms-{sha(key)}@sequencer>",
            sms={"to": str(phone), "body": text, "idempotency_key": key},
        )

    def _prepare_task(self, action, seq: Sequence, step: Step, contact, ctx) -> Prepared:
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
        return Prepared(kind="task", task=task)


def content(step: Step, variant_id: str | None) -> tuple[str, str]:
    """The subject and template an email action renders: its variant's (issue 13), each
    falling back to the step's own; a variant no longer in the file holds the action."""
    if variant_id is None:
        return step.subject or "", step.template or ""
    variant = step.variant(variant_id)
    if variant is None:
        raise Held(f"variant {variant_id!r} is no longer in step {step.id!r}")
    return variant.subject or step.subject or "", variant.template or step.template or ""


def thread(seq: Sequence, step: Step, sent: dict[str, dict]) -> tuple[tuple | None, list]:
    """For ``thread: reply``: ((message_id, step id) of the latest earlier email step of this
    enrolment that was sent, References chain). Nothing sent before → a new thread."""
    if step.thread != "reply":
        return None, []
    earlier = [s.id for s in seq.steps[: seq.steps.index(step)] if s.action == "email"]
    chain = [(sent[s]["message_id"], s) for s in earlier if s in sent]
    if not chain:
        return None, []
    return chain[-1], [m for m, _ in chain]
