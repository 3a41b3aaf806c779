"""The explaining commands: ``why SEQUENCE CONTACT`` and ``preview SEQUENCE --render CONTACT``,
and the gap line of ``preview`` (parse → call the :class:`~pipelines.project.Project`
(:mod:`pipelines.explain`) → print). Registered in :data:`pipelines.cli.COMMANDS`; their
arguments are in :mod:`pipelines.cli_args`."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from pipelines.explain import NextForContact
from pipelines.outbox.rehearse import Rehearsal
from pipelines.project import Project
from pipelines.tick.preview import AudiencePreview
from pipelines.tick.why import Eligibility, StepDecision, Story

EXIT_OK = 0
HIDDEN_HEADERS = {"content-type", "mime-version", "content-transfer-encoding"}  # MIME plumbing
GAP_LABELS = {
    "already_enrolled": "already enrolled",
    "previously_enrolled": "previously enrolled",
    "unsubscribed": "unsubscribed",
    "bounced": "bounced",
    "exit_condition": "matching an exit condition",
    "exclusive_with": "exclusive_with",
    "no_email": "no email",
    "duplicate_email": "duplicate emails",
    "before_starts_on": "before starts_on",
    "other": "not evaluated (see docs/decisions.md)",
}


def _at(value) -> str:
    return f"{value:%Y-%m-%d %H:%M}Z" if value is not None else "-"


# --- preview: the gap between the audience and the entries ---------------------------------


def gap_line(a: AudiencePreview) -> str | None:
    """``audience 5, would enter 1: 2 already enrolled, 1 no email, …`` (None: not known).

    >>> a = AudiencePreview("s", "contact", None, None, 9, 4, gap={"no_email": 1, "enters": 3})
    >>> gap_line(a)
    'audience 4, would enter 3: 1 no email'
    """
    if a.audience is None or not a.gap:
        return None
    parts = [f"{n} {GAP_LABELS.get(k, k)}" for k, n in a.gap.items() if k != "enters"]
    return f"audience {a.audience}, would enter {a.gap.get('enters', 0)}: " + (
        ", ".join(parts) or "nothing keeps any out"
    )


def print_gap(a: AudiencePreview) -> None:
    line = gap_line(a)
    if line:
        print(line)


# --- why -----------------------------------------------------------------------------------


def cmd_why(p: Project, args: argparse.Namespace) -> int:
    story = p.why(args.sequence, args.contact_id, args.as_of)
    if args.json:
        print(json.dumps(story.to_json(), indent=2, sort_keys=False))
        return EXIT_OK
    for line in story_lines(story):
        print(line)
    return EXIT_OK


def story_lines(story: Story) -> list[str]:
    """The story as text, one decision per line (the ``why`` output)."""
    lines = [f"why {story.contact_id} in {story.sequence} (as of {_at(story.as_of)})"]
    lines.append(f"note: {story.note}")
    for r in story.manual_requests:
        reason = f" ({r['reason']})" if r["reason"] else ""
        lines.append(f"manual request at {_at(r['requested_at'])}: {r['status']}{reason}")
    head = "before it entered" if story.entered else "it has not entered"
    earlier = f" ({story.earlier_not_shown} earlier not shown)" if story.earlier_not_shown else ""
    lines.append(f"{head}: {len(story.eligible)} occurrence(s){earlier}")
    lines += [f"  {eligibility_line(e)}" for e in story.eligible]
    if story.entered:
        e = story.entered
        lines.append(f"entered {e['enrolled_on']} at {_at(e['enrolled_at'])} ({e['how']})")
    for step in story.steps:
        lines += step_lines(step)
    for pause in story.pauses:
        until = pause["until_on"] if pause["until_on"] not in (None, dt.date.max) else "resume"
        ended = f", resumed {_at(pause['resumed_at'])}" if pause["resumed_at"] else ""
        lines.append(
            f"paused {_at(pause['from'])} until {until} ({pause['kind']}{ended}): no step"
            " decided and no day counted meanwhile"
        )
    if story.exit:
        x = story.exit
        act = x.get("activity")
        cause = f" ({act['type']} at {_at(act['occurred_at'])})" if act else ""
        lines.append(f"exited {x['exited_on']} at {_at(x['exited_at'])}: {x['exit_reason']}{cause}")
    elif story.entered and story.entered.get("holdout"):
        lines.append("holdout: held out of the sequence by its bucket, never contacted")
    elif story.entered:
        lines.append("active: no exit yet")
    return lines


OUTCOMES = {
    "created_after": "created after the occurrence",
    "before_starts_on": "before starts_on",
    "no_audience": "no audience (manual enrolment only) and no manual request",
    "audience": "not in the audience",
    "unsubscribed": "kept out: unsubscribed (this address)",
    "bounced": "kept out: bounced (this address)",
    "exit_condition": "kept out: matches an exit condition",
    "exclusive_with": "kept out: exclusive_with, active in",
    "no_email": "kept out: no email (the sequence has email steps)",
    "duplicate_email": "kept out: duplicate email (prevent_duplicate_emails), enrolled already:",
    "enters": "enters",
}


def eligibility_line(e: Eligibility) -> str:
    """``2026-03-02 14:30Z  not in the audience (false: where: …)``."""
    when = f"{e.occurrence_on} {e.occurrence_at:%H:%M}Z" + ("" if e.processed else " (next)")
    text = OUTCOMES.get(e.outcome, e.outcome)
    if e.outcome == "audience":
        text += f" (false: {e.detail})"
    elif e.detail:
        text += f" ({e.detail})" if e.outcome in ("enters", "created_after") else f" {e.detail}"
    return f"{when}  {text}"


def step_lines(s: StepDecision) -> list[str]:
    """The decision, its ``when`` values, then what the send step did."""
    line = f"day {s.day} {s.occurrence_on} {s.step} ({s.action}): {s.decided}"
    if s.when:
        line += "; when " + "; ".join(f"{src} = {str(v).lower()}" for src, v in s.when.items())
    if s.differs:
        line += "  [recorded decision differs: the history or the file changed since]"
    lines = [f"  {line}"]
    if s.decided == "due":
        lines.append(f"    {outcome_text(s)}")
    return lines


def outcome_text(s: StepDecision) -> str:
    if s.task is not None:
        t = s.task
        done = f"done at {_at(t['done_at'])}" if t["done"] else "open"
        return f"task {t['task_id'][:8]} for {t['owner_id']}, due {t['due_on']}: {done}"
    text = s.status
    if s.status == "sent":
        text += f" at {_at(s.finished_at)}"
    if s.message_id:
        text += f", message-id {s.message_id}"
    if s.error:
        text += f": {s.error}"
    return text


# --- preview --render ------------------------------------------------------------------------


def cmd_render(p: Project, args: argparse.Namespace) -> int:
    found = p.render(args.sequence, args.render, args.as_of)
    for line in render_lines(found):
        print(line)
    return EXIT_OK


def render_lines(found: NextForContact) -> list[str]:
    when = "no next occurrence"
    if found.occurrence_at is not None:
        when = f"next occurrence {found.occurrence_on} ({found.occurrence_at:%H:%M}Z)"
    lines = [f"render {found.contact_id} in {found.sequence}: {when}"]
    for r in found.rendered:
        lines += rehearsal_lines(r)
    lines += [f"nothing due: {reason}" for reason in found.reasons]
    if found.rendered:
        lines.append(
            "(composed as the send step would at the occurrence's instant; the send may still "
            "defer it (daily limit, send window, weekend) or skip it (an opt-out before then))"
        )
    lines.append("(nothing was written or sent)")
    return lines


def rehearsal_lines(r: Rehearsal) -> list[str]:
    a = r.action
    lines = [
        f"{a['action']} step {a['step']} (day {a['day']}), idempotency key {a['idempotency_key']}"
    ]
    if r.held is not None:
        return [*lines, f"  would be held: {r.held}"]
    prep = r.prepared
    if prep.kind == "email":
        msg = prep.message
        lines += [f"  {k}: {v}" for k, v in msg.items() if k.lower() not in HIDDEN_HEADERS]
        lines.append(f"  envelope: from {prep.envelope_from} to {', '.join(prep.recipients)}")
        for kind in ("plain", "html"):
            lines.append(f"  --- text/{kind}")
            body = msg.get_body((kind,)).get_content()
            lines += [f"  {x}" for x in body.rstrip("\n").splitlines()]
    elif prep.kind == "sms":
        lines.append(f"  to {prep.sms['to']}, message-id {prep.message_id}:")
        lines += [f"  {x}" for x in prep.sms["body"].splitlines()]
    else:
        t = prep.task
        lines.append(f"  task for {t['owner_id']}, due {t['due_on']}: {t['title']}")
        lines += [f"  {x}" for x in (t["body"] or "").rstrip("\n").splitlines()]
    return lines
